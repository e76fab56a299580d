"""What `hw3-submit` shows a person (api/display.py and the kinds' `summary` / `pending_epochs`): the headline
of each kind at the end of a job, `status JOB` while a job runs and once it has ended, the metrics table, the
progress totals, and the live display on a terminal (rich, at 70 columns) and off one (plain lines)."""
from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner
from rich.console import Console

from api import cli, display
from shared.entities import EpochRow, JobStatus, RunStatus
from worker.kinds.base import JobKind

pytestmark = pytest.mark.unit

JOB_ID = "0123456789ab"
CREATED, FINISHED = "2024-05-01T10:00:00+00:00", "2024-05-01T10:01:12+00:00"


def run(run_id: int, name: str, *, done: int = 3, total: int = 3, last: float | None = None,
        best: float | None = None, state: str = "running", role: str = "run", error: str | None = None,
        lost: bool = False) -> RunStatus:
    return RunStatus(run_id=run_id, job_id=JOB_ID, name=name, role=role, config={}, state=state, epochs_total=total,
                     epochs_done=done, attempts=1, result=None, error=error, worker="w1@host", pid=42,
                     best_val_accuracy=best if best is not None else last, last_val_accuracy=last,
                     mean_epoch_seconds=2.0 if done else None, heartbeat_age_s=130.4 if lost else 1.0, lost=lost)


def job(kind: str, runs: list[RunStatus], *, state: str = "running", result: dict | None = None,
        params: dict | None = None, error: str | None = None, eta: float | None = None,
        cancel: bool = False) -> JobStatus:
    ended = state in ("succeeded", "failed", "cancelled")
    return JobStatus(job_id=JOB_ID, kind=kind, state=state, error=error, params=params or {}, result=result,
                     cancel_requested=cancel, created_at=CREATED, started_at=CREATED,
                     finished_at=FINISHED if ended else None, best_val_accuracy=None, eta_seconds=eta, runs=runs)


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "HW3_KINDS", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


# ----------------------------------------------------------------------------- the jobs of each kind
SWEEP_RUNS = [run(i + 1, f"{a}-lr{lr:g}", last=acc, state="succeeded")
              for i, ((a, lr), acc) in enumerate(zip([(a, lr) for a in ("tanh", "relu") for lr in (0.02, 0.04, 0.08)],
                                                     (0.9801, 0.9822, 0.9790, 0.9835, 0.9858, 0.9840)))]
SWEEP_RESULT = {
    "chosen": {"run": "relu-lr0.04", "activation": "relu", "lr": 0.04, "val_accuracy": 0.9858},
    "selection": "validation accuracy at the final epoch", "test_accuracy": 0.9861, "test_loss": 0.0467,
    "val_accuracy": {r.name: r.last_val_accuracy for r in SWEEP_RUNS}, "failed_runs": {},
    "weights": "runs/final/weights.npz"}


def finished_sweep() -> JobStatus:
    return job("sweep", [*SWEEP_RUNS, run(7, "final", role="final", state="succeeded")], state="succeeded",
               result=SWEEP_RESULT, params={"epochs": 3})


CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CONFUSION_RESULT = {  # as stored: with the 10 × 10 matrix and table that `status` must not dump
    "test_accuracy": 0.8898, "test_loss": 0.3121, "epochs_run": 40,
    "most_confused_pair": {"classes": ["T-shirt/top", "Shirt"], "indices": [0, 6], "rate": 0.211,
                           "rate_ab": 0.079, "rate_ba": 0.132, "ties": []},
    "most_confused_for": [{"class": c, "confused_with": "Shirt", "rate": 0.05, "ties": [], "correct_rate": 0.9}
                          for c in CLASSES],
    "confusion_rates": [[0.01 * (i + j) for j in range(10)] for i in range(10)],
    "confusion_table": "true \\ predicted ...", "class_names": CLASSES, "failed_runs": {}}
REGULARIZATION_RESULT = {"test_accuracy": {"plain": 0.8879, "l2_dropout": 0.8835},
                         "labels": {"plain": "plain (128)", "l2_dropout": "L2 + dropout (48)"},
                         "description": ["a sentence"], "failed_runs": {}}
HUMAN_MACHINE_RESULT = {"val_accuracy": 0.6142, "best_run": "adam-none", "model_path": "model.hdf5",
                        "best_epoch": 37, "ranking": ["adam-none", "sgd-none"],
                        "failed_runs": {}}


