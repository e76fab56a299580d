"""Unit tests of the job-kind contract: the registry, each kind's plan, choose_best, public_result and the
report sections, from hand-built entities (no database, no workers, no TensorFlow, no datasets)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.entities import EpochRow, JobStatus, RunInfo, RunStatus
from worker import kinds
from worker.engine import ConfigError
from worker.kinds import JobKind, Plan, RunSpec, UnknownKind
from worker.kinds.confusion import KIND as CONFUSION
from worker.kinds.human_machine import KIND as HUMAN_MACHINE
from worker.kinds.keras import MAX_EPOCHS, KerasKind
from worker.kinds.regularization import KIND as REGULARIZATION
from worker.kinds.sweep import KIND as SWEEP
from worker.kinds.sweep import SELECTION, choose_best, plan_sweep, scaled_decay_epochs

pytestmark = pytest.mark.unit

JOB_ID = "0123456789ab"
HOMEWORK = ["sweep", "confusion", "regularization", "human-machine"]
KERAS_KINDS = [CONFUSION, REGULARIZATION, HUMAN_MACHINE]
SWEEP_RUNS = ["tanh-lr0.02", "tanh-lr0.04", "tanh-lr0.08", "relu-lr0.02", "relu-lr0.04", "relu-lr0.08"]


# ----------------------------------------------------------------------------- hand-built entities


def run_info(run_id: int, name: str, *, state: str = "succeeded", role: str = "run", val: float | None = None,
             config: dict | None = None, error: str | None = None) -> RunInfo:
    return RunInfo(run_id=run_id, job_id=JOB_ID, name=name, role=role, config=config or {}, state=state,
                   epochs_total=10, epochs_done=10 if state == "succeeded" else 3, attempts=1,
                   result=None if val is None else {"val_accuracy": val}, error=error, worker=None, pid=None)


def run_status(run_id: int, name: str, *, config: dict, state: str = "succeeded", role: str = "run",
               epochs_done: int = 10, epochs_total: int = 10, last: float | None = None,
               best: float | None = None, error: str | None = None) -> RunStatus:
    return RunStatus(run_id=run_id, job_id=JOB_ID, name=name, role=role, config=config, state=state,
                     epochs_total=epochs_total, epochs_done=epochs_done, attempts=1, result=None, error=error,
                     worker="w@h", pid=1, best_val_accuracy=best, last_val_accuracy=last)


def job_status(kind: str, *, state: str = "succeeded", params: dict | None = None, result: dict | None = None,
               error: str | None = None, runs: list[RunStatus] | None = None) -> JobStatus:
    return JobStatus(job_id=JOB_ID, kind=kind, state=state, error=error, params=params or {}, result=result,
                     cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                     best_val_accuracy=None, eta_seconds=None, runs=runs or [])


def epoch_row(run_id: int, run: str, epoch: int, val: float) -> EpochRow:
    return EpochRow(run_id=run_id, run=run, epoch=epoch, lr=0.02, train_loss=0.1, train_accuracy=0.97,
                    val_loss=0.12, val_accuracy=val, seconds=1.0)


# ----------------------------------------------------------------------------- the sweep's plan


def test_the_default_sweep_plans_six_runs_with_the_homework_schedule():
    plan = plan_sweep({})
    assert isinstance(plan, Plan)
    assert [r.name for r in plan.runs] == SWEEP_RUNS
    for run in plan.runs:
        assert run.role == "run" and run.epochs_total == 50
        assert run.config["epochs"] == 50 and run.config["decay_epochs"] == [20, 40]
        assert run.config["threads"] == 1  # fixed at submission, not by the worker's load
        assert run.name == f"{run.config['activation']}-lr{run.config['lr']:g}"
    p = plan.params
    assert p["activations"] == ["tanh", "relu"] and p["lrs"] == [0.02, 0.04, 0.08]
    assert p["train_size"] == 50_000 and p["threads"] == 1 and p["hidden"] == [512, 256]
    assert "activation" not in p and "lr" not in p and "datasets" not in p


def test_none_values_take_the_defaults():
    assert plan_sweep({"epochs": None, "activations": None, "lrs": None, "datasets": None}) == plan_sweep({})


def test_the_params_record_the_threads_given_in_every_run():
    plan = plan_sweep({"threads": 4})
    assert plan.params["threads"] == 4 and {r.config["threads"] for r in plan.runs} == {4}


@pytest.mark.parametrize("epochs, decay", [(10, [4, 8]), (2, [1]), (1, [])])
def test_epochs_without_decay_epochs_scale_the_schedule(epochs, decay):
    plan = plan_sweep({"epochs": epochs})
    assert plan.params["decay_epochs"] == decay
    assert all(r.config["decay_epochs"] == decay and r.epochs_total == epochs for r in plan.runs)


def test_decay_epochs_given_with_epochs_are_kept():
    assert plan_sweep({"epochs": 10, "decay_epochs": [5]}).params["decay_epochs"] == [5]


def test_chosen_activations_and_rates_name_the_runs_in_grid_order():
    plan = plan_sweep({"activations": ["relu"], "lrs": [0.1, 0.05]})
    assert [r.name for r in plan.runs] == ["relu-lr0.1", "relu-lr0.05"]


@pytest.mark.parametrize("params, named", [
    ({"activations": ["tanh", "tanh"]}, "'tanh', 'tanh'"),
    ({"lrs": [0.02, 0.02]}, "0.02, 0.02"),
    ({"train_size": 0}, "train size 0 "),
    ({"train_size": 50_001}, "train size 50001 "),
    ({"batch_size": 300}, "batch size 300 does not divide the 50,000 training images"),
    ({"batch_size": 7}, "batch size 7 is outside 50..1000"),
    ({"train_size": 700, "batch_size": 70}, "batch size 70 does not divide the 60,000 training images"),  # the final retrain's size
    ({"activations": ["sigmoid"]}, "unknown activation 'sigmoid'"),
    ({"epochs": 0}, "got 0"),
    ({"bogus": 1}, "unknown config keys: bogus"),
])
def test_bad_sweep_values_raise_config_error_naming_the_value(params, named):
    with pytest.raises(ConfigError) as exc:
        plan_sweep(params)
    assert named in str(exc.value)


def test_the_sweeps_config_error_is_a_value_error():
    # the CLI turns ValueError from any kind's plan into exit 2
    assert issubclass(ConfigError, ValueError)


def test_a_relative_datasets_folder_is_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plan_sweep({"datasets": "data/../datasets"}).params["datasets"] == str(tmp_path / "datasets")


def test_an_absolute_datasets_folder_is_stored_normalised():
    assert plan_sweep({"datasets": "/srv/hw3/../datasets/"}).params["datasets"] == "/srv/datasets"


def test_the_sweeps_advertised_defaults_are_what_its_plan_uses():
    params = plan_sweep({}).params
    for opt in SWEEP.options:
        assert opt.default is not None, opt.name
        text = str(opt.default)
        shown = [opt.type(v) for v in text.split(",")] if opt.csv else opt.type(text)
        assert shown == params[opt.name], opt.name


# ----------------------------------------------------------------------------- scaled_decay_epochs


@pytest.mark.parametrize("epochs, decay", [(50, [20, 40]), (10, [4, 8]), (3, [1, 2]), (2, [1]), (1, []),
                                           (0, []), ("10", []), (10.0, []), (None, [])])
def test_scaled_decay_epochs(epochs, decay):
    assert scaled_decay_epochs(epochs) == decay


# ----------------------------------------------------------------------------- choose_best


def test_choose_best_takes_the_highest_final_val_accuracy():
    runs = [run_info(1, "a", val=0.95), run_info(2, "b", val=0.97), run_info(3, "c", val=0.96)]
    assert choose_best(runs).name == "b"


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_choose_best_gives_a_tie_to_the_earlier_run(order):
    runs = [run_info(2, "early", val=0.97), run_info(5, "late", val=0.97)]
    assert choose_best([runs[i] for i in order]).name == "early"


def test_choose_best_ignores_failed_runs_and_the_final_run():
    runs = [run_info(1, "ok", val=0.90),
            run_info(2, "failed", state="failed", val=0.99, error="boom"),
            run_info(3, "cancelled", state="cancelled", val=0.99),
            run_info(4, "final", role="final", val=0.995)]
    assert choose_best(runs).name == "ok"


def test_choose_best_without_a_succeeded_run_is_none():
    assert choose_best([]) is None
    assert choose_best([run_info(1, "a", state="failed", error="x"), run_info(2, "final", role="final", val=0.9)]) is None


# ----------------------------------------------------------------------------- the registry


@pytest.fixture
def registry(monkeypatch):
    """The registry holding the built-in kinds only, with HW3_KINDS unset (even if the session set it);
    the real registry is restored after the test, whatever it registered or loaded."""
    monkeypatch.delenv("HW3_KINDS", raising=False)
    kinds.all_kinds()  # the built-in kinds loaded into the real registry first
    builtin = {name: k for name, k in kinds._registry.items() if type(k).__module__ in kinds.BUILTIN}
    monkeypatch.setattr(kinds, "_registry", builtin)
    monkeypatch.setattr(kinds, "_loaded", set(kinds.BUILTIN))
    return kinds


class NoProblem(JobKind):
    name = "aaa-extra"
    help = "a kind that answers no homework problem"


def test_all_kinds_lists_the_homework_in_problem_order(registry):
    listed = list(registry.all_kinds().values())
    assert [k.name for k in listed[:4]] == HOMEWORK and [k.problem for k in listed[:4]] == [1, 2, 3, 4]
    assert all(k.problem is None for k in listed[4:])  # e.g. grading, which answers no problem


def test_kinds_without_a_problem_come_after_the_homework(registry):
    # registered first, listed last
    registry._registry = {"aaa-extra": NoProblem(), **registry._registry}
    listed = list(registry.all_kinds())
    assert listed[:4] == HOMEWORK and "aaa-extra" in listed[4:]


def test_get_returns_the_registered_kind():
    assert kinds.get("sweep") is SWEEP and kinds.get("human-machine") is HUMAN_MACHINE


def test_an_unknown_kind_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownKind) as exc:
        kinds.get("nope")
    assert "'nope'" in str(exc.value) and "sweep, confusion, regularization, human-machine" in str(exc.value)
    assert isinstance(exc.value, LookupError)


def test_a_kind_without_a_name_cannot_be_registered(registry):
    with pytest.raises(ValueError, match="JobKind has no name"):
        registry.register(JobKind())
    assert "" not in registry._registry


def test_register_returns_the_kind_and_get_finds_it(registry):
    kind = NoProblem()
    assert registry.register(kind) is kind
    assert registry.get("aaa-extra") is kind


def test_a_kind_module_named_in_hw3_kinds_is_loaded(registry, monkeypatch):
    monkeypatch.setenv("HW3_KINDS", "tests.toykind")
    listed = list(registry.all_kinds())
    assert listed[:4] == HOMEWORK and "toy" in listed[4:]
    assert "tests.toykind" in registry._loaded


@pytest.mark.parametrize("module", ["tests.no_such_kind_module", "shared.entities"])  # missing; no KIND
def test_a_module_in_hw3_kinds_that_defines_no_kind_is_an_unknown_kind(registry, monkeypatch, module):
    monkeypatch.setenv("HW3_KINDS", module)
    with pytest.raises(UnknownKind) as exc:
        registry.all_kinds()
    assert repr(module) in str(exc.value) and "HW3_KINDS" in str(exc.value)
    assert module not in registry._loaded


def test_the_registry_is_left_as_it_was():
    # runs after the tests above in file order: their monkeypatching restored the real registry
    assert set(HOMEWORK) <= set(kinds._registry) and "aaa-extra" not in kinds._registry
    assert not {"tests.no_such_kind_module", "shared.entities"} & kinds._loaded


# ----------------------------------------------------------------------------- the Keras kinds' figures


def _curve_rows(run_id: int, name: str, n: int) -> list[EpochRow]:
    return [epoch_row(run_id, name, e, 0.5 + 0.01 * e) for e in range(1, n + 1)]


@pytest.mark.parametrize("kind, paths", [
    (CONFUSION, {"confusion": "learning_curves.png"}),
    (REGULARIZATION, {"plain": "runs/plain/learning_curves.png", "l2_dropout": "runs/l2_dropout/learning_curves.png"}),
    (HUMAN_MACHINE, {"sgd-none": "runs/sgd-none/learning_curve.png", "adam-l2": "runs/adam-l2/learning_curve.png"}),
], ids=lambda v: getattr(v, "name", None))
def test_keras_figures_draw_each_run_from_its_rows_where_the_report_links_it(kind, paths, tmp_path):
    """Mid-run too: a run without a result (still running) gets its curve; a run without rows gets none."""
    runs = [run_info(i, name, state="running" if i == 1 else "succeeded") for i, name in enumerate(paths, 1)]
    runs.append(run_info(99, "queued-run", state="queued"))
    rows = [row for i, name in enumerate(paths, 1) for row in _curve_rows(i, name, 3)]
    drawn = kind.figures(job_status(kind.name, state="running", params={"params": {}}, runs=runs), rows, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in drawn) == sorted(paths.values())
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == sorted(paths.values())


def test_a_human_machine_curve_is_titled_and_marked_from_its_result():
    result = {"val_accuracy": 0.625, "best_epoch": 7, "final": {"epoch": 9, "val_accuracy": 0.6}}
    finished = replace(run_info(1, "adam-l2"), result=result)
    job = job_status("human-machine", params={"params": {}})
    assert HUMAN_MACHINE.curve(job, finished) == (
        "runs/adam-l2/learning_curve.png",
        "adam-l2: validation accuracy 62.50% at kept epoch 7, 60.00% at the final epoch 9", 7)
    assert HUMAN_MACHINE.curve(job, run_info(2, "sgd-none", state="running")) == (
        "runs/sgd-none/learning_curve.png", "sgd-none", None)


# ----------------------------------------------------------------------------- the Keras kinds' plans


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("epochs", [0, -1, MAX_EPOCHS + 1, "5", 2.5])
def test_keras_epochs_outside_the_range_are_refused(kind, epochs):
    with pytest.raises(ValueError) as exc:
        kind.plan({"epochs": epochs})
    assert f"1..{MAX_EPOCHS}" in str(exc.value) and repr(epochs) in str(exc.value)


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_epochs_at_the_limits_are_accepted(kind):
    assert {r.epochs_total for r in kind.plan({"epochs": 1}).runs} == {1}
    assert {r.epochs_total for r in kind.plan({"epochs": MAX_EPOCHS}).runs} == {MAX_EPOCHS}


@pytest.mark.parametrize("kind, runs, epochs", [
    (CONFUSION, ["confusion"], 40),
    (REGULARIZATION, ["plain", "l2_dropout"], 40),
    (HUMAN_MACHINE, [f"{o}-{r}" for o in ("sgd", "momentum", "adam", "rmsprop") for r in ("none", "l2", "dropout")],
     150),
], ids=lambda v: getattr(v, "name", None))
def test_keras_default_plans(kind, runs, epochs):
    plan = kind.plan({"epochs": None, "seed": None})
    assert plan.params == {"params": {}, "data": None}
    assert plan.runs == [RunSpec(n, {"kind": kind.name, "run": n}, epochs) for n in runs]
    assert plan.params["params"] == {} and kind.defaults["epochs"] == epochs


def test_human_machine_plans_twelve_runs_optimizer_major():
    names = [r.name for r in HUMAN_MACHINE.plan({}).runs]
    assert len(names) == 12
    assert names[:4] == ["sgd-none", "sgd-l2", "sgd-dropout", "momentum-none"]
    assert names[-1] == "rmsprop-dropout"


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_plans_store_the_given_epochs_and_seed(kind):
    plan = kind.plan({"epochs": 3, "seed": 7})
    assert plan.params["params"] == {"epochs": 3, "seed": 7}
    assert {r.epochs_total for r in plan.runs} == {3}


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_plans_ignore_keys_that_are_not_kind_options(kind):
    # only the options (epochs, seed; data/synthetic for human-machine) and datasets are read: other keys,
    # even experiment parameters such as hidden_units, are dropped without an error
    plan = kind.plan({"epochs": 2, "bogus": 1, "hidden_units": 5, "batch_size": 3})
    assert plan.params == {"params": {"epochs": 2}, "data": None}


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_plans_store_an_absolute_datasets_folder(kind):
    assert kind.plan({"datasets": "/srv/x/../datasets"}).params == {"params": {}, "data": None,
                                                                     "datasets": "/srv/datasets"}


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_plans_take_a_relative_datasets_folder_from_the_current_folder(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert kind.plan({"datasets": "datasets"}).params["datasets"] == str(tmp_path / "datasets")


def test_confusion_has_no_data_option():
    assert CONFUSION.plan({"data": "/x.hdf5", "synthetic": True}).params["data"] is None


def test_human_machine_refuses_data_with_synthetic():
    with pytest.raises(ValueError, match="--data and --synthetic exclude each other"):
        HUMAN_MACHINE.plan({"data": "/x/seqs.hdf5", "synthetic": True})


def test_human_machine_synthetic_is_stored_as_the_data_source():
    assert HUMAN_MACHINE.plan({"synthetic": True}).params == {"params": {}, "data": "synthetic"}


def test_human_machine_data_is_stored_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = str((tmp_path / "seqs.hdf5").resolve())
    assert HUMAN_MACHINE.plan({"data": "seqs.hdf5"}).params["data"] == expected
    assert HUMAN_MACHINE.plan({"data": Path("seqs.hdf5"), "synthetic": False}).params["data"] == expected


@pytest.mark.parametrize("kind", KERAS_KINDS, ids=lambda k: k.name)
def test_keras_options_advertise_the_experiment_defaults(kind):
    opts = {o.name: o for o in kind.options}
    assert opts["epochs"].default == kind.defaults["epochs"] and opts["seed"].default == kind.defaults["seed"]


def test_human_machine_offers_data_and_synthetic():
    opts = {o.name: o for o in HUMAN_MACHINE.options}
    assert list(opts) == ["epochs", "seed", "data", "synthetic"]
    assert opts["data"].path and opts["synthetic"].flag


# ----------------------------------------------------------------------------- public_result


def test_public_result_keeps_the_result_keys_and_the_failed_runs():
    result = {"chosen": {"run": "relu-lr0.04"}, "selection": SELECTION, "test_accuracy": 0.98, "test_loss": 0.06,
              "val_accuracy": {"relu-lr0.04": 0.97}, "weights": "runs/final/weights.npz",
              "failed_runs": {"tanh-lr0.08": "boom"}, "internal": [1, 2, 3]}
    shown = SWEEP.public_result(result)
    assert set(shown) == {*SWEEP.result_keys, "failed_runs"} and "internal" not in shown
    assert shown["failed_runs"] == {"tanh-lr0.08": "boom"}


def test_public_result_skips_keys_the_result_lacks():
    assert CONFUSION.public_result({"test_accuracy": 0.9, "confusion_rates": [[1.0]]}) == {"test_accuracy": 0.9}


@pytest.mark.parametrize("kind", [SWEEP, *KERAS_KINDS, JobKind()], ids=lambda k: k.name or "base")
def test_public_result_of_none_is_none(kind):
    assert kind.public_result(None) is None


def test_a_kind_without_result_keys_shows_all_of_its_result():
    assert JobKind().public_result({"a": 1, "b": 2}) == {"a": 1, "b": 2}


# ----------------------------------------------------------------------------- the sweep's report


def sweep_job(*, params: dict | None = None, failed: str | None = None, finished: bool = True) -> JobStatus:
    params = params or plan_sweep({"epochs": 10}).params
    vals = dict(zip(SWEEP_RUNS, (0.970, 0.978, 0.975, 0.975, 0.981, 0.979)))
    runs = []
    for run_id, name in enumerate(SWEEP_RUNS, 1):
        activation, lr = name.split("-lr")
        bad = name == failed
        runs.append(run_status(run_id, name, config={"activation": activation, "lr": float(lr)},
                               state="failed" if bad else "succeeded", epochs_done=3 if bad else 10,
                               last=None if bad else vals[name], best=None if bad else vals[name],
                               error="training loss became nan at epoch 3" if bad else None))
    runs.append(run_status(7, "final", config={"activation": "relu", "lr": 0.04}, role="final", last=0.985))
    if failed:
        vals[failed] = None
    result = {"chosen": {"run": "relu-lr0.04", "activation": "relu", "lr": 0.04, "val_accuracy": 0.981},
              "selection": SELECTION, "test_accuracy": 0.9812, "test_loss": 0.0634, "val_accuracy": vals,
              "failed_runs": {failed: "training loss became nan at epoch 3"} if failed else {},
              "weights": "runs/final/weights.npz"}
    return job_status("sweep", params=params, result=result if finished else None,
                      state="succeeded" if finished else "running", runs=runs)


def test_the_sweep_report_states_the_network_the_choice_and_the_test_accuracy():
    job = sweep_job()
    text = SWEEP.report(job, [epoch_row(1, "tanh-lr0.02", 1, 0.9)])
    assert text.startswith(f"# Problem 1 — numpy MLP sweep (job `{JOB_ID}`)\n")
    assert "State: **succeeded**" in text
    assert "Layers (neurons): 784 → 512 → 256 → 10 (2 hidden layers;" in text
    assert "learning rate halved after epochs 4, 8" in text
    assert "## Chosen configuration" in text
    assert "**relu, initial learning rate 0.04** — chosen by the highest validation accuracy at the final " \
           "epoch: 98.10% (next best: relu-lr0.08, 97.90%)." in text
    assert "## Final test accuracy" in text and "**98.12%** (test loss 0.0634)" in text
    assert "`runs/final/weights.npz`" in text
    table = [line for line in text.splitlines() if line.startswith(("| tanh-", "| relu-"))]
    assert [line.split(" | ")[0] for line in table] == [f"| {n}" for n in SWEEP_RUNS]  # the final run is not a row
    assert "| relu-lr0.04 | relu | 0.04 | succeeded | 10/10 | 98.10% | 98.10% |" in table
    assert "## Failed runs" not in text


def test_the_sweep_report_lists_failed_runs():
    text = SWEEP.report(sweep_job(failed="tanh-lr0.08"), [])
    assert "## Failed runs\n\n- tanh-lr0.08: training loss became nan at epoch 3" in text
    assert "| tanh-lr0.08 | tanh | 0.08 | failed | 3/10 | — | — |" in text
    assert "**98.12%**" in text


def test_the_sweep_report_of_an_unfinished_job_has_no_choice_yet():
    text = SWEEP.report(sweep_job(finished=False), [])
    assert "State: **running**" in text and "## Chosen configuration" not in text
    assert "## Final test accuracy" not in text


def test_the_sweep_report_of_a_failed_job_shows_the_error():
    job = job_status("sweep", state="failed", error="every run failed: a: x", params=plan_sweep({}).params)
    text = SWEEP.report(job, [])
    assert "State: **failed** — every run failed: a: x" in text and "## Chosen configuration" not in text


def test_the_sweep_report_follows_the_hidden_layers():
    params = plan_sweep({"hidden": [64], "epochs": 1}).params
    text = SWEEP.report(job_status("sweep", state="queued", params=params), [])
    assert "784 → 64 → 10 (1 hidden layer;" in text
    assert "halved after epochs (none)" in text


# ----------------------------------------------------------------------------- the Keras kinds' reports


class StubKind(KerasKind):
    name = "stub"
    title = "A stub"
    defaults = {"epochs": 1, "seed": 0}

    def section(self, result: dict) -> str:
        return "SECTION\n"


STUB = StubKind()


@pytest.mark.parametrize("kind", [STUB, *KERAS_KINDS], ids=lambda k: k.name)
def test_a_failed_keras_job_reports_only_its_state_and_error(kind):
    job = job_status(kind.name, state="failed", error="plain: out of memory", result={"failed_runs": {"x": "y"}})
    assert kind.report(job, []) == f"# {kind.title} (job `{JOB_ID}`)\n\nState: **failed** — plain: out of memory\n"


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
def test_a_keras_job_without_a_result_reports_its_state(state):
    assert STUB.report(job_status("stub", state=state), []) == f"# A stub (job `{JOB_ID}`)\n\nState: **{state}**\n"


def test_a_succeeded_keras_job_reports_its_section():
    job = job_status("stub", result={"x": 1, "failed_runs": {}})
    assert STUB.report(job, []) == f"# A stub (job `{JOB_ID}`)\n\nSECTION\n"


def test_a_succeeded_keras_job_lists_its_failed_runs():
    job = job_status("stub", result={"failed_runs": {"adam-l2": "killed", "sgd-none": "nan loss"}})
    assert STUB.report(job, []) == (f"# A stub (job `{JOB_ID}`)\n\nSECTION\n"
                                    "\n## Failed runs\n\n- adam-l2: killed\n- sgd-none: nan loss\n")


def confusion_result() -> dict:
    names = ["T-shirt", "Trouser", "Pullover"]
    return {
        "class_names": names,
        "confusion_rates": [[0.85, 0.05, 0.10], [0.01, 0.98, 0.01], [0.05, 0.0, 0.95]],
        "test_accuracy": 0.9267, "test_loss": 0.2345,
        "most_confused_pair": {"classes": ["T-shirt", "Pullover"], "rate_ab": 0.10, "rate_ba": 0.05, "rate": 0.15},
        "most_confused_for": [{"class": "T-shirt", "confused_with": "Pullover", "rate": 0.10, "correct_rate": 0.85},
                              {"class": "Trouser", "confused_with": None, "rate": 0.01},
                              {"class": "Pullover", "confused_with": "T-shirt", "rate": 0.05}],
        "failed_runs": {},
    }


def test_the_confusion_report():
    text = CONFUSION.report(job_status("confusion", result=confusion_result()), [])
    assert text.startswith(f"# Problem 2 — Fashion-MNIST confusion matrix (job `{JOB_ID}`)\n\n## Test accuracy and confusion rates\n")
    assert "**Test accuracy: 92.67%** (test loss 0.2345;" in text
    assert "**0: T-shirt** and **2: Pullover**" in text and "= 10.00% + 5.00% = 15.00%." in text
    assert "| 0: T-shirt | 85.00% | 2: Pullover | 10.00% |" in text
    assert "| 1: Trouser | — | — | 1.00% |" in text
    assert "| 0: T-shirt | 85.0 | 5.0 | 10.0 |" in text
    assert "Failed runs" not in text


def weight_stats(std: float) -> dict:
    return {"mean": 0.0, "std": std, "mean_abs": std * 0.8, "frac_small": 0.1, "max_abs": 5 * std,
            "excess_kurtosis": 0.5, "n": 100}


def regularization_result() -> dict:
    return {
        "test_accuracy": {"plain": 0.881, "l2_dropout": 0.889},
        "weight_stats": {m: {"input_hidden": weight_stats(s), "hidden_output": weight_stats(2 * s)}
                         for m, s in (("plain", 0.05), ("l2_dropout", 0.03))},
        "description": ["input→hidden: the L2 + dropout weights are narrower."],
        "failed_runs": {},
    }


def test_the_regularization_report():
    text = REGULARIZATION.report(job_status("regularization", result=regularization_result()), [])
    assert text.startswith(f"# Problem 3 — regularization and weight histograms (job `{JOB_ID}`)\n\n## Weights with and without L2 and dropout\n")
    assert "**88.10%**" in text and "**88.90%**" in text
    assert "- input→hidden: the L2 + dropout weights are narrower." in text
    assert "### input→hidden weights" in text and "### hidden→output weights" in text
    assert "| plain | +0.0000 | 0.0500 |" in text and "| l2_dropout | +0.0000 | 0.0300 |" in text
    assert "Failed runs" not in text


def test_the_human_machine_report_with_a_failed_run():
    result = {"runs": {"adam-l2": {"val_accuracy": 0.63, "optimizer": "adam", "regularization": "l2",
                                   "learning_rate": 0.001},
                       "sgd-none": {"val_accuracy": 0.55}},
              "best_run": "adam-l2", "val_accuracy": 0.63, "best_epoch": 17,
              "weight_matrix": [[0.1, -0.2], [0.3, 0.4]], "failed_runs": {"rmsprop-dropout": "worker lost"}}
    text = HUMAN_MACHINE.report(job_status("human-machine", result=result), [])
    assert text.startswith(f"# Problem 4 — human-typed or machine-generated? (job `{JOB_ID}`)\n")
    assert "**Best run: `adam-l2`, validation accuracy 63.00%** at its kept epoch 17. Model:" in text
    assert "goal" not in text
    assert "| **adam-l2** | adam | l2 | 0.001 |" in text and "| sgd-none |" in text
    assert text.endswith("\n## Failed runs\n\n- rmsprop-dropout: worker lost\n")


def test_an_interrupted_keras_job_reports_the_runs_it_has():
    runs = [run_status(1, "sgd-none", config={}, state="succeeded", epochs_done=3, epochs_total=3),
            run_status(2, "sgd-l2", config={}, state="interrupted", epochs_done=1, epochs_total=3),
            run_status(3, "sgd-dropout", config={}, state="interrupted", epochs_done=0, epochs_total=3)]
    rows = [epoch_row(1, "sgd-none", 1, 0.6), epoch_row(1, "sgd-none", 2, 0.7), epoch_row(1, "sgd-none", 3, 0.65),
            epoch_row(2, "sgd-l2", 1, 0.55)]
    text = HUMAN_MACHINE.report(job_status("human-machine", state="interrupted", params={"params": {"epochs": 3}},
                                           runs=runs), rows)
    assert "State: **interrupted**\n\n## Runs so far\n" in text
    assert "| sgd-none | succeeded | 3/3 | 70.00% (epoch 2) |" in text  # its kept (best) epoch
    assert "| sgd-l2 | interrupted | 1/3 | 55.00% (epoch 1) |" in text
    assert "| sgd-dropout | interrupted | 0/3 | — |" in text
    tie = replace(epoch_row(2, "sgd-l2", 2, 0.55), val_loss=0.05)  # as accurate as epoch 1, a lower loss: kept
    tied = HUMAN_MACHINE.report(job_status("human-machine", state="interrupted", params={"params": {"epochs": 3}},
                                           runs=runs), [*rows, tie])
    assert "| sgd-l2 | interrupted | 1/3 | 55.00% (epoch 2) |" in tied
    confusion = CONFUSION.report(job_status("confusion", state="cancelled", params={"params": {}}, runs=runs[:1]),
                                 rows[:3])
    assert "| sgd-none | succeeded | 3/3 | 65.00% (epoch 3) |" in confusion  # its last epoch
