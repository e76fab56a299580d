"""What each job kind renders: one entry point for `hw3-submit plot` and the workers' end-of-job figures."""
from __future__ import annotations

from pathlib import Path

from shared.store import Store


def render_plots(store: Store, job_id: str, out_dir: Path) -> list[Path]:
    """The job's figures, written inside `out_dir` only: each path is checked before it is written, and one that
    would leave the folder (e.g. through a symbolic link) raises shared.artifacts.UnsafePath."""
    from shared import plots

    kind = store.job_status(job_id)["kind"]
    with plots.confined_to(out_dir):
        if kind == "sweep":
            from worker import sweep

            return sweep.render_plots(store, job_id, out_dir)
        from worker import keras_jobs

        if kind in keras_jobs.KINDS:
            return keras_jobs.render_plots(store, job_id, out_dir)
    raise ValueError(f"job {job_id} has kind {kind!r}, which has no figures")