@pytest.mark.parametrize("kind, runs, result, expected", [
    ("sweep", SWEEP_RUNS, SWEEP_RESULT,
     ["chosen configuration: relu, initial LR 0.04 (run relu-lr0.04)",
      "its validation accuracy: 98.58% at the final epoch, best of 6 runs",
      "its test accuracy: 98.61% after a retrain on all 60,000 images"]),
    ("confusion", [run(1, "confusion", done=40, total=40, last=0.88, state="succeeded")], CONFUSION_RESULT,
     ["test accuracy: 88.98% after 40 epochs",
      "most confused pair: T-shirt/top and Shirt (rates summed: 21.10%)",
      "T-shirt/top taken for Shirt: 7.90% of its test images",
      "Shirt taken for T-shirt/top: 13.20% of its test images"]),
    ("regularization", [run(1, "plain", state="succeeded"), run(2, "l2_dropout", state="succeeded")],
     REGULARIZATION_RESULT,
     ["plain (128): test accuracy 88.79%", "L2 + dropout (48): test accuracy 88.35%"]),
    ("human-machine", [run(1, "adam-none", state="succeeded"), run(2, "sgd-none", state="succeeded")],
     HUMAN_MACHINE_RESULT,
     ["best run: adam-none, validation accuracy 61.42% at kept epoch 37",
      "its model: model.hdf5 (in the artifacts folder)"]),
])
def test_the_end_of_a_job_shows_its_kinds_headline_its_folder_and_the_report_command(kind, runs, result, expected,
                                                                                      data):
    lines = display.end_of_job_lines([job(kind, runs, state="succeeded", result=result)])
    assert lines == [f"job {JOB_ID} ({kind}): succeeded after 1m 12s",
                     *("  " + line for line in expected),
                     f"  artifacts: {data / 'artifacts' / JOB_ID}",
                     f"  report:    HW3_DATA={data} hw3-submit report {JOB_ID}"]


def test_the_report_command_has_no_prefix_without_hw3_data(monkeypatch):
    monkeypatch.delenv("HW3_DATA")
    assert display.report_command(JOB_ID) == f"hw3-submit report {JOB_ID}"


def test_a_failed_job_ends_with_its_error_and_failed_runs():
    failed = job("sweep", [run(1, "relu-lr1e+06", done=0, state="failed", error="TrainingDiverged: nan")],
                 state="failed", error="every run failed: relu-lr1e+06: TrainingDiverged: nan")
    lines = display.end_of_job_lines([failed])
    assert lines[:3] == [f"job {JOB_ID} (sweep): failed after 1m 12s",
                         "  run relu-lr1e+06 failed: TrainingDiverged: nan",
                         "  error: every run failed: relu-lr1e+06: TrainingDiverged: nan"]
    assert lines[3].startswith("  artifacts: ") and lines[4].startswith("  report:    ")


def test_several_jobs_end_one_block_each():
    lines = display.end_of_job_lines([finished_sweep(), job("regularization", [], state="succeeded",
                                                            result=REGULARIZATION_RESULT)])
    assert lines.count("") == 1
    assert lines[lines.index("") + 1] == f"job {JOB_ID} (regularization): succeeded after 1m 12s"


def test_finish_prints_the_end_of_the_job_and_exits_by_its_state(capsys):
    with pytest.raises(SystemExit) as ended:
        cli._finish([finished_sweep()], as_json=False)
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert "its test accuracy: 98.61%" in out and f"hw3-submit report {JOB_ID}" in out


def test_a_kind_says_nothing_by_default_and_nothing_before_its_result():
    assert JobKind().summary(finished_sweep()) == [] and JobKind().pending_epochs(finished_sweep()) == 0
    for kind in ("sweep", "confusion", "regularization", "human-machine"):
        assert display._kind(job(kind, [])).summary(job(kind, [])) == []


# ----------------------------------------------------------------------------- `status JOB`
def test_status_of_a_running_sweep_shows_the_best_so_far_at_the_latest_epoch():
    runs = [run(1, "tanh-lr0.02", done=2, last=0.91, best=0.93), run(2, "relu-lr0.02", done=1, last=0.95),
            run(3, "relu-lr0.04", done=0, state="queued")]
    lines = display.status_lines(job("sweep", runs, params={"epochs": 3}, eta=12.0), width=80)
    assert lines[0] == f"job {JOB_ID} (sweep): running, ETA ~19s"  # + the retrain's 3 epochs at 2 s × 60/53.3
    assert lines[1].split() == ["run", "epochs", "last", "val", "state"]
    assert "best so far: relu-lr0.02, val 95.00% at its latest epoch (1/3)" in lines[-1]
    assert not any(line.lstrip().startswith(("artifacts", "report")) for line in lines)


