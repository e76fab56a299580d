"""`hw3-submit`: submit the homework's training jobs and read them back.

Every reading command takes --json. Exit codes: 0 success, 1 a failed, cancelled or interrupted job or an error,
2 bad usage (unknown option, malformed value), 130 Ctrl-C on --wait or `wait`.

Here: the entry point `main` (the group itself is in api/group.py), a command per job kind derived from the
registry, `all`, submitting and following jobs (--wait, `resume`, `wait`, Ctrl-C), `worker` and `db`. The reading
commands (status, list, metrics, plot, report, fetch, cancel) are in api/reading.py.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import click

from api import client, display
from shared.entities import JobStatus
from shared.settings import available_cores, get_settings
from shared.store import StoreError
from api.display import ProgressPrinter, _view, progress_lines  # noqa: F401  (used by tests too)
from api.group import FAILED_EXIT, _echo_json, _fail, _job_id_list, _resolve, main
from api import reading  # noqa: F401  (defining them registers status, list, metrics, plot, report, fetch, cancel)
from worker import kinds
from worker.kinds.base import Option
from api.datasets_cli import DOWNLOAD_HELP, datasets_group, fetch_for_job

DATASETS_HELP = ("the folder holding the input files, as the workers see it; a relative path is taken from the "
                 "current folder. Its files are checked before the job is created: always in the embedded mode, with "
                 "an external broker only if it (or HW3_DATASETS) names a folder that exists here: the workers may see "
                 "another one  [default: HW3_DATASETS; with an external broker, the workers' own]")


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


def _finish(statuses: list[JobStatus], as_json: bool, last_words: str = "") -> None:
    """The jobs as they ended (one JSON document, or each job's summary), then `last_words`; exit 0 when every
    job succeeded, 1 otherwise."""
    if as_json:
        views = [_view(s) for s in statuses]
        _echo_json(views[0] if len(views) == 1 else views)
    else:
        display.end_of_job(statuses)
        interrupted = [s.job_id for s in statuses if s.state == "interrupted"]
        if interrupted:
            click.echo(f"continue with: {_resume_command(interrupted)}")
    if last_words:
        click.echo(last_words, err=as_json)
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
            again = ("resume continues them from their last epoch" if kinds.get(st.kind).resumes_runs
                     else "resume trains them again")
            what = f"interrupted: local workers stopped, {kept} unfinished run(s) kept with their epoch rows; {again}"
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
    with ProgressPrinter(local=worker is not None) as printer:  # the display ends (cursor back) however it ends
        return client.wait_for(job_ids, store, printer, worker=worker)


def _submit_and_maybe_wait(submits, wait: bool, workers: int | None, as_json: bool,
                           last_words: Callable[[list[str]], str] = lambda ids: "") -> None:
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
        _finish(statuses, as_json, last_words(job_ids))
    submit_all()
    if wait:
        try:
            statuses = _wait_all(job_ids, store, as_json)
        except KeyboardInterrupt:  # the workers are not ours: the jobs go on
            _detached(job_ids, store, as_json)
        _finish(statuses, as_json, last_words(job_ids))
    if as_json:
        views = [_view(store.job_status(j)) for j in job_ids]
        _echo_json(views[0] if len(views) == 1 else views)
    if settings.embedded:
        click.echo(f"queued in the embedded broker; `{display.program()} wait {' '.join(job_ids)}` runs it here "
                   f"(or start workers with `{display.program()} worker`)", err=True)


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
            click.echo(f"the whole homework's report, once they end: {_homework_report(submitted)}", err=True)
        return submitted[-1]

    _submit_and_maybe_wait([lambda store, name=k.name: submit(store, name) for k in homework], wait, workers, as_json,
                           last_words=lambda ids: f"the whole homework's report: {_homework_report(ids)}")


def _homework_report(job_ids: list[str]) -> str:
    return f"{display.program()} report {' '.join(job_ids)} --format html --out hw3-report.html"


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
    with their epoch rows and continue from the checkpoint written after their last epoch: a sweep run with the
    same numbers as if it had never stopped, a Keras run (confusion, regularization, human-machine) with its
    weights and optimizer state (its later shuffles differ from an uninterrupted run's)."""
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
@click.option("--workers", type=click.IntRange(1, 256),
              help="local worker processes, in the embedded mode when no worker is alive  [default: one per core]")
@click.option("--json", "as_json", is_flag=True, help="print the final status as one JSON document")
def wait_jobs(job_ids, workers, as_json):
    """Follow jobs' progress until they end, e.g. after Ctrl-C detached a --wait. With an external broker it
    starts no worker and Ctrl-C detaches (the jobs go on). In the embedded mode, when no worker is alive (a job
    submitted without --wait), it runs local workers as --wait does, and Ctrl-C interrupts the jobs. Exit 0 when
    every job succeeded, 1 when one failed, was cancelled or was interrupted."""
    settings = get_settings()
    store = client.get_store(settings, readonly=True)
    ids = list(dict.fromkeys(_resolve(store, j) for j in job_ids))
    statuses = [store.job_status(j) for j in ids]
    idle = [st for st in statuses if st.waiting_for and not st.finished]
    if idle and settings.embedded:  # nothing would ever take them: this command runs the workers
        try:
            with client.local_workers(workers, settings) as proc:
                statuses = _wait_all(ids, store, as_json, worker=proc)
        except KeyboardInterrupt:
            _interrupted(ids, store, as_json)
        _finish(statuses, as_json)
    for st in idle:
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