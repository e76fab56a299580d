"""What `hw3-submit` shows a person: progress of running jobs, and a job as `--json` shows it."""
from __future__ import annotations

import sys

from shared.entities import JobStatus
from worker import kinds


def _view(status: JobStatus) -> dict:
    """A job as `--json` shows it: the stored status, with the part of the result its kind shows."""
    view = status.to_dict()
    try:
        view["result"] = kinds.get(status.kind).public_result(status.result)
    except kinds.UnknownKind:  # a job of a kind this installation does not load: shown as stored
        pass
    return view


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = int(width * done / total) if total else 0
    return "#" * filled + "-" * (width - filled)


def progress_lines(status: dict) -> list[str]:
    lines = [f"job {status['job_id']} ({status['kind']}): {status['state']}"
             + (f", ETA {status['eta_seconds']:.0f}s" if status.get("eta_seconds") else "")]
    for r in status["runs"]:
        acc = r["last_val_accuracy"]
        acc_s = f"val {acc:.4f}" if acc is not None else " " * 10
        state = r["state"]
        if r.get("lost"):
            state += (f" — no heartbeat from {r['worker']} for {r['heartbeat_age_s']:.0f} s: worker presumed lost"
                      f" (a live worker queues the run again; it resumes from its last epoch)")
        lines.append(f"  {r['name']:<22} [{_bar(r['epochs_done'], r['epochs_total'])}] "
                     f"{r['epochs_done']:>3}/{r['epochs_total']:<3} {acc_s}  {state}")
    return lines


class ProgressPrinter:
    """A bar per run, redrawn in place on a terminal; elsewhere one line per change."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.drawn = 0
        self.last: list[str] = []

    def __call__(self, status: dict) -> None:
        lines = progress_lines(status)
        if lines == self.last:
            return
        if self.tty:
            if self.drawn:
                self.stream.write(f"\x1b[{self.drawn}F")
            self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
        else:
            changed = [b for a, b in zip(self.last + [None] * len(lines), lines) if a != b]
            self.stream.write("\n".join(changed) + "\n")
        self.stream.flush()
        self.last = lines


def _merged(statuses: list[dict]) -> dict:
    """Several jobs as one progress block, side by side."""
    runs = [{**r, "name": f"{s['kind']}:{r['name']}"} for s in statuses for r in s["runs"]]
    state = ", ".join(f"{s['kind']} {s['state']}" for s in statuses)
    return {"job_id": " ".join(s["job_id"] for s in statuses), "kind": "all", "state": state, "runs": runs,
            "eta_seconds": None}