def test_status_of_human_machine_ranks_runs_by_their_kept_epoch():
    runs = [run(1, "sgd-none", done=5, total=10, last=0.70, best=0.72),
            run(2, "adam-none", done=5, total=10, last=0.60, best=0.75)]
    lines = display.status_lines(job("human-machine", runs), width=80)
    assert lines[1].split() == ["run", "epochs", "best", "val", "state"]
    assert "75.00%" in lines[3] and "72.00%" in lines[2]  # the best epoch's accuracy, not the latest
    assert lines[-1] == "  best so far: adam-none, val 75.00% at its best (kept) epoch"


@pytest.mark.parametrize("kind, result", [("sweep", SWEEP_RESULT), ("confusion", CONFUSION_RESULT),
                                          ("regularization", REGULARIZATION_RESULT),
                                          ("human-machine", HUMAN_MACHINE_RESULT)])
def test_status_of_an_ended_job_is_its_table_and_headline_without_raw_json(kind, result):
    runs = [run(1, "a", last=0.9, state="succeeded")]
    ended = job(kind, runs, state="succeeded", result=result)
    lines = display.status_lines(ended, width=80)
    assert lines[0] == f"job {JOB_ID} ({kind}): succeeded after 1m 12s"
    assert lines[-2].startswith("  artifacts: ") and lines[-1].startswith("  report:    ")
    assert [line for line in lines if line in {"  " + s for s in display._kind(ended).summary(ended)}]
    assert not any("best so far" in line for line in lines)
    assert not any("{" in line or "[" in line for line in lines)
    assert all(len(line) <= 80 for line in lines[:-2])  # all but the folder and the command (long paths)


def test_status_notes_lost_and_failed_runs_in_whole_lines():
    runs = [run(1, "relu-lr0.04", done=1, last=0.9, lost=True),
            run(2, "relu-lr1e+06", done=0, state="failed", error="TrainingDiverged: training loss became nan at "
                "epoch 1 (lr 1e+06); try a smaller learning rate")]
    lines = display.status_lines(job("sweep", runs), width=70)
    assert ("  relu-lr0.04: worker presumed lost (no heartbeat from w1@host for 130 s); a live worker queues the "
            "run again and it resumes from its last epoch") in lines
    assert f"  run relu-lr1e+06 failed: {runs[1].error}" in lines  # a script can find it whole
    assert "lost" in next(line for line in lines if line.startswith("  relu-lr0.04 ")).split()


class FakeStore:
    def __init__(self, status: JobStatus, rows=()):
        self.status, self.rows = status, list(rows)

    def resolve_job_id(self, prefix):
        return JOB_ID

    def job_status(self, job_id):
        return self.status

    def epochs(self, job_id, run=None):
        return self.rows


def test_the_status_command_prints_the_summary_of_an_ended_confusion_job(monkeypatch):
    ended = job("confusion", [run(1, "confusion", done=40, total=40, last=0.88, state="succeeded")],
                state="succeeded", result=CONFUSION_RESULT)
    monkeypatch.setattr(cli.client, "get_store", lambda *a, **k: FakeStore(ended))
    result = CliRunner().invoke(cli.main, ["status", JOB_ID])
    assert result.exit_code == 0, result.output
    assert "  most confused pair: T-shirt/top and Shirt (rates summed: 21.10%)" in result.output.splitlines()
    assert "result:" not in result.output and "confusion_rates" not in result.output
    lines = result.output.splitlines()
    table = lines[:next(i for i, line in enumerate(lines) if line.startswith("  artifacts: "))]
    assert max(len(line) for line in table) <= 80  # not a terminal: 80 columns


