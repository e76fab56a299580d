"""`hw3-submit report JOB... --format md|html|pdf`: the homework as one document. Problems in the homework's order
whatever order the jobs are given in, then the appendix of settings; every figure inside the HTML (data: URIs,
nothing fetched from anywhere); a PDF of real text on numbered pages; a job without report.md built now and
marked partial; images that leave the job folder refused; `report JOB` alone prints report.md as written.

Unit tests use hand-made job folders (a small report.md, PNGs written by matplotlib) in a real SQLite store;
the integration test runs a real (small) sweep first."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from api import cli
from shared import document
from shared.artifacts import job_dir
from shared.settings import get_settings

HOMEWORK = {1: "sweep", 2: "confusion", 3: "regularization", 4: "human-machine"}
PNG = b"\x89PNG\r\n\x1a\n"
ATTRIBUTE = re.compile(r"""\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def outside_references(html: str) -> list[str]:
    """Every src= or href= value that is neither a data: URI nor a link inside the document."""
    values = ["".join(m.groups(default="")) for m in ATTRIBUTE.finditer(html)]
    return [v for v in values if not (v.startswith("data:") or v.startswith("#"))]


def _png(path: Path, seed: int) -> bytes:
    """A real, small PNG (distinct per seed), written by matplotlib."""
    import matplotlib.image

    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, np.random.default_rng(seed).random((12, 18)))
    return path.read_bytes()


def _finished_job(store, kind: str, problem: int, *, params: dict | None = None) -> tuple[str, dict[str, bytes]]:
    """A succeeded job with a report.md of three figures (one alone, two side by side), a table, a link to a
    CSV file of its folder; returns its id and its figures' bytes by relative path."""
    job = store.create_job(kind, params or {"epochs": 2, "nested": {"rate": 0.5}, "sizes": [512, 256]},
                           [{"name": "a", "config": {}, "epochs_total": 1}])
    store.finish_job(job, "succeeded")
    folder = job_dir(get_settings(), job)
    figures = {rel: _png(folder / rel, problem * 10 + i)
               for i, rel in enumerate(["curve.png", "runs/a/curve.png", "runs/b/curve.png"])}
    (folder / "data.csv").write_text("a,b\n1,2\n")
    (folder / "report.md").write_text(
        f"# Problem {problem} — the {kind} part (job `{job}`)\n\n"
        f"Text of problem {problem}: **bold**, `code` and → arrows.\n\n"
        "| name | value |\n| :--- | ---: |\n| accuracy | 97.48% |\n\n"
        f"![curve of problem {problem}](curve.png)\n\n"
        "![run a](runs/a/curve.png) ![run b](runs/b/curve.png)\n\n"
        "Files: [data.csv](data.csv).\n")
    return job, figures


@pytest.fixture
def homework(volume_store):
    """The four homework jobs, created in the order 4, 2, 1, 3; returns {problem: (job id, figures)}."""
    return {n: _finished_job(volume_store, HOMEWORK[n], n) for n in (4, 2, 1, 3)}


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _ids(homework, order=(4, 2, 1, 3)) -> list[str]:
    return [homework[n][0] for n in order]


