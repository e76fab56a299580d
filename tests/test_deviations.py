"""A run that is not the homework's says so: each kind's `deviations` (from the job's stored params, as its real
`plan` makes them) names every homework setting that differs, the default plans name none, and the note opens
the report (right under its title) and the end-of-job summary (`display.result_lines`)."""
from __future__ import annotations

import pytest

from api import display
from shared.entities import JobStatus
from worker.kinds import JobKind
from worker.kinds.confusion import KIND as CONFUSION
from worker.kinds.human_machine import KIND as HUMAN_MACHINE
from worker.kinds.regularization import KIND as REGULARIZATION
from worker.kinds.sweep import KIND as SWEEP

pytestmark = pytest.mark.unit

JOB_ID = "0123456789ab"
HOMEWORK_KINDS = [SWEEP, CONFUSION, REGULARIZATION, HUMAN_MACHINE]
NOTE = "> **Not the homework's settings:** "


def planned(kind, **options) -> list[str]:
    """The deviations of a job submitted with these options, through the kind's real plan."""
    return kind.deviations(kind.plan(options).params)


def keras_stored(**experiment_params) -> dict:
    """A Keras job's stored params with experiment params its CLI does not offer (the plan takes only
    epochs and seed from options), as `plan` would store them."""
    return {"params": experiment_params, "data": None}


def job_status(kind: str, params: dict, *, state: str = "succeeded", result: dict | None = None,
               error: str | None = None) -> JobStatus:
    return JobStatus(job_id=JOB_ID, kind=kind, state=state, error=error, params=params, result=result,
                     cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                     best_val_accuracy=None, eta_seconds=None, runs=[])


# ----------------------------------------------------------------------------- the homework's own settings
@pytest.mark.parametrize("kind", HOMEWORK_KINDS, ids=lambda k: k.name)
def test_the_default_plan_of_each_homework_kind_has_no_deviation(kind):
    assert planned(kind) == []


@pytest.mark.parametrize("kind", HOMEWORK_KINDS, ids=lambda k: k.name)
def test_options_given_at_their_homework_values_are_no_deviation(kind):
    epochs = 50 if kind is SWEEP else 40 if kind in (CONFUSION, REGULARIZATION) else 150
    assert planned(kind, epochs=epochs, seed=3) == []


def test_a_kind_has_no_deviation_by_default():
    assert JobKind().deviations({"epochs": 2}) == []


# ----------------------------------------------------------------------------- Problem 1: the sweep
@pytest.mark.parametrize("options, expected", [
    ({"epochs": 2}, ["2 epochs instead of 50", "the LR was halved once, not twice"]),  # the scaled schedule
    ({"epochs": 1}, ["1 epoch instead of 50", "the LR was never halved instead of twice"]),
    ({"epochs": 10}, ["10 epochs instead of 50"]),  # scaled: halved after 4 and 8, still twice
    ({"decay_epochs": [20]}, ["the LR was halved once, not twice"]),
    ({"decay_epochs": [10, 20, 30]}, ["the LR was halved 3 times, not twice"]),
    ({"train_size": 5000}, ["5,000 training images instead of 50,000"]),
    ({"activations": ["relu"]},
     ["3 configurations instead of 6 (relu × 3 initial LRs, not tanh and relu × 3 initial LRs)"]),
    ({"lrs": [0.02, 0.04]},
     ["4 configurations instead of 6 (tanh and relu × 2 initial LRs, not tanh and relu × 3 initial LRs)"]),
    ({"activations": ["tanh"], "lrs": [0.01, 0.02, 0.04, 0.08, 0.16, 0.32]},
     ["configurations tanh × 6 initial LRs instead of tanh and relu × 3 initial LRs"]),
])
def test_each_sweep_setting_that_differs_from_the_homework_is_named(options, expected):
    assert planned(SWEEP, **options) == expected


def test_the_quick_sweep_names_its_epochs_halvings_and_training_images():
    assert "; ".join(planned(SWEEP, epochs=2, train_size=5000)) == \
        "2 epochs instead of 50; the LR was halved once, not twice; 5,000 training images instead of 50,000"


@pytest.mark.parametrize("options", [
    {"momentum": 0.0}, {"l2": 0.0}, {"dropout": 0.0},  # the service's choices, not the homework's
    {"lrs": [0.01, 0.05, 0.1]}, {"activations": ["relu", "tanh"]}, {"hidden": [256]}, {"seed": 7},
    {"batch_size": 200}, {"threads": 2}, {"decay_epochs": [10, 30]},
])
def test_sweep_settings_the_homework_leaves_open_are_no_deviation(options):
    assert planned(SWEEP, **options) == []


