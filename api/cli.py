"""`hw3-submit`: submit the homework's training jobs and read them back.

Every reading command takes --json. Exit codes: 0 success, 1 a failed or cancelled job or an error,
2 bad usage (unknown option, malformed value).
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import click

from api import client
from shared.entities import JobStatus
from shared.settings import available_cores, get_settings
from shared.store import StoreError
from api.display import ProgressPrinter, _merged, _view, progress_lines  # noqa: F401  (used by tests too)
from worker import kinds
from worker.kinds.base import Option

FAILED_EXIT = 1
DATASETS_HELP = ("folder holding the input files, as the workers see it (an absolute path; default: the worker's "
                 "HW3_DATASETS)")


def _fail(message: str, code: int = FAILED_EXIT):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _csv_of(kind, label: str):
    def parse(ctx, param, value):
        if value is None:
            return None
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items:
            raise click.BadParameter(f"expected a comma-separated list of {label}, got {value!r}")
        try:
            return [kind(v) for v in items]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {label}, got {value!r}") from None
    return parse


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def _finish(statuses: list[JobStatus], as_json: bool) -> None:
    statuses = [_view(s) for s in statuses]
    if as_json:
        _echo_json(statuses[0] if len(statuses) == 1 else statuses)
    else:
        for status in statuses:
            click.echo(f"job {status['job_id']} ({status['kind']}) {status['state']}")
            if status["error"]:
                click.echo(f"error: {status['error']}")
            result = status.get("result") or {}
            for key in ("test_accuracy", "val_accuracy"):
                if isinstance(result.get(key), float):
                    click.echo(f"{key.replace('_', ' ')}: {result[key]:.4f}")
    sys.exit(0 if all(s["state"] == "succeeded" for s in statuses) else FAILED_EXIT)


def _wait_all(job_ids: list[str], store, as_json: bool, worker=None) -> list[JobStatus]:
    printer = None if as_json else ProgressPrinter()
    show = printer and (lambda statuses: printer(_view(statuses[0]) if len(statuses) == 1
                                                 else _merged([_view(s) for s in statuses])))
    return client.wait_for(job_ids, store, show, worker=worker)


def _submit_and_maybe_wait(submits, wait: bool, workers: int | None, as_json: bool) -> None:
    """Submit one or more jobs (`submits`: functions of the store returning a job id); with --wait, follow
    them to the end. In the embedded mode, --wait runs local workers for the duration of the command.
    Without --json the job ids go to stdout, one per line; with --json stdout gets exactly one JSON document
    (the jobs as submitted, or as they ended with --wait) and everything else goes to stderr."""
    settings = get_settings()
    store = client.get_store(settings)

    def submit_all() -> list[str]:
        job_ids = [submit(store) for submit in submits]
        click.echo("\n".join(job_ids), err=as_json)
        return job_ids

    if wait and settings.embedded:
        with client.local_workers(workers, settings) as proc:
            statuses = _wait_all(submit_all(), store, as_json, worker=proc)
        _finish(statuses, as_json)
    job_ids = submit_all()
    if wait:
        _finish(_wait_all(job_ids, store, as_json), as_json)
    if as_json:
        views = [_view(store.job_status(j)) for j in job_ids]
        _echo_json(views[0] if len(views) == 1 else views)
    if settings.embedded:
        click.echo("queued in the embedded broker; start workers with `hw3-submit worker` "
                   "or submit with --wait", err=True)


class _Main(click.Group):
    """The command group; a broker that cannot be reached, or a store that refuses (an old schema), is reported
    as one `error:` line (exit 1)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (client.BrokerUnavailable, StoreError) as exc:  # e.g. SchemaBehind as a reading command opens it
            _fail(str(exc))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Submit EE599 HW3 training jobs to Celery workers and read their results back."""


def _click_option(opt: Option):
    """A kind's Option as a click option; its default is stated in the help."""
    flag = "--" + opt.name.replace("_", "-")
    help_text = opt.help + (f"  [default: {opt.default}]" if opt.default is not None else "")
    if opt.flag:
        return click.option(flag, opt.name, is_flag=True, default=None, help=help_text)
    if opt.csv:
        label = opt.label or {int: "integers", float: "numbers"}.get(opt.type, "names")
        return click.option(flag, opt.name, callback=_csv_of(opt.type, label), metavar="A,B,...", help=help_text)
    if opt.path:
        return click.option(flag, opt.name, type=click.Path(path_type=Path), help=help_text)
    return click.option(flag, opt.name, type=opt.type, help=help_text)