# ----------------------------------------------------------------------------- progress totals
def test_the_sweeps_total_counts_its_final_retrain_before_it_exists():
    ran = [run(i, f"r{i}", done=50, total=50, last=0.9, state="succeeded") for i in range(1, 7)]
    waiting = job("sweep", ran, params={"epochs": 50})
    assert display._kind(waiting).pending_epochs(waiting) == 50
    assert display.totals(waiting) == (300, 350)
    assert [line for line in display.progress_lines(waiting) if line.lstrip().startswith("total")][0].split()[-1] \
        == "300/350"
    assert "  the total includes 50 epochs of runs to come (the final retrain)" in display.progress_lines(waiting)

    retraining = job("sweep", [*ran, run(7, "final", done=10, total=50, role="final")], params={"epochs": 50})
    assert display.totals(retraining) == (310, 350)
    cancelling = job("sweep", ran, params={"epochs": 50}, cancel=True)
    assert display.totals(cancelling) == (300, 350)  # what a resume would still do
    failed = job("sweep", [*ran[:5], run(6, "r6", done=3, total=50, state="failed", error="x")],
                 state="failed", params={"epochs": 50})
    assert display.totals(failed) == (253, 300)  # no retrain will come


def test_a_run_that_succeeded_counts_the_epochs_it_ran_the_others_their_plan():
    status = job("human-machine", [run(1, "a", done=4, total=10, state="failed", error="x"),
                                   run(2, "b", done=6, total=10), run(3, "c", done=5, total=10, state="succeeded")])
    assert display.totals(status) == (15, 25)  # c stopped early


def test_an_interrupted_job_shows_what_is_left():
    runs = [run(1, "r1", done=50, total=50, state="succeeded"), run(2, "r2", done=2, total=50, state="interrupted"),
            run(3, "r3", done=0, total=50, state="interrupted")]
    status = job("sweep", runs, state="interrupted", params={"epochs": 50})
    assert display.totals(status) == (52, 200)
    total = [line for line in display.progress_lines(status) if line.lstrip().startswith("total")][0]
    assert total.split()[-1] == "52/200"


# ----------------------------------------------------------------------------- `metrics`
def row(run_name: str, epoch: int, val: float | None, lr: float | None = 0.04) -> EpochRow:
    return EpochRow(run_id=1, run=run_name, epoch=epoch, lr=lr, train_loss=0.25, train_accuracy=0.93,
                    val_loss=None if val is None else 0.3, val_accuracy=val, seconds=1.5)


def test_the_metrics_table_keeps_its_columns_when_values_are_missing():
    rows = [row("relu-lr0.04", 1, 0.9512), row("relu-lr0.04", 12, 0.9634, lr=1.5625e-05),
            row("final", 1, None, lr=None)]
    lines = display.metrics_table(rows)
    assert lines[0].split() == ["run", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "sec"]
    assert len({len(line) for line in lines}) == 1  # every line as wide: fixed-width columns
    ends = [m.end() for m in re.finditer(r"\S+", lines[0])][1:]
    for line in lines[1:]:  # after the run's name, each cell ends where its column's title ends
        assert [m.end() for m in re.finditer(r"\S+", line)][1:] == ends, line
    final = lines[3].split()
    assert final[0] == "final" and final[2] == "-" and final[5:7] == ["-", "-"]


def test_the_metrics_command_prints_the_table(monkeypatch):
    status = finished_sweep()
    monkeypatch.setattr(cli.client, "get_store",
                        lambda *a, **k: FakeStore(status, [row("relu-lr0.04", 1, 0.95), row("final", 1, None)]))
    result = CliRunner().invoke(cli.main, ["metrics", JOB_ID])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == display.metrics_table([row("relu-lr0.04", 1, 0.95), row("final", 1, None)])


# ----------------------------------------------------------------------------- the live display
def test_off_a_terminal_progress_is_plain_lines_one_per_change():
    out = io.StringIO()
    printer = display.ProgressPrinter(out)
    assert not printer.tty
    runs = [run(1, "a", done=1, total=10, last=0.5), run(2, "b", done=1, total=10, last=0.6)]
    printer(job("confusion", runs))
    first = out.getvalue().splitlines()
    assert first[0] == f"job {JOB_ID} (confusion): running" and len(first) == 6  # header, titles, 2 runs, total, best

    printer([job("confusion", [runs[0], run(2, "b", done=2, total=10, last=0.7)])])
    second = out.getvalue().splitlines()[len(first):]
    assert [line.split()[0] for line in second] == ["b", "total", "best"]
    assert "2/10" in second[0] and "70.00%" in second[0]

    printer(job("confusion", [runs[0], run(2, "b", done=2, total=10, last=0.7)]))
    assert len(out.getvalue().splitlines()) == len(first) + len(second)  # nothing changed, nothing printed
    printer.close()
    assert "\x1b[" not in out.getvalue() and "#" in out.getvalue()  # no cursor movement, no colour