# ----------------------------------------------------------------------------- Problems 2 and 3
@pytest.mark.parametrize("kind", [CONFUSION, REGULARIZATION], ids=lambda k: k.name)
@pytest.mark.parametrize("epochs, phrase", [(1, "1 epoch instead of 40"), (2, "2 epochs instead of 40"),
                                            (80, "80 epochs instead of 40")])
def test_fashion_kinds_name_epochs_other_than_40(kind, epochs, phrase):
    assert planned(kind, epochs=epochs) == [phrase]


@pytest.mark.parametrize("models, expected", [
    ({"plain": {"hidden_units": 64}}, ["the plain model has 64 hidden units instead of 128"]),
    ({"l2_dropout": {"hidden_units": 32}}, ["the l2_dropout model has 32 hidden units instead of 48"]),
    ({"l2_dropout": {"dropout": 0.0}}, ["the l2_dropout model has no dropout"]),
    ({"l2_dropout": {"l2": 0.0, "dropout": 0.0}},
     ["the l2_dropout model has no L2", "the l2_dropout model has no dropout"]),
    ({"plain": {"l2": 1e-3}}, ["the plain model has L2 0.001, not none"]),
    ({"plain": {"dropout": 0.5}}, ["the plain model has dropout 0.5, not none"]),
    ({"l2_dropout": {"l2": 1e-3, "dropout": 0.4}}, []),  # their strengths are not the homework's
])
def test_regularization_names_models_other_than_the_two_specified(models, expected):
    assert REGULARIZATION.deviations(keras_stored(models=models)) == expected


def test_regularization_names_the_epochs_before_the_models():
    assert REGULARIZATION.deviations(keras_stored(epochs=3, models={"plain": {"hidden_units": 64}})) == \
        ["3 epochs instead of 40", "the plain model has 64 hidden units instead of 128"]


def test_confusion_settings_the_homework_leaves_open_are_no_deviation():
    assert CONFUSION.deviations(keras_stored(batch_size=64, dropout=0.5, hidden_units=200)) == []


# ----------------------------------------------------------------------------- Problem 4
@pytest.mark.parametrize("experiment_params, expected", [
    ({"batch_size": 32}, ["batch size 32 instead of 16"]),
    ({"val_fraction": 0.3}, ["train/validation split 70/30 instead of 80/20"]),
    ({"val_fraction": 0.15}, ["train/validation split 85/15 instead of 80/20"]),
    ({"batch_size": 16, "val_fraction": 0.2, "epochs": 150, "split_seed": 4}, []),
    ({"epochs": 300}, []),  # the homework sets no number of epochs: more than the default is no deviation
    ({"epochs": 2}, ["only 2 epochs per run (the homework sets no number; the default is 150)"]),
    ({"epochs": 1, "batch_size": 8}, ["only 1 epoch per run (the homework sets no number; the default is 150)",
                                      "batch size 8 instead of 16"]),
])
def test_human_machine_names_a_batch_size_or_split_other_than_the_homeworks(experiment_params, expected):
    assert HUMAN_MACHINE.deviations(keras_stored(**experiment_params)) == expected


def test_human_machine_on_synthetic_data_says_so():
    assert planned(HUMAN_MACHINE, synthetic=True) == \
        ["trained on generated (--synthetic) data instead of the course file"]


def test_human_machine_on_another_file_names_it(tmp_path):
    assert planned(HUMAN_MACHINE, data=str(tmp_path / "my_bits.hdf5")) == \
        ["trained on my_bits.hdf5 instead of the course file"]


def test_human_machine_on_the_course_file_given_by_path_is_no_deviation(tmp_path):
    assert planned(HUMAN_MACHINE, data=str(tmp_path / "binary_random_20fa.hdf5")) == []


def test_the_whole_homework_quick_run_flags_every_job():
    """`hw3-submit all --epochs 2 --synthetic`: each kind's options from those given."""
    given = {"epochs": 2, "synthetic": True}
    notes = {k.name: "; ".join(planned(k, **{o.name: given[o.name] for o in k.options if o.name in given}))
             for k in HOMEWORK_KINDS}
    assert notes == {"sweep": "2 epochs instead of 50; the LR was halved once, not twice",
                     "confusion": "2 epochs instead of 40", "regularization": "2 epochs instead of 40",
                     "human-machine": "only 2 epochs per run (the homework sets no number; the default is 150); "
                                      "trained on generated (--synthetic) data instead of the course file"}


