"""`hw3-submit`: submit the homework's training jobs and read them back.

Every reading command takes --json. Exit codes: 0 success, 1 a failed, cancelled or interrupted job or an error,
2 bad usage (unknown option, malformed value), 130 Ctrl-C on --wait or `wait`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import click

from api import client, display
from shared.entities import JobStatus
from shared.settings import available_cores, get_settings
from shared.store import StoreError
from api.display import ProgressPrinter, _view, progress_lines  # noqa: F401  (used by tests too)
from worker import kinds
from worker.kinds.base import Option
from api.datasets_cli import DOWNLOAD_HELP, datasets_group, fetch_for_job

FAILED_EXIT = 1
NOT_RECORDED = "the workers' HW3_DATASETS (sent to an external broker without --datasets)"
DATASETS_HELP = ("the folder holding the input files, as the workers see it; a relative path is taken from the "
                 "current folder. Its files are checked before the job is created: always in the embedded mode, with "
                 "an external broker only if the folder exists here (the workers may see another one)  [default: "
                 "HW3_DATASETS]")


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
    if as_json:
        views = [_view(s) for s in statuses]
        _echo_json(views[0] if len(views) == 1 else views)
    else:
        display.end_of_job(statuses)
        interrupted = [s.job_id for s in statuses if s.state == "interrupted"]
        if interrupted:
            click.echo(f"continue with: {_resume_command(interrupted)}")
    sys.exit(0 if all(s.state == "succeeded" for s in statuses) else FAILED_EXIT)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def _resume_command(job_ids: list[str]) -> str:
    return f"{display.program()} resume {' '.join(job_ids)} --wait"


def _interrupted(job_ids: list[str], store, as_json: bool) -> None:
    """Ctrl-C on --wait in the embedded mode, the local workers already gone: the jobs are interrupted and
    their messages removed from the embedded broker; says how to continue them, exits 130."""
    with client.sigint_held(reraise=False):  # a second Ctrl-C must not leave the jobs half-marked
        marked = client.interrupt(job_ids, store)
        statuses = [store.job_status(j) for j in job_ids]
    if as_json:
        views = [_view(s) for s in statuses]
        _echo_json(views[0] if len(views) == 1 else views)
    if not statuses:
        click.echo("interrupted before any job was submitted", err=True)
    for st in statuses:
        kept = sum(r.state == "interrupted" for r in st.runs)
        if st.job_id in marked:
            what = f"interrupted: local workers stopped, {kept} unfinished run(s) kept with their rows and checkpoints"
        else:
            what = f"had already ended ({st.state}); local workers stopped"
        click.echo(f"job {st.job_id} ({st.kind}) {what}", err=True)
    resumable = [s.job_id for s in statuses if s.state == "interrupted"]
    if resumable:
        click.echo(f"continue with: {_resume_command(resumable)}", err=True)
    sys.exit(INTERRUPTED_EXIT)


def _detached(job_ids: list[str], store, as_json: bool) -> None:
    """Ctrl-C on --wait (or `wait`) with an external broker: the jobs go on on the workers; says how to follow
    them again, exits 130."""
    statuses = [store.job_status(j) for j in job_ids]
    if as_json:
        views = [_view(s) for s in statuses]
        _echo_json(views[0] if len(views) == 1 else views)
    going = [s.job_id for s in statuses if not s.finished]
    for st in statuses:
        going_on = "" if st.finished else ": it keeps running on the workers"
        click.echo(f"job {st.job_id} ({st.kind}) {st.state}{going_on}", err=True)
    if going:
        ids = " ".join(going)
        click.echo(f"detached; follow again with: {display.program()} wait {ids}   (stop with: "
                   f"{display.program()} cancel JOB)",
                   err=True)
    sys.exit(INTERRUPTED_EXIT)


def _wait_all(job_ids: list[str], store, as_json: bool, worker=None) -> list[JobStatus]:
    if as_json:
        return client.wait_for(job_ids, store, None, worker=worker)
    with ProgressPrinter() as printer:  # the live display ends (cursor back) however the wait ends
        return client.wait_for(job_ids, store, printer, worker=worker)


def _submit_and_maybe_wait(submits, wait: bool, workers: int | None, as_json: bool) -> None:
    """Submit one or more jobs (`submits`: functions of the store returning a job id); with --wait, follow
    them to the end. In the embedded mode, --wait runs local workers for the duration of the command.
    Without --json the job ids go to stdout, one per line; with --json stdout gets exactly one JSON document
    (the jobs as submitted, or as they ended with --wait) and everything else goes to stderr. Ctrl-C on --wait
    exits 130: in the embedded mode it stops the local workers and interrupts the jobs (`resume` continues
    them); with an external broker it only detaches (`wait` follows them again)."""
    settings = get_settings()
    store = client.get_store(settings)
    job_ids: list[str] = []

    def submit_all() -> list[str]:
        with client.sigint_held():  # Ctrl-C takes effect once every job is created, sent and listed
            job_ids.extend(submit(store) for submit in submits)
            click.echo("\n".join(job_ids), err=as_json)
        return job_ids

    if wait and settings.embedded:
        try:
            with client.local_workers(workers, settings) as proc:
                statuses = _wait_all(submit_all(), store, as_json, worker=proc)
        except KeyboardInterrupt:  # local_workers has killed its whole process group
            _interrupted(job_ids, store, as_json)
        _finish(statuses, as_json)
    submit_all()
    if wait:
        try:
            statuses = _wait_all(job_ids, store, as_json)
        except KeyboardInterrupt:  # the workers are not ours: the jobs go on
            _detached(job_ids, store, as_json)
        _finish(statuses, as_json)
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
    """A kind's Option as a click option (or argument); its default is stated in the help."""
    flag = "--" + opt.name.replace("_", "-")
    help_text = opt.help + (f"  [default: {opt.default}]" if opt.default is not None else "")
    if opt.argument:
        return click.argument(opt.name, nargs=-1 if opt.many else 1, required=True,
                              type=click.Path(path_type=Path) if opt.path else opt.type)
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
    def command(datasets, wait, workers, as_json, download=False, **options):
        params = {**options, "datasets": datasets}
        if download:
            fetch_for_job(kind.downloads, datasets)
        job_plan = _plan_or_fail(kind.name, params)
        _submit_and_maybe_wait([lambda store: client.submit(kind.name, params, store, job_plan=job_plan)],
                               wait, workers, as_json)

    command = _common_options(command)
    if kind.downloads:
        command = click.option("--download", is_flag=True, help=DOWNLOAD_HELP)(command)
    for opt in reversed(kind.options):
        command = _click_option(opt)(command)
    where = (f"\n\nResults go to {get_settings().artifacts_dir}/JOB/ (HW3_DATA/artifacts): report.md, figures "
             "and weights; `hw3-submit status JOB`, `report JOB` and `fetch JOB --dest DIR` read them back.")
    return click.command((kind.command or (kind.name,))[-1], help=kind.help + where)(command)


