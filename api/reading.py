"""The reading commands of `hw3-submit`: status, list, metrics, plot, report, fetch and cancel, registered on the
group of api/group.py (api/cli.py imports this module)."""
from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import click

from api import client, display
from api.display import _view
from api.group import FAILED_EXIT, _echo_json, _fail, _job_id, _job_id_list, _resolve, _status_or_fail, main
from shared.settings import get_settings, masked_url
from shared.store import StoreError
from worker import kinds

NOT_RECORDED = "the workers' HW3_DATASETS (sent to an external broker without --datasets)"


@main.command()
@click.argument("job_id", required=False, callback=_job_id)
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
def status(job_id, as_json):
    """State, per-run progress and ETA of a job, and what it found once it has ended (all recent jobs without
    JOB)."""
    store = client.get_store(readonly=True)
    if job_id is None:
        statuses = [store.job_status(j.job_id) for j in store.list_jobs(limit=10)]
        if as_json:
            _echo_json([_view(st) for st in statuses])
        elif not statuses:
            click.echo(f"no jobs yet in {masked_url(store.url)}", err=True)
        else:
            width = display.stdout_width()
            click.echo("\n\n".join("\n".join(display.status_lines(st, width)) for st in statuses))
        return
    st = _status_or_fail(store, job_id)
    if as_json:
        _echo_json(_view(st))
    else:
        click.echo("\n".join(display.status_lines(st, display.stdout_width())))
        click.echo(f"  inputs: {st.params.get('datasets') or NOT_RECORDED}")
    sys.exit(FAILED_EXIT if st.state in ("failed", "cancelled", "interrupted") else 0)


@main.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="how many jobs")
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
def list_jobs(limit, as_json):
    """Recent jobs, newest first."""
    jobs = [j.to_dict() for j in client.get_store(readonly=True).list_jobs(limit)]
    if as_json:
        _echo_json(jobs)
        return
    rows = [("job", "kind", "state", "epochs", "created")]
    rows += [(j["job_id"], j["kind"], j["state"], f"{j['epochs_done']}/{j['epochs_total']}",
              (j["created_at"] or "")[:19].replace("T", " ")) for j in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:  # columns as wide as their longest value; the epochs right-aligned under their heading
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}  "
                   f"{row[4]}".rstrip())


METRIC_COLUMNS = ("run", "epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


@main.command()
@click.argument("job_id", callback=_job_id)
@click.option("--run", "run", help="only this run (a name such as relu-lr0.04, or a run id)  [default: every run]")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table for people, csv or json for programs")
@click.option("--json", "as_json", is_flag=True, help="same as --format json")
def metrics(job_id, run, fmt, as_json):
    """The epoch rows of a job, as they were recorded."""
    store = client.get_store(readonly=True)
    job_id = _resolve(store, job_id)
    try:
        entries = store.epochs(job_id, run)
    except (StoreError, LookupError) as exc:
        _fail(str(exc).strip("'\""))
    rows = [r.to_dict() for r in entries]
    if as_json or fmt == "json":
        _echo_json(rows)
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo("\n".join(display.metrics_table(entries)))


@main.command()
@click.argument("job_id", callback=_job_id)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="folder for the figures  [default: the job's artifacts folder]")
@click.option("--json", "as_json", is_flag=True, help="print the written paths as JSON")
def plot(job_id, out, as_json):
    """Render the job's figures from the database rows (works mid-run)."""
    from shared.artifacts import UnsafePath, job_dir
    from worker.jobs import render_plots  # matplotlib is imported only here

    settings = get_settings()
    store = client.get_store(settings)
    job_id = _resolve(store, job_id)
    out = Path(out) if out else job_dir(settings, job_id)
    try:
        paths = render_plots(store, job_id, out)  # each figure is checked to stay inside `out` before it is written
    except UnsafePath as exc:
        _fail(str(exc))
    if as_json:
        _echo_json([str(p) for p in paths])
    else:
        for p in paths:
            click.echo(p)


