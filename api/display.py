"""What `hw3-submit` shows a person: live progress of running jobs, a job's status, the end of a job (its
headline result, its folder, the report command) and the metrics table; and a job as `--json` shows it.

Progress is drawn with rich: a Live display on a terminal (it fits the terminal's width and height), and one
plain line per changed line elsewhere. What a job found comes from its kind (`summary`, `pending_epochs`,
`kept_epoch` in worker/kinds/base.py); this module only lays it out.
"""
from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path
from datetime import datetime
from typing import Sequence

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shared.entities import EpochRow, JobStatus, RunStatus
from worker import kinds
from worker.kinds.base import JobKind

PLAIN_WIDTH = 80  # lines written where no terminal says how wide it is
MAX_WIDTH = 100   # progress tables stop growing here: a longer bar says nothing more


def _view(status: JobStatus) -> dict:
    """A job as `--json` shows it: the stored status, with the part of the result its kind shows."""
    view = status.to_dict()
    try:
        view["result"] = kinds.get(status.kind).public_result(status.result)
    except kinds.UnknownKind:  # a job of a kind this installation does not load: shown as stored
        pass
    return view


def _kind(status: JobStatus) -> JobKind:
    try:
        return kinds.get(status.kind)
    except kinds.UnknownKind:  # not loaded here: no summary, no pending epochs, the final epoch's accuracy
        return JobKind()


# -- numbers ----------------------------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def run_accuracy(kind: JobKind, run: RunStatus) -> float | None:
    """A run's validation accuracy as its kind ranks runs: at its last epoch, or its best (kept) epoch."""
    return run.best_val_accuracy if kind.kept_epoch == "best" else run.last_val_accuracy


def totals(status: JobStatus) -> tuple[int, int]:
    """(epochs done, epochs planned) of a job: the epochs of runs its kind will still create count from the start;
    a run that succeeded counts the epochs it ran (it may have stopped early); every other run counts its
    planned epochs, so an interrupted, cancelled or failed job shows the part it did not do."""
    done = sum(r.epochs_done for r in status.runs)
    planned = sum(r.epochs_done if r.state == "succeeded" else r.epochs_total for r in status.runs)
    return done, planned + _kind(status).pending_epochs(status)


def _eta(status: JobStatus, kind: JobKind) -> float | None:
    """The store's ETA of the existing runs, plus the pending epochs at the runs' mean seconds per epoch (the
    pending runs are not counted as running in parallel)."""
    if status.finished:
        return None
    pending = kind.pending_epochs(status)
    per_epoch = [r.mean_epoch_seconds for r in status.runs if r.mean_epoch_seconds]
    if not pending or not per_epoch:
        return status.eta_seconds
    return (status.eta_seconds or 0.0) + pending * kind.pending_epoch_cost(status) * sum(per_epoch) / len(per_epoch)


def _elapsed(status: JobStatus) -> str | None:
    try:
        seconds = (datetime.fromisoformat(status.finished_at) - datetime.fromisoformat(status.created_at))
    except (TypeError, ValueError):  # not recorded
        return None
    return _duration(seconds.total_seconds())


# -- one job's progress ---------------------------------------------------------------------------------------
def header(status: JobStatus) -> str:
    """`job ID (KIND): STATE`, with the ETA while it runs and the time it took once it has ended."""
    kind = _kind(status)
    line = f"job {status.job_id} ({status.kind}): {status.state}"
    if status.finished:
        elapsed = _elapsed(status)
        return line + (f" after {elapsed}" if elapsed else "")
    if status.cancel_requested:
        line += ", cancel requested"
    eta = _eta(status, kind)
    return line + (f", ETA ~{_duration(eta)}" if eta is not None and eta >= 1 else "")


def notes(status: JobStatus, local: bool = False) -> list[str]:
    """Sentences under a job's progress table: epochs still to come, lost and failed runs, the best run so far.
    `local`: this command runs the workers itself (the embedded --wait), so none is to be started by hand."""
    kind = _kind(status)
    out = []
    if status.waiting_for and not status.finished:  # no worker has taken it, or its workers are gone
        out.append("starting the local workers" if local else f"{status.waiting_for}; start one with "
                                                              "`hw3-submit worker`")
    pending = kind.pending_epochs(status)
    if pending:
        out.append(f"the total includes {pending} epoch{'' if pending == 1 else 's'} of runs to come"
                   + (f" ({kind.pending_runs})" if kind.pending_runs else ""))
    for r in status.runs:
        if r.lost:
            out.append(f"{r.name}: worker presumed lost (no heartbeat from {r.worker} for {r.heartbeat_age_s or 0:.0f} "
                       f"s); a live worker queues the run again and it resumes from its last epoch")
    out += [f"run {name} failed: {error}" for name, error in status.failed_runs().items()]
    if not status.finished:
        scored = [(acc, r) for r in status.runs if (acc := run_accuracy(kind, r)) is not None]
        if scored:
            acc, best = max(scored, key=lambda pair: pair[0])  # ties: the earlier run
            where = ("at its best (kept) epoch" if kind.kept_epoch == "best"
                     else f"at its latest epoch ({best.epochs_done}/{best.epochs_total})")
            out.append(f"best so far: {best.name}, val {acc:.2%} {where}")
    return out


