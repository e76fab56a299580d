"""The reading commands as a person uses them: job ids by a unique beginning, cancel of an ended job, fetch
that never overwrites silently, where the store lives and the notice when a new one is made, `all` with quick
settings, and --json as exactly one document (Click's runner, a real SQLite store, no workers)."""
from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import cli
from shared import settings as settings_module
from shared.artifacts import job_dir, publish
from shared.settings import get_settings

pytestmark = pytest.mark.unit


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _job(store, state=None) -> str:
    job = store.create_job("toy", {}, [{"name": "a", "config": {}, "epochs_total": 1}])
    if state:
        store.finish_job(job, state)
    return job


def test_a_unique_beginning_of_a_job_id_works_everywhere(volume_store):
    jobs = [_job(volume_store, "succeeded") for _ in range(40)]
    by_first: dict[str, list[str]] = {}
    for j in jobs:
        by_first.setdefault(j[0], []).append(j)
    shared_first = next(p for p, js in by_first.items() if len(js) > 1)
    unique = next(j for j in jobs if sum(o.startswith(j[:4]) for o in jobs) == 1)
    out = run("status", unique[:4], "--json")
    assert out.exit_code == 0 and json.loads(out.output)["job_id"] == unique
    assert run("metrics", unique[:4], "--json").exit_code == 0
    ambiguous = run("status", shared_first)
    assert ambiguous.exit_code == 1
    assert f"job id '{shared_first}' is ambiguous" in ambiguous.output
    assert all(j in ambiguous.output for j in by_first[shared_first][:10])
    missing = run("cancel", "fffffffffffe")
    assert missing.exit_code == 1 and "no job fffffffffffe" in missing.output
    bad = run("status", "../x")
    assert bad.exit_code == 2 and "invalid job id" in bad.output


def test_cancelling_an_ended_job_says_so_and_exits_1(volume_store):
    job = _job(volume_store, "succeeded")
    out = run("cancel", job)
    assert out.exit_code == 1
    assert f"job {job} has already ended (succeeded); nothing to cancel" in out.output
    assert volume_store.job_state(job) == "succeeded"


def _published_job(store) -> str:
    """A succeeded job with two recorded artifacts: report.md and runs/a/w.txt."""
    job = _job(store, "succeeded")
    folder = job_dir(get_settings(), job)
    (folder / "runs" / "a").mkdir(parents=True)
    (folder / "report.md").write_text("the report\n")
    (folder / "runs" / "a" / "w.txt").write_text("weights\n")
    publish(store, get_settings(), job, [folder / "report.md", folder / "runs" / "a" / "w.txt"])
    return job


def test_fetch_never_overwrites_a_different_file_silently(volume_store, tmp_path):
    job = _published_job(volume_store)
    dest = tmp_path / "out"
    assert run("fetch", job, "--dest", str(dest)).exit_code == 0
    assert run("fetch", job, "--dest", str(dest)).exit_code == 0  # identical files: nothing to refuse
    (dest / "report.md").write_text("my own notes\n")
    refused = run("fetch", job, "--dest", str(dest))
    assert refused.exit_code == 1
    assert "1 file(s)" in refused.output and "report.md" in refused.output and "--force" in refused.output
    assert (dest / "report.md").read_text() == "my own notes\n"
    forced = run("fetch", job, "--dest", str(dest), "--force")
    assert forced.exit_code == 0 and (dest / "report.md").read_text() == "the report\n"


def test_fetch_refuses_a_file_where_a_folder_goes_or_a_folder_where_a_file_goes_before_copying(volume_store,
                                                                                              tmp_path):
    job = _published_job(volume_store)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "runs").write_text("a file named runs\n")
    for force in ([], ["--force"]):
        refused = run("fetch", job, "--dest", str(dest), *force)
        assert refused.exit_code == 1 and f"{dest / 'runs'} is a file where a folder must be" in refused.output
        assert "Traceback" not in refused.output and sorted(p.name for p in dest.iterdir()) == ["runs"]
    (dest / "runs").unlink()
    (dest / "report.md").mkdir()
    refused = run("fetch", job, "--dest", str(dest), "--force")
    assert refused.exit_code == 1 and "is a folder where the file report.md goes" in refused.output
    assert sorted(p.name for p in dest.iterdir()) == ["report.md"]  # nothing copied
    (dest / "report.md").rmdir()
    assert run("fetch", job, "--dest", str(dest)).output.strip() == f"2 files copied to {dest}"
    assert run("fetch", job, "--dest", str(dest)).output.strip() == \
        f"0 files copied to {dest}, 2 already there and identical"