def _common_options(fn):
    for opt in reversed([
        click.option("--datasets", help=DATASETS_HELP),
        click.option("--wait", is_flag=True, help="show progress and exit when the job ends"),
        click.option("--workers", type=click.IntRange(1, 256),
                     help="local worker processes for the embedded mode  [default: one per core]"),
        click.option("--json", "as_json", is_flag=True, help="print JSON"),
    ]):
        fn = opt(fn)
    return fn


def _plan_or_fail(kind: str, params: dict):
    """The kind's plan of `params`; bad values are refused (exit 2) before anything is created or started."""
    try:
        return client.plan(kind, params)
    except ValueError as exc:
        _fail(str(exc), 2)


def _kind_command(kind) -> click.Command:
    """`hw3-submit KIND [options]`, derived from the kind's options."""
    def command(datasets, wait, workers, as_json, **options):
        params = {**options, "datasets": datasets}
        job_plan = _plan_or_fail(kind.name, params)
        _submit_and_maybe_wait([lambda store: client.submit(kind.name, params, store, job_plan=job_plan)],
                               wait, workers, as_json)

    command = _common_options(command)
    for opt in reversed(kind.options):
        command = _click_option(opt)(command)
    where = (f"\n\nResults go to {get_settings().artifacts_dir}/JOB/ (HW3_DATA/artifacts): report.md, figures "
             "and weights; `hw3-submit status JOB`, `report JOB` and `fetch JOB --dest DIR` read them back.")
    return click.command(kind.name, help=kind.help + where)(command)


for _kind in kinds.all_kinds().values():
    main.add_command(_kind_command(_kind))


@main.command("all")
@click.option("--epochs", type=click.IntRange(1, 10_000),
              help="epochs of every job (a quick run of the whole homework)  [default: each job's own]")
@click.option("--train-size", type=int, help="the sweep's training images (its first N of 50,000)  [default: 50000]")
@click.option("--synthetic", is_flag=True, help="human-machine on a generated set instead of the course file")
@_common_options
def all_jobs(epochs, train_size, synthetic, datasets, wait, workers, as_json):
    """Submit every homework problem at once, with their defaults; `status` shows them side by side."""
    homework = [k for k in kinds.all_kinds().values() if k.problem is not None]
    given = {"epochs": epochs, "train_size": train_size, "synthetic": synthetic or None}
    params = {k.name: {"datasets": datasets, **{o.name: given[o.name] for o in k.options
                                                 if o.name in given and given[o.name] is not None}}
              for k in homework}
    plans = {k.name: _plan_or_fail(k.name, params[k.name]) for k in homework}
    _submit_and_maybe_wait([lambda store, name=k.name: client.submit(name, params[name], store, job_plan=plans[name])
                            for k in homework], wait, workers, as_json)


def _job_id(ctx, param, value: str | None) -> str | None:
    """JOB arguments are checked as they are parsed, before any file or database is opened: a job id, or a
    unique beginning of one (resolved by `_resolve` once the store is open)."""
    from shared.store import InvalidJobId, validate_job_id_prefix

    try:
        return None if value is None else validate_job_id_prefix(value)
    except InvalidJobId as exc:
        _fail(str(exc))


def _resolve(store, prefix: str) -> str:
    """The full id of the job `prefix` names (exit 1 when none or several jobs match)."""
    try:
        return store.resolve_job_id(prefix)
    except StoreError as exc:
        _fail(str(exc))


def _status_or_fail(store, job_id: str) -> JobStatus:
    """The status of the job `job_id` names (a full id or a unique beginning of one)."""
    try:
        return store.job_status(store.resolve_job_id(job_id))
    except StoreError as exc:
        _fail(str(exc))