class _Bar:
    """A progress bar as wide as its column: rich's coloured bar where there is colour, `####----` elsewhere."""

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total

    def __rich_measure__(self, console, options) -> Measurement:
        return Measurement(8, options.max_width)

    def __rich_console__(self, console, options):
        width = options.max_width
        if console.color_system is not None and not console.no_color:
            yield ProgressBar(total=max(self.total, 1), completed=min(self.done, self.total), width=width)
        else:
            filled = width * min(self.done, self.total) // self.total if self.total else 0
            yield Text("#" * filled + "-" * (width - filled))


_STATE_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "interrupted": "yellow",
                "running": "cyan", "lost": "red"}


def _table(status: JobStatus, width: int, compact: bool) -> tuple[Table, int]:
    """The runs of a job, one row each, and a total row; `compact`: only the runs that are running. Returns the
    table and how many runs it leaves out."""
    kind = _kind(status)
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, expand=True,
                  width=min(width, MAX_WIDTH) - 2, header_style="dim")
    table.add_column("run", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("", ratio=1, min_width=8)
    table.add_column("epochs", justify="right", no_wrap=True)
    table.add_column(kind.accuracy_column or ("best val" if kind.kept_epoch == "best" else "last val"),
                     justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True, overflow="ellipsis", min_width=9)  # "succeeded": steady widths
    shown = [r for r in status.runs if not compact or r.state == "running"]
    for r in shown:
        state = "lost" if r.lost else r.state
        table.add_row(r.name, _Bar(r.epochs_done, r.epochs_total), f"{r.epochs_done}/{r.epochs_total}",
                      _pct(run_accuracy(kind, r)), Text(state, style=_STATE_STYLE.get(state, "")))
    done, total = totals(status)
    table.add_row(Text("total", style="bold"), _Bar(done, total), f"{done}/{total}", "", "")
    return table, len(status.runs) - len(shown)


def job_block(status: JobStatus, width: int, compact: bool = False, local: bool = False) -> RenderableType:
    """A job's progress as rich draws it: its header, its runs' table, and the notes, each note one line."""
    table, hidden = _table(status, width, compact)
    lines = notes(status, local)
    if hidden:
        counts = {}
        for r in status.runs:
            if r.state != "running":
                counts[r.state] = counts.get(r.state, 0) + 1
        more = "more " if hidden < len(status.runs) else ""
        lines.insert(0, f"{hidden} {more}run{'' if hidden == 1 else 's'}: "
                        + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return Group(Text(header(status), style="bold", no_wrap=True, overflow="ellipsis"),
                 Padding(table, (0, 0, 0, 2), expand=False),
                 *(Text("  " + line, no_wrap=True, overflow="ellipsis") for line in lines))


def _render(renderable: RenderableType, width: int) -> list[str]:
    """The renderable as plain text lines of at most `width` characters."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False,
                      emoji=False, legacy_windows=False)
    console.print(renderable, crop=True)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def progress_lines(status: JobStatus, width: int = PLAIN_WIDTH, local: bool = False) -> list[str]:
    """A job's header and runs' table as plain lines, then its notes unwrapped (a script can grep them whole)."""
    table, _ = _table(status, width, compact=False)
    return [header(status), *_render(Padding(table, (0, 0, 0, 2), expand=False), width),
            *("  " + line for line in notes(status, local))]


# -- the end of a job, and `status JOB` ------------------------------------------------------------------------
def program() -> str:
    """How to type this command again: `hw3-submit` when that is what the shell finds, else the path it was run
    by (e.g. `.venv/bin/hw3-submit` right after `scripts/dev run`, before the virtual environment is activated)."""
    import shutil

    exe = Path(sys.argv[0])
    if exe.name != "hw3-submit":  # python -m api.cli, or an unusual entry point
        return "hw3-submit"
    found = shutil.which("hw3-submit")
    if found and Path(found).resolve() == exe.resolve():
        return "hw3-submit"
    try:
        return str(exe.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(exe.resolve())


def report_command(job_id: str) -> str:
    """`hw3-submit report JOB`, with the HW3_DATA this command was given (so that it finds the same job)."""
    from shared.settings import get_settings

    settings = get_settings()
    prefix = f"HW3_DATA={shlex.quote(str(settings.data_dir))} " if settings.data_dir_given else ""
    return f"{prefix}{program()} report {job_id}"


def result_lines(status: JobStatus) -> list[str]:
    """What a job found (its kind's summary) after how its settings differ from the homework's, if they do; its
    error, its folder and the report command; [] while it runs."""
    if not status.finished:
        return []
    from shared.artifacts import job_dir
    from shared.settings import get_settings

    kind = _kind(status)
    deviations = kind.deviations(status.params)
    out = [f"  not the homework's settings: {'; '.join(deviations)}"] if deviations else []
    out += ["  " + line for line in kind.summary(status)]
    if status.error:
        out.append(f"  error: {status.error}")
    out += [f"  artifacts: {job_dir(get_settings(), status.job_id)}",
            f"  report:    {report_command(status.job_id)}"]
    return out


def end_of_job_lines(statuses: Sequence[JobStatus]) -> list[str]:
    """The end of `--wait`: per job its header, failed runs and what `result_lines` says, a blank line between."""
    out: list[str] = []
    for status in statuses:
        if out:
            out.append("")
        out.append(header(status))
        out += [f"  run {name} failed: {error}" for name, error in status.failed_runs().items()]
        out += result_lines(status)
    return out


def end_of_job(statuses: Sequence[JobStatus]) -> None:
    click.echo("\n".join(end_of_job_lines(statuses)))


def status_lines(status: JobStatus, width: int = PLAIN_WIDTH) -> list[str]:
    """`hw3-submit status JOB`: the progress table and notes, and once the job has ended, what it found."""
    return progress_lines(status, width) + result_lines(status)


def stdout_width() -> int:
    """The terminal's width when stdout is one, else PLAIN_WIDTH (or COLUMNS)."""
    return Console(file=sys.stdout).width  # rich reads the terminal, else COLUMNS, else 80


# -- live progress ----------------------------------------------------------------------------------------------
class ProgressPrinter:
    """Progress of running jobs on stderr (or `console`): redrawn in place on a terminal by a rich Live display
    that fits the terminal, elsewhere one plain line per changed line. Call it with the jobs' statuses; use it
    as a context manager (or call close()) so that the display ends, cursor restored, on any way out.
    `local`: the command runs the workers itself (no advice to start one)."""

    def __init__(self, stream=None, console: Console | None = None, local: bool = False):
        self.console = console or Console(file=stream or sys.stderr, highlight=False)
        self.local = local
        self.tty = self.console.is_terminal
        self.live: Live | None = None
        self.last: list[str] = []

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, statuses: JobStatus | Sequence[JobStatus]) -> None:
        statuses = [statuses] if isinstance(statuses, JobStatus) else list(statuses)
        if self.tty:
            self._draw(statuses)
        else:
            self._print_changes(statuses)

    def _view(self, statuses: list[JobStatus], compact: bool) -> RenderableType:
        width = self.console.width
        blocks: list[RenderableType] = []
        for status in statuses:
            if blocks:
                blocks.append(Text(""))
            blocks.append(job_block(status, width, compact, self.local))
        return Group(*blocks)

    def _draw(self, statuses: list[JobStatus]) -> None:
        view = self._view(statuses, compact=False)
        if len(self.console.render_lines(view, pad=False)) >= self.console.height:
            view = self._view(statuses, compact=True)  # taller than the terminal: only the running runs
        if self.live is None:
            self.live = Live(view, console=self.console, auto_refresh=False, redirect_stdout=False,
                             redirect_stderr=False)
            self.live.start(refresh=True)
        else:
            self.live.update(view, refresh=True)

    def _print_changes(self, statuses: list[JobStatus]) -> None:
        lines = [line for s in statuses for line in progress_lines(s, self.console.width, self.local)]
        changed = [b for a, b in zip(self.last + [None] * len(lines), lines) if a != b]
        if changed:
            self.console.file.write("\n".join(changed) + "\n")
            self.console.file.flush()
        self.last = lines

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            self.console.line()  # a blank line between the last frame and what follows


# -- `hw3-submit metrics` ---------------------------------------------------------------------------------------
METRICS_TABLE = (("epoch", "epoch", "d"), ("lr", "lr", ".5g"), ("train_loss", "train_loss", ".4f"),
                 ("train_acc", "train_accuracy", ".4f"), ("val_loss", "val_loss", ".4f"),
                 ("val_acc", "val_accuracy", ".4f"), ("sec", "seconds", ".2f"))


def metrics_table(rows: Sequence[EpochRow]) -> list[str]:
    """Epoch rows as a table of fixed-width columns, each as wide as its widest cell; "-" where a value is
    missing (the sweep's final retrain has no validation)."""
    cells = [[r.run, *("-" if getattr(r, key) is None else format(getattr(r, key), spec)
                       for _, key, spec in METRICS_TABLE)] for r in rows]
    head = ["run", *(title for title, _, _ in METRICS_TABLE)]
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(len(head))]
    return [f"{row[0]:<{widths[0]}}" + "".join(f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:]))
            for row in [head, *cells]]