STYLE = re.compile(r"\x1b\[[0-9;]*m")  # colours: not part of a line's width
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\r")  # cursor moves and erases: a line ends there


def live_frames(statuses_seq, width: int = 70, height: int = 30) -> tuple[str, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=width, height=height, force_terminal=True, color_system="truecolor")
    with display.ProgressPrinter(console=console) as printer:
        assert printer.tty
        for statuses in statuses_seq:
            printer(statuses)
    raw = out.getvalue()
    return raw, CONTROL.sub("\n", STYLE.sub("", raw)).split("\n")


def test_on_a_70_column_terminal_no_line_is_longer_than_70():
    long_error = "TrainingDiverged: training loss became nan at epoch 1 (lr 1e+06); try a smaller learning rate"
    frames = []
    for done in range(4):
        runs = [run(i, name, done=done, total=3, last=0.9 if done else None)
                for i, name in enumerate(["tanh-lr0.02", "tanh-lr0.04", "a-very-long-run-name-of-a-new-kind-x"], 1)]
        runs += [run(8, "relu-lr0.04", done=1, last=0.5, lost=True),
                 run(9, "relu-lr1e+06", done=0, state="failed", error=long_error)]
        frames.append([job("sweep", runs, params={"epochs": 3}, eta=100.0 - done)])
    raw, lines = live_frames(frames)
    assert "\x1b[" in raw  # drawn in place, not appended
    assert max(len(line) for line in lines) <= 70
    assert any("best so far: tanh-lr0.02" in line for line in lines)


def test_a_display_taller_than_the_terminal_shows_only_the_running_runs():
    runs = [run(i, f"run-{i}", done=1, total=3, last=0.5, state="running" if i < 3 else "queued")
            for i in range(1, 13)]
    _, lines = live_frames([[job("human-machine", runs)]], height=10)
    assert any("10 more runs: 10 queued" in line for line in lines)
    assert not any(line.strip().startswith("run-12") for line in lines)


def test_several_jobs_are_drawn_one_block_each():
    _, lines = live_frames([[finished_sweep(), job("confusion", [run(1, "confusion", done=1, total=40)])]])
    assert any(line.startswith(f"job {JOB_ID} (sweep): succeeded") for line in lines)
    assert any(line.startswith(f"job {JOB_ID} (confusion): running") for line in lines)


def test_a_job_no_worker_has_taken_says_who_starts_one():
    queued = replace(job("sweep", [run(1, "r1", done=0, total=2, state="queued")], state="queued"),
                     waiting_for="waiting for a worker")
    assert "  waiting for a worker; start one with `hw3-submit worker`" in display.progress_lines(queued)
    local = display.progress_lines(queued, local=True)  # the embedded --wait starts its own
    assert "  starting the local workers" in local and not any("start one" in line for line in local)


def test_a_grading_job_heads_its_accuracy_column_as_what_it_is():
    graded = job("grade-mnist", [run(1, "001-alice", done=1, total=1, last=0.97, state="succeeded")])
    heading = display.progress_lines(graded)[1].split()
    assert "accuracy" in heading and "val" not in heading
    assert "last" in display.progress_lines(job("sweep", [run(1, "r", done=1, total=2, last=0.9)]))[1].split()


def test_the_eta_weighs_the_sweeps_retrain_by_the_images_it_trains_on():
    """A 5,000-image sweep's retrain passes over 60,000 images: its epochs cost about 9× a run's (5,000 training
    images and a forward pass over 10,000), not the same."""
    ran = [run(i, f"r{i}", done=2, total=2, state="succeeded") for i in range(1, 3)]  # 2.0 s per epoch
    small = job("sweep", ran, params={"epochs": 2, "train_size": 5000}, eta=0.0)
    assert display._eta(small, display._kind(small)) == pytest.approx(2 * 2.0 * 60000 / (5000 + 10000 / 3))
    full = job("sweep", ran, params={"epochs": 2, "train_size": 50000}, eta=0.0)
    assert display._eta(full, display._kind(full)) == pytest.approx(2 * 2.0 * 60000 / (50000 + 10000 / 3))