@main.command()
@click.argument("job_id", required=False, callback=_job_id)
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
def status(job_id, as_json):
    """State, per-run progress, best validation accuracy and ETA of a job (all recent jobs without JOB)."""
    store = client.get_store(readonly=True)
    if job_id is None:
        statuses = [_view(store.job_status(j.job_id)) for j in store.list_jobs(limit=10)]
        if as_json:
            _echo_json(statuses)
        else:
            for st in statuses:
                click.echo("\n".join(progress_lines(st)))
        return
    st = _view(_status_or_fail(store, job_id))
    if as_json:
        _echo_json(st)
    else:
        click.echo("\n".join(progress_lines(st)))
        if st["best_val_accuracy"] is not None:
            click.echo(f"best validation accuracy so far: {st['best_val_accuracy']:.4f}")
        if st["error"]:
            click.echo(f"error: {st['error']}")
        for r in st["runs"]:
            if r["error"]:
                click.echo(f"run {r['name']} failed: {r['error']}")
        if st["result"]:
            click.echo("result: " + json.dumps(st["result"], default=str))
    sys.exit(FAILED_EXIT if st["state"] in ("failed", "cancelled") else 0)


@main.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="how many jobs")
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
def list_jobs(limit, as_json):
    """Recent jobs, newest first."""
    jobs = [j.to_dict() for j in client.get_store(readonly=True).list_jobs(limit)]
    if as_json:
        _echo_json(jobs)
        return
    click.echo(f"{'job':<13}{'kind':<16}{'state':<11}{'epochs':>11}  created")
    for j in jobs:
        click.echo(f"{j['job_id']:<13}{j['kind']:<16}{j['state']:<11}"
                   f"{j['epochs_done']:>5}/{j['epochs_total']:<5}  {j['created_at']}")


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
        rows = [r.to_dict() for r in store.epochs(job_id, run)]
    except (StoreError, LookupError) as exc:
        _fail(str(exc).strip("'\""))
    if as_json or fmt == "json":
        _echo_json(rows)
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(f"{'run':<22}{'epoch':>6}{'lr':>10}{'train_loss':>12}{'train_acc':>11}"
                   f"{'val_loss':>10}{'val_acc':>9}{'sec':>7}")
        fmtf = lambda v, spec: format(v, spec) if v is not None else "-"
        for r in rows:
            click.echo(f"{r['run']:<22}{r['epoch']:>6}{fmtf(r['lr'], '10.5g')}{fmtf(r['train_loss'], '12.4f')}"
                       f"{fmtf(r['train_accuracy'], '11.4f')}{fmtf(r['val_loss'], '10.4f')}"
                       f"{fmtf(r['val_accuracy'], '9.4f')}{fmtf(r['seconds'], '7.2f')}")


@main.command()
@click.argument("job_id", callback=_job_id)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="folder for the figures  [default: the job's artifacts folder]")
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
@click.argument("job_id", callback=_job_id)
def report(job_id):
    """Print the job's report.md (the homework's deliverables)."""
    from shared.artifacts import job_dir

    settings = get_settings()
    st = _status_or_fail(client.get_store(settings, readonly=True), job_id)
    path = job_dir(settings, st.job_id) / "report.md"
    if not path.is_file():
        _fail(f"job {st.job_id} has no report yet (state {st.state}); it is written when the job ends")
    click.echo(path.read_text(), nl=False)


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
        copied = fetch_artifacts(store, settings, job_id, dest, force=force)
    except (UnsafePath, WouldOverwrite) as exc:
        _fail(str(exc))
    if as_json:
        _echo_json([str(p) for p in copied])
    else:
        click.echo(f"{len(copied)} files copied to {dest}")


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


@main.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), help="parallel tasks  [default: one per core]")
@click.option("--loglevel", default="INFO", show_default=True, help="Celery log level (DEBUG, INFO, WARNING, ...)")
@click.option("--name", default="worker", show_default=True,
              help="worker node name; @%h (the host name) is added unless it has an @")
def worker(concurrency, loglevel, name):
    """Start a Celery worker against CELERY_BROKER_URL (or the embedded broker)."""
    concurrency = concurrency or available_cores()
    client.get_store()  # apply migrations before the pool forks
    cmd = client.worker_command(concurrency, name if "@" in name else f"{name}@%h", loglevel)
    os.execve(cmd[0], cmd, client.worker_env(concurrency))


@main.group()
def db():
    """Database schema commands."""


@db.command()
def upgrade():
    """Apply the schema migrations (also done automatically)."""
    store = client.get_store()
    click.echo(f"database at revision {store.schema_revision()}")


if __name__ == "__main__":
    main()