def test_the_store_does_not_depend_on_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert get_settings({}).data_dir == settings_module.PROJECT_DIR / "data"  # a source checkout
    monkeypatch.setattr(settings_module, "PROJECT_DIR", tmp_path / "site-packages")
    assert get_settings({"XDG_DATA_HOME": str(tmp_path / "xdg")}).data_dir == tmp_path / "xdg" / "hw3"
    assert get_settings({"HOME": "/nonexistent"}).data_dir == Path.home() / ".local" / "share" / "hw3"
    assert not (tmp_path / "data").exists()


def test_a_new_store_is_announced_once(volume):
    first = CliRunner().invoke(cli.main, ["list"])
    assert first.exit_code == 0
    assert first.stderr.count("created a new, empty store") == 1 and str(volume) in first.stderr
    again = CliRunner().invoke(cli.main, ["list"])
    assert "created a new" not in again.stderr


def test_all_takes_quick_settings_and_json_is_one_document(volume, volume_store, real_datasets, monkeypatch):
    monkeypatch.setenv("HW3_DATASETS", str(real_datasets))
    out = CliRunner().invoke(cli.main, ["all", "--epochs", "2", "--train-size", "1000",
                                                        "--synthetic", "--json"])
    assert out.exit_code == 0, out.stderr
    jobs = json.loads(out.stdout)  # the whole of stdout: one JSON document
    assert [j["kind"] for j in jobs] == ["sweep", "confusion", "regularization", "human-machine"]
    assert all(j["state"] == "queued" for j in jobs)
    sweep, confusion, _, human = jobs
    assert (sweep["params"]["epochs"], sweep["params"]["train_size"]) == (2, 1000)
    assert confusion["params"]["params"] == {"epochs": 2}
    assert human["params"]["data"] == "synthetic" and all(r["epochs_total"] == 2 for r in human["runs"])
    assert all(j["job_id"] in out.stderr for j in jobs)  # ids for people go to stderr


def test_all_with_wait_ends_with_the_command_of_the_whole_report(volume, volume_store, real_datasets, monkeypatch):
    """The command printed at submission has scrolled away under the live display: it comes again at the end.
    (The workers and the wait are stand-ins here; the real ones are in tests/service.)"""
    monkeypatch.setenv("HW3_DATASETS", str(real_datasets))
    monkeypatch.setattr(cli.client, "local_workers", lambda *a, **k: contextlib.nullcontext(None))
    monkeypatch.setattr(cli.client, "wait_for", lambda ids, store, printer, worker=None:
                        [replace(store.job_status(j), state="succeeded") for j in ids])
    out = CliRunner().invoke(cli.main, ["all", "--epochs", "1", "--train-size", "1000", "--synthetic", "--wait"])
    assert out.exit_code == 0, out.output
    ids = out.stdout.split()[:4]
    assert out.stdout.rstrip().splitlines()[-1] == \
        f"the whole homework's report: hw3-submit report {' '.join(ids)} --format html --out hw3-report.html"


def test_list_columns_stay_aligned_with_long_kinds_and_wide_counts(volume_store):
    short = volume_store.create_job("toy", {}, [{"name": "a", "config": {}, "epochs_total": 1}])
    long = volume_store.create_job("grade-human-machine", {}, [{"name": f"r{i}", "config": {}, "epochs_total": 4000}
                                                               for i in range(3)])
    lines = run("list").stdout.splitlines()
    assert lines[0].split() == ["job", "kind", "state", "epochs", "created"]
    starts = {word: lines[0].index(word) for word in ("kind", "state", "created")}
    for line, job, kind in ((lines[1], long, "grade-human-machine"), (lines[2], short, "toy")):
        assert line.startswith(job) and line.index(kind) == starts["kind"] and line.index("queued") == starts["state"]
        assert line[starts["created"]:starts["created"] + 2] == "20"  # a date, in its column
    ends = {line.index(count) + len(count) for line, count in ((lines[0], "epochs"), (lines[1], "0/12000"),
                                                                   (lines[2], "0/1"))}
    assert len(ends) == 1  # counts right-aligned under their heading