# ----------------------------------------------------------------------------- the report opens with the note
def test_the_sweep_report_opens_with_the_note_under_its_title():
    job = job_status("sweep", SWEEP.plan({"epochs": 2, "train_size": 5000}).params, state="running")
    lines = SWEEP.report(job, []).splitlines()
    assert lines[:4] == [f"# Problem 1 — numpy MLP sweep (job `{JOB_ID}`)", "",
                         NOTE + "2 epochs instead of 50; the LR was halved once, not twice; "
                                "5,000 training images instead of 50,000", ""]
    assert lines[4].startswith("State: **running**")


def test_a_default_sweep_report_has_no_note():
    text = SWEEP.report(job_status("sweep", SWEEP.plan({}).params, state="running"), [])
    assert "Not the homework" not in text


@pytest.mark.parametrize("state, error", [("failed", "plain: out of memory"), ("running", None)])
def test_a_keras_report_opens_with_the_note_whatever_its_state(state, error):
    job = job_status("regularization", REGULARIZATION.plan({"epochs": 1}).params, state=state, error=error)
    lines = REGULARIZATION.report(job, []).splitlines()
    assert lines[:4] == [f"# {REGULARIZATION.title} (job `{JOB_ID}`)", "", NOTE + "1 epoch instead of 40", ""]
    assert lines[4].startswith(f"State: **{state}**")


def test_a_succeeded_keras_report_has_the_note_before_its_section(monkeypatch):
    monkeypatch.setattr(type(HUMAN_MACHINE), "section", lambda self, result: "## SECTION\n")
    job = job_status("human-machine", HUMAN_MACHINE.plan({"synthetic": True}).params,
                     result={"best_run": "adam-none", "failed_runs": {}})
    assert HUMAN_MACHINE.report(job, []) == (f"# {HUMAN_MACHINE.title} (job `{JOB_ID}`)\n\n"
                                             f"{NOTE}trained on generated (--synthetic) data instead of the "
                                             "course file\n\n## SECTION\n")


@pytest.mark.parametrize("kind", [CONFUSION, REGULARIZATION, HUMAN_MACHINE], ids=lambda k: k.name)
def test_a_default_keras_report_has_no_note(kind):
    job = job_status(kind.name, kind.plan({}).params, state="failed", error="x")
    assert kind.report(job, []) == f"# {kind.title} (job `{JOB_ID}`)\n\nState: **failed** — x\n"


# ----------------------------------------------------------------------------- the end-of-job summary
@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "HW3_KINDS"):
        monkeypatch.delenv(name, raising=False)


CONFUSION_RESULT = {"test_accuracy": 0.85, "epochs_run": 1, "failed_runs": {},
                    "most_confused_pair": {"classes": ["Shirt", "T-shirt/top"], "rate": 0.2, "rate_ab": 0.12,
                                           "rate_ba": 0.08}}


def test_an_ended_jobs_summary_opens_with_the_note(data):
    ended = job_status("confusion", CONFUSION.plan({"epochs": 1}).params, result=CONFUSION_RESULT)
    lines = display.result_lines(ended)
    assert lines[0] == "  not the homework's settings: 1 epoch instead of 40"
    assert lines[1] == "  test accuracy: 85.00% after 1 epoch"
    assert display.end_of_job_lines([ended])[1] == lines[0]  # right under the job's header line


def test_a_failed_jobs_summary_opens_with_the_note_before_its_error(data):
    ended = job_status("sweep", SWEEP.plan({"epochs": 2, "train_size": 5000}).params, state="failed",
                       error="every run failed")
    assert display.result_lines(ended)[:2] == [
        "  not the homework's settings: 2 epochs instead of 50; the LR was halved once, not twice; "
        "5,000 training images instead of 50,000",
        "  error: every run failed"]


def test_an_ended_job_with_the_homeworks_settings_has_no_note(data):
    ended = job_status("confusion", CONFUSION.plan({}).params, result=CONFUSION_RESULT)
    assert not any("homework" in line for line in display.result_lines(ended))


def test_a_running_job_shows_no_note_yet(data):
    assert display.result_lines(job_status("sweep", SWEEP.plan({"epochs": 2}).params, state="running")) == []