def _add_kind_command(kind) -> None:
    """Register `hw3-submit WORD... ` for the kind: its `command` words, nested groups made as needed."""
    *groups, last = kind.command or (kind.name,)
    parent = main
    for word in groups:
        if word not in parent.commands:
            parent.add_command(click.Group(word, help=kind.group_help or f"The {word} jobs."), word)
        parent = parent.commands[word]
    parent.add_command(_kind_command(kind), last)


for _kind in kinds.all_kinds().values():
    _add_kind_command(_kind)


@main.command("all")
@click.option("--epochs", type=click.IntRange(1, 10_000),
              help="epochs of every job (a quick run of the whole homework)  [default: each job's own]")
@click.option("--train-size", type=int, help="the sweep's training images (its first N of 50,000)  [default: 50000]")
@click.option("--synthetic", is_flag=True, help="human-machine on a generated set instead of the course file")
@click.option("--download", is_flag=True, help=DOWNLOAD_HELP)
@_common_options
def all_jobs(epochs, train_size, synthetic, download, datasets, wait, workers, as_json):
    """Submit every homework problem at once, with their defaults; `status` shows them side by side."""
    homework = [k for k in kinds.all_kinds().values() if k.problem is not None]
    if download:
        fetch_for_job(list(dict.fromkeys(name for k in homework for name in k.downloads)), datasets)
    given = {"epochs": epochs, "train_size": train_size, "synthetic": synthetic or None}
    params = {k.name: {"datasets": datasets, **{o.name: given[o.name] for o in k.options
                                                 if o.name in given and given[o.name] is not None}}
              for k in homework}
    plans = {k.name: _plan_or_fail(k.name, params[k.name]) for k in homework}
    submitted: list[str] = []

    def submit(store, name: str) -> str:
        submitted.append(client.submit(name, params[name], store, job_plan=plans[name]))
        if len(submitted) == len(homework):  # all of them: the command that makes the whole homework's document
            click.echo(f"the whole homework's report, once they end: {display.program()} report "
                       f"{' '.join(submitted)} --format html --out hw3-report.html", err=True)
        return submitted[-1]

    _submit_and_maybe_wait([lambda store, name=k.name: submit(store, name) for k in homework], wait, workers, as_json)


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
    """State, per-run progress and ETA of a job, and what it found once it has ended (all recent jobs without
    JOB)."""
    store = client.get_store(readonly=True)
    if job_id is None:
        statuses = [store.job_status(j.job_id) for j in store.list_jobs(limit=10)]
        if as_json:
            _echo_json([_view(st) for st in statuses])
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
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB...",
                callback=lambda ctx, param, values: _job_id_list(ctx, param, values))  # defined further down
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