@main.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB...",
                callback=_job_id_list)
@click.option("--format", "fmt", type=click.Choice(["md", "html", "pdf"]), default="md", show_default=True,
              help="md: markdown; html: one self-contained file (figures inside, nothing fetched, readable on a "
                   "phone, printable); pdf: real text, numbered pages")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="the file to write  [default: md to stdout; html and pdf to hw3-report.html or hw3-report.pdf "
                   "in the current folder]")
def report(job_ids, fmt, out):
    """The homework's report: one document for one or several jobs. For the four jobs of `hw3-submit all` it is
    the whole homework: Problems 1–4 in order, each the report of its job, then an appendix of settings (each
    job's id, kind, state, times and parameters). A job still running, or interrupted, has its report built now
    from the rows and marked partial. `report JOB` alone prints the job's report.md as it was written."""
    from shared import document
    from shared.artifacts import job_dir

    settings = get_settings()
    store = client.get_store(settings, readonly=True)
    ids = list(dict.fromkeys(_resolve(store, j) for j in job_ids))
    sections = document.collect(store, settings, ids, kinds.get)
    if fmt == "md" and out is None and len(sections) == 1 and not sections[0].built:
        # as before: the job's report.md exactly as written when the job ended
        click.echo((job_dir(settings, sections[0].job.job_id) / "report.md").read_text(), nl=False)
        return
    for s in sections:
        if s.partial:
            click.echo(f"job {s.job.job_id} ({s.job.kind}) is {s.job.state}: its part shows what finished, marked "
                       "partial", err=True)
    if fmt == "md" and out is None:
        click.echo(sections[0].markdown if len(sections) == 1 else document.markdown_document(sections, Path.cwd()),
                   nl=False)
        return
    out = Path(out or f"hw3-report.{fmt}")
    data = document.render(sections, fmt, out.absolute().parent)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")  # a reader never sees half a file
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    parts = ", ".join(f"Problem {s.problem}" if s.problem else s.job.kind for s in sections)
    size = f"{len(data) / 1e6:.1f} MB" if len(data) >= 1e6 else f"{len(data) / 1e3:.0f} kB"
    click.echo(f"wrote {out} ({size}): {parts} and the appendix of settings", err=True)
    click.echo(str(out))


@main.command()
@click.argument("job_id", callback=_job_id)
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder to copy into (created if missing; the artifacts keep their relative paths)")
@click.option("--force", is_flag=True, help="replace files in DEST that differ from the artifacts")
@click.option("--json", "as_json", is_flag=True, help="print the copied paths as JSON")
def fetch(job_id, dest, force, as_json):
    """Copy the job's artifacts from the volume into DEST. A file in DEST that differs from the artifact is not
    replaced without --force (nothing is copied then)."""
    from shared.artifacts import UnsafePath, WouldOverwrite, fetch as fetch_artifacts

    settings = get_settings()
    store = client.get_store(settings)
    job_id = _resolve(store, job_id)
    try:
        copied, same = fetch_artifacts(store, settings, job_id, dest, force=force)
    except (UnsafePath, WouldOverwrite) as exc:
        _fail(str(exc))
    if as_json:
        _echo_json([str(p) for p in copied + same])
    else:
        click.echo(f"{len(copied)} file{'' if len(copied) == 1 else 's'} copied to {dest}"
                   + (f", {len(same)} already there and identical" if same else ""))


@main.command()
@click.argument("job_id", callback=_job_id)
def cancel(job_id):
    """Stop a job: queued runs never start, running ones stop at the next epoch boundary; rows stay."""
    store = client.get_store()
    job_id = _resolve(store, job_id)
    try:
        state = store.request_cancel(job_id)
    except StoreError as exc:  # JobEnded included: exit 1
        _fail(str(exc))
    click.echo(f"job {job_id}: cancel requested (state {state})")