@pytest.mark.unit
def test_html_is_the_whole_homework_in_order_with_every_figure_inside(homework, tmp_path):
    out = tmp_path / "hw3-report.html"
    result = run("report", *_ids(homework), "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()

    # Problems 1-4 in the homework's order (given 4, 2, 1, 3), each its job's report, then the settings
    starts = [html.index(f'<section class="problem" id="job-{homework[n][0]}">') for n in (1, 2, 3, 4)]
    assert starts == sorted(starts)
    assert all(html.index(f"Text of problem {n}") > starts[n - 1] for n in (1, 2, 3, 4))
    appendix = html.index('<section class="appendix" id="settings">')
    assert appendix > starts[-1]
    for n, (job, _) in homework.items():
        assert html.index(job, appendix) > appendix  # each job's settings: id, kind, state, params, times
    settings = html[appendix:]
    assert "nested.rate" in settings and "512, 256" in settings and settings.count("succeeded") >= 4
    assert "created" in settings and "finished" in settings

    # every figure of every report.md is inside, byte for byte; nothing refers outside the file
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    embedded = [base64.b64decode(s.split(",", 1)[1]) for s in sources if s.startswith("data:image/png;base64,")]
    assert len(sources) == len(embedded) == 12
    assert sorted(embedded) == sorted(png for _, figures in homework.values() for png in figures.values())
    assert outside_references(html) == []
    assert html.count('href="#job-') == 4  # the contents link to the problems
    assert "http://" not in html and "https://" not in html and "url(" not in html and "<script" not in html
    assert "data.csv" in html and 'href="data.csv"' not in html  # the job's other files: named, not linked

    # a phone: the viewport set, figures scale, tables scroll sideways; a printer: each problem on a new page
    assert 'name="viewport"' in html and "max-width: 100%" in html and "overflow-x: auto" in html
    assert "@media print" in html and "break-before: page" in html and "break-inside: avoid" in html
    assert "Content-Security-Policy" in html


def _pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


@pytest.mark.unit
def test_pdf_has_real_text_on_numbered_pages_in_the_homework_order(homework, tmp_path):
    out = tmp_path / "hw3.pdf"
    result = run("report", *_ids(homework), "--format", "pdf", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = _pdf_pages(data)
    assert pages >= 6  # contents, one page at least for each problem, the appendix
    assert len(re.findall(rb"/Subtype\s*/Image", data)) >= 12  # the figures (and their transparency masks)
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian's poppler-utils, which scripts/dev test installs) is missing: the text "
                    "of the PDF cannot be read back here")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    heads = [text.index(f"Problem {n} — the {HOMEWORK[n]} part") for n in (1, 2, 3, 4)]
    assert heads == sorted(heads) and text.index("Appendix: settings", heads[-1]) > heads[-1]
    assert "Text of problem 3: bold, code and → arrows." in text and "97.48%" in text
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    pdf_pages = text.split("\f")
    assert all(f"Problem {n} — the" in pdf_pages[n] for n in (1, 2, 3, 4))  # each problem from a new page


@pytest.mark.unit
def test_report_of_one_job_prints_its_report_md_as_written(homework):
    job, _ = homework[2]
    result = run("report", job[:6])
    assert result.exit_code == 0
    assert result.stdout == (job_dir(get_settings(), job) / "report.md").read_text()


@pytest.mark.unit
def test_markdown_of_several_jobs_links_the_figures_from_where_it_is_written(homework, tmp_path):
    out = tmp_path / "hand-in" / "hw3.md"
    out.parent.mkdir()
    result = run("report", *_ids(homework), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert [text.index(f"Text of problem {n}") for n in (1, 2, 3, 4)] == sorted(
        text.index(f"Text of problem {n}") for n in (1, 2, 3, 4))
    targets = re.findall(r"!\[[^\]]*\]\(<([^>]+)>\)", text)
    assert len(targets) == 12 and all((out.parent / t).resolve().is_file() for t in targets)
    assert text.index("# Appendix: settings") > text.index("Text of problem 4")


@pytest.mark.unit
def test_html_and_pdf_default_to_a_file_in_the_current_folder(homework, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for fmt in ("html", "pdf"):
        result = run("report", *_ids(homework, (1,)), "--format", fmt)
        assert result.exit_code == 0 and result.stdout.strip() == f"hw3-report.{fmt}"
        assert (here / f"hw3-report.{fmt}").stat().st_size > 1000
    assert sorted(p.name for p in here.iterdir()) == ["hw3-report.html", "hw3-report.pdf"]  # no leftovers


class _RowsKind:
    """A kind whose report shows how many rows it was given (the contract's `report(job, rows)`)."""
    title, problem = "Problem 9 — made up", 9

    def __init__(self):
        self.calls = []

    def report(self, job, rows):
        self.calls.append(len(rows))
        return f"# {self.title} (job `{job.job_id}`)\n\nState: **{job.state}**, {len(rows)} epoch rows.\n"


@pytest.mark.unit
@pytest.mark.parametrize("state", ["running", "interrupted", "cancelled"])
def test_a_job_without_its_final_report_is_built_from_its_rows_and_marked_partial(volume_store, state):
    job = volume_store.create_job("made-up", {}, [{"name": "a", "config": {}, "epochs_total": 3}])
    run_id = volume_store.start_run(volume_store.runs(job)[0].run_id, "w", 1).run_id
    for epoch in (1, 2):
        volume_store.record_epoch(run_id, {"epoch": epoch, "val_accuracy": 0.5})
    folder = job_dir(get_settings(), job)
    folder.mkdir(parents=True)
    if state == "running":  # a report.md of an earlier end (before a resume) is not the job as it is now
        (folder / "report.md").write_text("# stale\n")
    else:
        volume_store.finish_job(job, state)
    kind = _RowsKind()
    [section] = document.collect(volume_store, get_settings(), [job], lambda name: kind)
    assert kind.calls == [2] and section.partial and section.built
    lines = section.markdown.splitlines()
    assert lines[0] == f"# Problem 9 — made up (job `{job}`)"  # the note right under the title
    assert lines[2] == f"> **Partial:** the job is {state}; what finished is shown."
    html = document.html_document([section])
    assert "<strong>Partial:</strong> the job is" in html and "2 epoch rows" in html and "stale" not in html
    assert "partial, built now from the rows" in html  # in the contents too


@pytest.mark.unit
def test_report_command_on_an_unfinished_job_prints_what_finished(volume_store, monkeypatch):
    from worker import kinds

    monkeypatch.setattr(kinds, "_registry", dict(kinds.all_kinds()))  # the toy kind for this test only
    monkeypatch.setattr(kinds, "_loaded", set(kinds._loaded))
    monkeypatch.setenv("HW3_KINDS", "tests.toykind")
    job = volume_store.create_job("toy", {"epochs": 3}, [{"name": "a", "config": {"rate": 0.1}, "epochs_total": 3}])
    result = run("report", job)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"# A toy kind (job `{job}`)\n\n> **Partial:** the job is queued; what finished")
    assert f"job {job} (toy) is queued" in result.stderr


@pytest.mark.unit
def test_an_image_leaving_the_job_folder_is_refused(volume_store, tmp_path):
    job, _ = _finished_job(volume_store, "confusion", 2)
    folder = job_dir(get_settings(), job)
    secret = _png(tmp_path / "secret.png", 99)
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    inside = _png(folder / "my figure.png", 7)
    (folder / "report.md").write_text("# Problem 2 — x\n\n![up](../../../secret.png)\n\n![link](link.png)\n\n"
                                      "![absolute](/etc/hostname)\n\n![missing](not-drawn.png)\n\n"
                                      "![inside](<my figure.png>)\n")
    [section] = document.collect(volume_store, get_settings(), [job], lambda name: None)
    html = document.html_document([section])
    assert html.count("<img") == 1 and base64.b64encode(inside).decode() in html  # the one inside the folder
    assert base64.b64encode(secret).decode() not in html
    assert html.count("refused: it leaves the job folder") == 3 and "not drawn (yet)" in html
    assert document.pdf_document([section]).startswith(b"%PDF-")  # the PDF says the same, and does not fail


@pytest.mark.unit
def test_all_says_how_to_make_the_whole_homework_report(volume, volume_store, real_datasets, monkeypatch):
    monkeypatch.setenv("HW3_DATASETS", str(real_datasets))
    result = run("all", "--epochs", "1", "--train-size", "1000", "--synthetic", "--json")
    assert result.exit_code == 0, result.stderr
    ids = [j["job_id"] for j in json.loads(result.stdout)]
    assert f"report {' '.join(ids)} --format html --out hw3-report.html" in result.stderr


@pytest.mark.integration
def test_the_report_of_a_real_sweep_embeds_its_figures(hw3_env, tmp_path):
    from conftest import hw3

    proc = hw3("sweep", "--epochs", "1", "--train-size", "1000", "--activations", "relu", "--lrs", "0.05",
               "--wait", "--json", env=hw3_env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout[proc.stdout.index("{"):])["job_id"]
    report_md = (Path(hw3_env["HW3_DATA"]) / "artifacts" / job / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_md)
    assert len(images) >= 3  # the overview, the run's curve, the final retrain's curve
    html_out, pdf_out = tmp_path / "r.html", tmp_path / "r.pdf"
    hw3("report", job, "--format", "html", "--out", str(html_out), env=hw3_env, check=True)
    hw3("report", job, "--format", "pdf", "--out", str(pdf_out), env=hw3_env, check=True)
    html = html_out.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(sources) == len(images) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert outside_references(html) == [] and "Partial" not in html
    pdf = pdf_out.read_bytes()
    assert pdf.startswith(b"%PDF-") and _pdf_pages(pdf) >= 3