def _job_id_list(ctx, param, values: tuple[str, ...]) -> list[str]:
    return [_job_id(ctx, param, v) for v in values]


WORKER_HINT = "; start one with `hw3-submit worker`"


@main.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB...", callback=_job_id_list)
@click.option("--wait", is_flag=True, help="show progress and exit when the jobs end (in the embedded mode, with "
              "local workers, as a job command's --wait)")
@click.option("--workers", type=click.IntRange(1, 256),
              help="local worker processes for the embedded mode  [default: one per core]")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def resume(job_ids, wait, workers, as_json):
    """Continue interrupted, failed or cancelled jobs. Runs that succeeded are kept; the others are queued again
    with their epoch rows. A sweep run continues from the checkpoint written after its last epoch, with the
    same numbers as if it had never stopped; Keras runs (confusion, regularization, human-machine) start again
    from scratch."""
    store = client.get_store()
    ids = list(dict.fromkeys(_resolve(store, j) for j in job_ids))
    try:
        for job_id in ids:  # before anything is reopened or started
            store.check_resumable(job_id)
        _submit_and_maybe_wait([lambda st, j=j: client.resume(j, st) for j in ids], wait, workers, as_json)
    except StoreError as exc:
        _fail(str(exc))


@main.command("wait")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB...", callback=_job_id_list)
@click.option("--json", "as_json", is_flag=True, help="print the final status as one JSON document")
def wait_jobs(job_ids, as_json):
    """Follow jobs' progress until they end, e.g. after Ctrl-C detached a --wait (Ctrl-C here detaches too: the
    jobs go on). Starts no worker. Exit 0 when every job succeeded, 1 when one failed, was cancelled or was
    interrupted."""
    store = client.get_store(readonly=True)
    ids = list(dict.fromkeys(_resolve(store, j) for j in job_ids))
    for st in (store.job_status(j) for j in ids):
        if st.waiting_for:
            click.echo(f"job {st.job_id}: {st.waiting_for}{WORKER_HINT}", err=True)
    try:
        statuses = _wait_all(ids, store, as_json)
    except KeyboardInterrupt:
        _detached(ids, store, as_json)
    _finish(statuses, as_json)


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


main.add_command(datasets_group)

if __name__ == "__main__":
    main()
