"""Grading (the kinds in worker/kinds/grade.py, the checks in worker/grading), one module at a time: the Keras
allow-list, the .npz layout, every hostile file, the client's refusals and copies, the time limit, and the table.
Each hostile file is a real file built here. Tests marked `unit` import no TensorFlow (hostile Keras files are
written with h5py in Keras' layout); `integration` ones build real models with tf.keras and compare with what
tf.keras itself computes."""
from __future__ import annotations

import base64
import json
import marshal
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from shared.entities import JobStatus, RunStatus
from worker.engine import MLP, evaluate
from worker.grading import keras_files, limits, npz_files, submissions
from worker.grading.keras_files import check_keras_config, read_keras_model
from worker.grading.limits import GradingTimeout, time_limit
from worker.grading.npz_files import read_npz_model
from worker.grading.submissions import SIZE_LIMITS, Rejected, SubmissionRefused, SubmissionRejected
from worker.kinds.grade import KINDS, GradeMnist, grades_csv

REPO = Path(__file__).resolve().parents[1]
unit = pytest.mark.unit
integration = pytest.mark.integration
HM, MNIST = KINDS
rng = np.random.default_rng(0)


# ----------------------------------------------------------------------------- files in Keras' HDF5 layout
def layer(kind: str, name: str, **config) -> dict:
    return {"class_name": kind, "config": {"name": name, **config}}


def dense(name: str, units: int, activation: str = "linear", **extra) -> dict:
    return layer("Dense", name, units=units, activation=activation, use_bias=True, **extra)


def sequential(*layers: dict, width: int = 20) -> dict:
    """A Keras 3 Sequential model_config: an InputLayer of `width`, then `layers`."""
    first = {"class_name": "InputLayer", "config": {"batch_shape": [None, width], "name": "input_layer"}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [first, *layers]}}


PROBLEM_4 = (dense("hidden", 20, "relu"), dense("output", 1, "sigmoid"))


def functional(*layers: dict, branch: bool = False) -> dict:
    """A Keras 3 functional model_config: input_layer → layers... in a chain (with `branch`, the last layer also
    takes the input layer)."""
    entries = [{"class_name": "InputLayer", "name": "input_layer", "inbound_nodes": [],
                "config": {"batch_shape": [None, 20], "name": "input_layer"}}]
    for spec in layers:
        feeds = [entries[-1]["name"]] + (["input_layer"] if branch and spec is layers[-1] else [])
        args = [{"class_name": "__keras_tensor__", "config": {"keras_history": [n, 0, 0]}} for n in feeds]
        entries.append({**spec, "name": spec["config"]["name"], "inbound_nodes": [{"args": args, "kwargs": {}}]})
    return {"class_name": "Functional", "config": {"name": "functional", "layers": entries,
                                                   "input_layers": [["input_layer", 0, 0]],
                                                   "output_layers": [[entries[-1]["name"], 0, 0]]}}


def write_keras_h5(path: Path, config: dict, weights: dict[str, list[np.ndarray]]) -> Path:
    """A file laid out as Keras' model.save('x.h5') lays it out: the model_config attribute, and per layer a
    group under model_weights whose weight_names attribute names its datasets."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        root = f.create_group("model_weights")
        for name, arrays in weights.items():
            group = root.create_group(name)
            names = [f"sequential/{name}/kernel", f"sequential/{name}/bias"][:len(arrays)]
            group.attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())
            for wname, a in zip(names, arrays):
                group.create_dataset(wname, data=a)
    return path


def problem_4_weights(hidden: int = 20) -> dict[str, list[np.ndarray]]:
    return {"hidden": [rng.normal(size=(20, hidden)).astype(np.float32), np.zeros(hidden, np.float32)],
            "output": [rng.normal(size=(hidden, 1)).astype(np.float32), np.zeros(1, np.float32)]}


def marker_lambda(marker: Path):
    """A function whose bytecode creates `marker` (its path a constant of the code, as Keras marshals it)."""
    return eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")


def lambda_config(marker: Path) -> dict:
    """A Lambda layer as Keras serialises one: marshalled bytecode that would create `marker` when run."""
    code = marker_lambda(marker).__code__
    function = {"class_name": "__lambda__", "config": {"code": base64.b64encode(marshal.dumps(code)).decode(),
                                                        "defaults": None, "closure": None}}
    return sequential(dense("hidden", 20, "relu"), layer("Lambda", "lambda", function=function, arguments={}),
                      dense("output", 1, "sigmoid"))


# ----------------------------------------------------------------------------- the allow-list
@unit
@pytest.mark.parametrize("config", [
    sequential(*PROBLEM_4),
    sequential(dense("hidden", 20, "relu"), layer("Dropout", "dropout", rate=0.2), dense("output", 1, "sigmoid")),
    sequential(dense("hidden", 8, "tanh"), dense("logit", 1), layer("Activation", "out", activation="sigmoid")),
    functional(dense("hidden", 20, "relu"), layer("Dropout", "dropout", rate=0.3), dense("output", 1, "sigmoid")),
    # Keras 2 style: no InputLayer, the first layer states its batch_input_shape
    {"class_name": "Sequential", "config": {"layers": [dense("h", 20, "relu", batch_input_shape=[None, 20]),
                                                       dense("o", 1, "sigmoid")]}},
], ids=["problem-4", "dropout", "activation-layer", "functional-chain", "keras-2-style"])
def test_sequential_and_functional_chains_of_allowed_layers_pass_the_allow_list(config):
    arch = check_keras_config(config)
    assert arch.n_inputs == 20
    assert arch.logits_ops[-1][:3] == ("dense", 1, "linear")  # the final sigmoid left to the loss
    assert arch.n_params == sum(n_in * d.units + d.units for n_in, d in arch.dense)


@unit
@pytest.mark.parametrize("config, message", [
    (sequential(dense("hidden", 20, "relu"), layer("Conv1D", "conv", filters=4), dense("output", 1, "sigmoid")),
     'layer \'conv\' of class "Conv1D" is not allowed; allowed: InputLayer, Dense, Dropout, Activation'),
    (sequential(dense("hidden", 20, "softmax"), dense("output", 1, "sigmoid")),
     "layer 'hidden': activation \"softmax\" is not allowed"),
    (sequential(dense("hidden", 20, {"class_name": "function", "config": "evil", "module": "os"}),
                dense("output", 1, "sigmoid")),
     "layer 'hidden': activation {\"class_name\": \"function\""),
    (sequential(*PROBLEM_4, width=21), "the input width is 21; expected 20 (the 20-bit sequences)"),
    (sequential(dense("hidden", 20, "relu"), dense("output", 2, "softmax")),
     "layer 'output': activation \"softmax\" is not allowed"),
    (sequential(dense("hidden", 20, "relu"), dense("output", 2, "sigmoid")),
     "the output is 2 unit(s) with activation sigmoid (layer 'output'); expected one sigmoid unit"),
    (sequential(dense("hidden", 20, "relu"), dense("output", 1, "relu"),
                layer("Activation", "a", activation="sigmoid")),
     "the output is 1 unit(s) with activation relu then sigmoid (layer 'output'); expected one sigmoid unit"),
    (sequential(dense("hidden", 4096, "relu"), dense("wide", 4096, "relu"), dense("output", 1, "sigmoid")),
     "16,871,425 parameters, over the limit of 1,000,000"),
    (functional(dense("hidden", 20, "relu"), dense("output", 1, "sigmoid"), branch=True),
     "layer 'output' takes its input from ['hidden', 'input_layer']; expected ['hidden']: only a plain chain"),
    ({"class_name": "MyModel", "config": {}}, 'model class "MyModel" is not allowed'),
])
def test_anything_outside_the_allow_list_is_rejected_naming_the_layer_or_attribute(config, message):
    with pytest.raises(Rejected) as exc:
        check_keras_config(config)
    assert message in str(exc.value)


@unit
def test_a_lambda_layer_is_rejected_by_the_allow_list_before_keras_is_even_imported(tmp_path):
    marker = tmp_path / "lambda-ran"
    path = write_keras_h5(tmp_path / "lambda.h5", lambda_config(marker), problem_4_weights())
    code = ("import sys\nfrom worker.grading.keras_files import read_keras_model\n"
            "from worker.grading.submissions import Rejected\n"
            f"try:\n    read_keras_model({str(path)!r})\nexcept Rejected as exc:\n    print(exc)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        'layer \'lambda\' of class "Lambda" is not allowed; allowed: InputLayer, Dense, Dropout, Activation', "[]"]
    assert not marker.exists()


@unit
def test_no_grading_module_imports_tensorflow_when_imported():
    code = ("import sys, pkgutil, importlib, worker.grading\n"
            "for m in pkgutil.iter_modules(worker.grading.__path__):\n"
            "    importlib.import_module(f'worker.grading.{m.name}')\n"
            "import worker.kinds.grade\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]"]


# ----------------------------------------------------------------------------- Keras files read with h5py
@unit
def test_a_valid_file_gives_its_architecture_and_float32_weights_in_order(tmp_path):
    weights = problem_4_weights(hidden=7)
    arch, read = read_keras_model(write_keras_h5(tmp_path / "ok.hdf5", sequential(
        dense("hidden", 7, "relu"), dense("output", 1, "sigmoid")), weights))
    assert arch.describe() == "20 → Dense(7, relu) → Dense(1, sigmoid)" and arch.n_params == 7 * 21 + 8
    assert [w.dtype for w in read] == [np.float32] * 4
    for got, want in zip(read, weights["hidden"] + weights["output"]):
        np.testing.assert_array_equal(got, want)


@unit
def test_weights_whose_shapes_disagree_with_the_configuration_are_rejected(tmp_path):
    weights = problem_4_weights()
    weights["hidden"][0] = np.zeros((21, 20), np.float32)
    with pytest.raises(Rejected, match=r"layer 'hidden': weight 'sequential/hidden/kernel' is float32 \(21, 20\); "
                                       r"expected floats of shape \(20, 20\)"):
        read_keras_model(write_keras_h5(tmp_path / "shapes.h5", sequential(*PROBLEM_4), weights))


@unit
def test_weights_in_another_file_are_refused_without_following_the_link(tmp_path):
    path = write_keras_h5(tmp_path / "external.h5", sequential(*PROBLEM_4), problem_4_weights())
    with h5py.File(path, "a") as f:
        del f["model_weights/hidden/sequential/hidden/kernel"]
        f["model_weights/hidden/sequential/hidden/kernel"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(Rejected, match="is a link to elsewhere \\(ExternalLink\\); only data stored in the file"):
        read_keras_model(path)


@unit
def test_weights_split_into_many_tiny_chunks_are_refused_before_they_are_read(tmp_path):
    path = write_keras_h5(tmp_path / "chunks.h5", sequential(*PROBLEM_4), {})
    with h5py.File(path, "a") as f:
        for name, shape in (("hidden", (20, 20)), ("output", (20, 1))):
            group = f["model_weights"].create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel", f"{name}/bias"], dtype=h5py.string_dtype())
            group.create_dataset(f"{name}/kernel", data=np.ones(shape, np.float32), chunks=(1, 1))
            group.create_dataset(f"{name}/bias", data=np.zeros(shape[1], np.float32))
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Rejected) as exc:
        mp.setattr(keras_files, "KERAS_MAX_CHUNKS", 399)
        read_keras_model(path)
    assert str(exc.value) == ("layer 'hidden': weight 'hidden/kernel' is stored in 400 chunks; at most 399 are read "
                              "(Keras writes one)")
    assert len(read_keras_model(path)[1]) == 4  # 400 chunks: within the real limit


@unit
def test_a_truncated_hdf5_file_is_rejected(tmp_path):
    path = write_keras_h5(tmp_path / "truncated.h5", sequential(*PROBLEM_4), problem_4_weights())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Rejected, match=r"^not a complete HDF5 file \(truncated or corrupt: "):
        read_keras_model(path)


@unit
def test_a_file_that_is_not_hdf5_is_rejected(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("import os; os.system('rm -rf ~')\n")
    with pytest.raises(Rejected, match=r"^not an HDF5 file \(no HDF5 signature\); expected a Keras model saved"):
        read_keras_model(path)


@unit
def test_an_hdf5_file_holding_only_weights_is_rejected(tmp_path):
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.create_dataset("kernel", data=np.zeros((20, 1)))
    with pytest.raises(Rejected, match="the root attribute 'model_config' is missing"):
        read_keras_model(tmp_path / "weights.h5")


# ----------------------------------------------------------------------------- .npz in the sweep's layout
def save_mlp(path: Path, sizes=(784, 16, 10), activation="relu", seed=0) -> MLP:
    model = MLP.initialize(sizes, activation, rng=seed)
    model.save_npz(path)
    return model


def mnist_like(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


@unit
def test_sweep_layout_weights_are_graded_as_the_engine_evaluates_them(tmp_path):
    model = save_mlp(tmp_path / "weights.npz", (784, 32, 16, 10), "tanh")
    x, y = mnist_like()
    graded = npz_files.grade_npz_file(tmp_path / "weights.npz", x, y)
    expected = evaluate(model, x, y)
    assert graded == {"accuracy": expected.accuracy, "loss": pytest.approx(expected.loss, rel=1e-6),
                      "n_params": model.n_params, "architecture": "784-32-16-10 tanh"}


class Touch:
    """Unpickling it creates `path`: what a hostile object array would do with allow_pickle=True."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@unit
def test_an_npz_with_an_object_array_is_rejected_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    arrays = save_mlp(tmp_path / "ok.npz").arrays()
    np.savez(tmp_path / "pickle.npz", **{**arrays, "W0": np.array([Touch(marker)], dtype=object)},
             activation=np.array("relu"))
    with pytest.raises(Rejected) as exc:
        read_npz_model(tmp_path / "pickle.npz")
    assert str(exc.value) == ("array 'W0' has dtype object (pickled Python objects, never loaded); expected "
                              "float32 or float64")
    assert not marker.exists()
    np.load(tmp_path / "pickle.npz", allow_pickle=True)["W0"]  # the file is truly hostile
    assert marker.exists()


@unit
@pytest.mark.parametrize("change, message", [
    ({"W0": np.zeros((780, 16), np.float32)}, "array 'W0' has shape (780, 16); expected (784, h) (the 784 pixels in, "
                                              "hidden widths 1..4096)"),
    ({"b0": np.zeros(15, np.float32)}, "array 'b0' has shape (15,); expected (16,)"),
    ({"W1": np.zeros((16, 9), np.float32), "b1": np.zeros(9, np.float32)},
     "array 'W1' has shape (16, 9); expected (16, 10) (the 10 classes out)"),
    ({"W1": np.zeros((15, 10), np.float32)}, "array 'W1' has shape (15, 10); expected (16, 10)"),
    ({"W0": np.zeros((784, 16), np.int64)}, "array 'W0' has dtype int64; expected float32 or float64"),
    ({"extra": np.zeros(3)}, "arrays W0, W1, activation, b0, b1, extra: unexpected extra; expected W0, b0"),
    ({"activation": np.array("sigmoid")}, "activation 'sigmoid'; expected one of relu, tanh"),
    ({"activation": np.array(["relu", "tanh"])}, "array 'activation' is <U4 (2,); expected a string"),
])
def test_an_npz_with_the_wrong_names_dtypes_or_shapes_is_rejected(tmp_path, change, message):
    arrays = {**save_mlp(tmp_path / "ok.npz").arrays(), "activation": np.array("relu"), **change}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(Rejected) as exc:
        read_npz_model(tmp_path / "bad.npz")
    assert message in str(exc.value)


@unit
def test_a_compressed_npz_that_would_decompress_to_gigabytes_is_rejected_from_its_header(tmp_path):
    # 784 x 300,000 float32 zeros: 940 MB once read, under a megabyte compressed
    np.savez_compressed(tmp_path / "bomb.npz", W0=np.zeros((784, 300_000), np.float32),
                        b0=np.zeros(300_000, np.float32), W1=np.zeros((300_000, 10), np.float32),
                        b1=np.zeros(10, np.float32), activation=np.array("relu"))
    assert (tmp_path / "bomb.npz").stat().st_size < SIZE_LIMITS[".npz"]
    with pytest.raises(Rejected, match=r"array 'W0' has shape \(784, 300000\); expected \(784, h\)"):
        read_npz_model(tmp_path / "bomb.npz")


@unit
def test_a_file_that_is_not_an_npz_is_rejected(tmp_path):
    (tmp_path / "w.npz").write_bytes(b"\x93NUMPY not a zip")
    with pytest.raises(Rejected, match=r"^not an .npz file \(not a zip archive\)"):
        read_npz_model(tmp_path / "w.npz")


# ----------------------------------------------------------------------------- the client: listing, refusing, copying
@pytest.fixture
def class_folder(tmp_path) -> Path:
    """A TA's folder: two valid .npz, an object array, a symbolic link, a FIFO, a file over the size limit and a
    file with another suffix (left out)."""
    folder = tmp_path / "class"
    folder.mkdir()
    save_mlp(folder / "alice.npz", seed=1)
    save_mlp(folder / "bob.npz", (784, 8, 10), seed=2)
    np.savez(folder / "carol.npz", W0=np.array([1, "x"], dtype=object))
    os.symlink(folder / "alice.npz", folder / "dave.npz")
    os.mkfifo(folder / "erin.npz")
    with open(folder / "frank.npz", "wb") as fh:
        fh.truncate(SIZE_LIMITS[".npz"] + 1)  # sparse: no disk used
    (folder / "notes.txt").write_text("not a submission")
    return folder


@unit
def test_plan_lists_a_folder_in_name_order_and_refuses_links_fifos_and_big_files(class_folder):
    plan = MNIST.plan({"path": [class_folder]})
    assert [r.name for r in plan.runs] == ["001-alice", "002-bob", "003-carol", "004-dave", "005-erin", "006-frank"]
    assert all(r.epochs_total == 1 for r in plan.runs)
    refused = {r.config["file"].rsplit("/", 1)[1]: r.config["refused"] for r in plan.runs}
    assert refused["alice.npz"] is None and refused["carol.npz"] is None
    assert refused["dave.npz"] == (f"a symbolic link (to {class_folder / 'alice.npz'}); only regular files are "
                                   "graded, give the file itself")
    assert refused["erin.npz"] == "a FIFO, not a regular file"
    assert refused["frank.npz"] == ("50,000,001 bytes, over the limit of 50,000,000 bytes for .npz files (a valid "
                                    "submission is far smaller)")
    alice = plan.runs[0].config
    assert alice["file"] == str(class_folder / "alice.npz")
    assert alice["size"] == (class_folder / "alice.npz").stat().st_size
    assert alice["sha256"] == submissions.read_checked(str(class_folder / "alice.npz"), 10**9)[0]
    assert plan.params == {"submissions": 6, "time_limit": limits.TIME_LIMIT_S}


@unit
def test_files_that_share_a_name_are_told_apart_by_their_folder():
    from worker.grading.submissions import run_names
    assert run_names(["alice/weights.npz", "bob/weights.npz", "carol/mine.npz", "weights.npz"]) == \
        ["001-alice-weights", "002-bob-weights", "003-mine", "004-weights"]
    assert run_names(["class/a b.h5", "class/c.h5"]) == ["001-a_b", "002-c"]  # a folder's files keep their names


@unit
def test_an_explicit_file_with_another_suffix_is_refused_and_a_missing_path_is_a_usage_error(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"zip")
    plan = HM.plan({"path": [str(tmp_path / "model.keras")]})
    assert plan.runs[0].config["refused"] == "its name ends in '.keras'; expected .h5 or .hdf5"
    with pytest.raises(ValueError, match="nope.h5: no such file or folder"):
        HM.plan({"path": [str(tmp_path / "nope.h5")]})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: a folder with no \*.h5 or \*.hdf5 file in it"):
        HM.plan({"path": [str(tmp_path / "empty")]})
    with pytest.raises(ValueError, match="--time-limit 0"):
        HM.plan({"path": [str(tmp_path / "model.keras")], "time_limit": 0})


@unit
def test_stage_copies_each_accepted_file_and_notes_one_that_changed_after_it_was_checked(class_folder, tmp_path):
    plan = MNIST.plan({"path": [class_folder]})
    save_mlp(class_folder / "bob.npz", seed=99)  # rewritten between plan and stage
    job = tmp_path / "job"
    MNIST.stage("0123456789ab", plan, job)
    staged = sorted(p.name for p in (job / "submissions").iterdir())
    assert staged == ["001-alice.npz", "002-bob.refused", "003-carol.npz"]
    assert (job / "submissions" / "001-alice.npz").read_bytes() == (class_folder / "alice.npz").read_bytes()
    assert (job / "submissions" / "002-bob.refused").read_text() == "changed between being checked and being copied\n"


@unit
def test_read_checked_refuses_a_link_swapped_in_after_the_check_and_a_file_over_the_limit(tmp_path):
    (tmp_path / "real").write_bytes(b"x" * 100)
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(SubmissionRefused, match="a symbolic link"):
        submissions.read_checked(str(tmp_path / "link"), 1000)
    with pytest.raises(SubmissionRefused, match="100 bytes, over the limit of 99 bytes"):
        submissions.read_checked(str(tmp_path / "real"), 99, tmp_path / "copy")
    assert not (tmp_path / "copy").exists() and not (tmp_path / "copy.tmp").exists()


# ----------------------------------------------------------------------------- the time limit
@unit
def test_the_time_limit_interrupts_a_slow_grading_and_restores_the_previous_handler():
    previous = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    with pytest.raises(GradingTimeout, match="took longer than the time limit of 0.2 s"):
        with time_limit(0.2):
            while True:  # pure Python: the handler runs between two bytecodes
                pass
    assert 0.15 < time.monotonic() - start < 5
    assert signal.getsignal(signal.SIGALRM) is previous
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with time_limit(5):  # a quick grading: no alarm afterwards
        pass
    time.sleep(0.05)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# ----------------------------------------------------------------------------- a run and the job, in-process
def run_ctx(job_dir: Path, spec, params: dict, rows: list) -> SimpleNamespace:
    return SimpleNamespace(run=SimpleNamespace(name=spec.name, config=spec.config), job=SimpleNamespace(params=params),
                           job_dir=job_dir, settings=None, threads=1, record_epoch=rows.append)


def run_status(run_id: int, spec, *, result=None, error=None) -> RunStatus:
    return RunStatus(run_id=run_id, job_id="0123456789ab", name=spec.name, role="run", config=spec.config,
                     state="failed" if error else "succeeded", epochs_total=1, epochs_done=0 if error else 1,
                     attempts=1, result=result, error=error, worker=None, pid=None)


@unit
def test_a_whole_grading_in_process_every_file_gets_a_row_in_order_and_the_csv_is_ranked(class_folder, tmp_path,
                                                                                            monkeypatch):
    x, y = mnist_like()
    monkeypatch.setattr(GradeMnist, "held_out", lambda self, params, settings: (x, y, "the test images"))
    plan = MNIST.plan({"path": [class_folder]})
    job_dir = tmp_path / "job"
    MNIST.stage("0123456789ab", plan, job_dir)
    runs, rows = [], []
    for i, spec in enumerate(plan.runs, 1):
        try:
            runs.append(run_status(i, spec, result=MNIST.train(run_ctx(job_dir, spec, plan.params, rows))))
        except Exception as exc:  # as worker/jobs.py stores it (failures.describe)
            runs.append(run_status(i, spec, error=f"{type(exc).__name__}: {exc}"))
    assert [(r["epoch"], r["val_accuracy"] is not None) for r in rows] == [(1, True), (1, True)]
    job = JobStatus(job_id="0123456789ab", kind="grade-mnist", state="succeeded", error=None, params=plan.params,
                    result=None, cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                    best_val_accuracy=None, eta_seconds=None, runs=runs)
    result = MNIST.finalize(SimpleNamespace(job=job, job_dir=job_dir, settings=None))
    grades = result["grades"]
    assert [Path(g["file"]).name for g in grades] == ["alice.npz", "bob.npz", "carol.npz", "dave.npz", "erin.npz",
                                                      "frank.npz"]
    for g, sizes, seed in ((grades[0], (784, 16, 10), 1), (grades[1], (784, 8, 10), 2)):
        expected = evaluate(MLP.initialize(sizes, "relu", rng=seed), x, y)
        assert g["error"] is None and g["accuracy"] == expected.accuracy
        assert g["sha256"] == submissions.read_checked(g["file"], 10**9)[0]
    assert grades[2]["error"].startswith("SubmissionRejected: arrays W0: missing activation, b0; expected W0, b0")
    assert grades[3]["error"].startswith("SubmissionRefused: a symbolic link")
    assert grades[4]["error"] == "SubmissionRefused: a FIFO, not a regular file"
    assert grades[5]["error"].startswith("SubmissionRefused: 50,000,001 bytes")
    assert runs[4].error == f"SubmissionRefused: {class_folder / 'erin.npz'}: a FIFO, not a regular file"
    assert (result["graded"], result["failed"], result["data"]) == (2, 4, "the test images")
    lines = (job_dir / "grades.csv").read_text().splitlines()
    assert lines[0] == "rank,file,accuracy,loss,n_params,size,sha256,error"
    best = max(grades[:2], key=lambda g: (g["accuracy"], -g["loss"]))
    assert lines[1].startswith(f"1,{best['file']},{best['accuracy']}") and lines[2].startswith("2,")
    assert [line.split(",")[1] for line in lines[3:]] == [g["file"] for g in grades[2:]]
    report = MNIST.report(JobStatus(**{**job.__dict__, "result": result}), [])
    assert "| rank | file | accuracy | cross-entropy | parameters | sha256 |" in report
    assert f"| 1 | {best['file']} |" in report and "## Not graded" in report
    assert f"- `{grades[4]['file']}`: {grades[4]['error']}" in report
    assert MNIST.summary(JobStatus(**{**job.__dict__, "result": result}))[0] == (
        "graded 2 of 6 file(s) on the test images")


@unit
def test_a_file_past_the_time_limit_fails_alone_with_the_reason(tmp_path, monkeypatch):
    save_mlp(tmp_path / "slow.npz")
    monkeypatch.setattr(GradeMnist, "held_out", lambda self, params, settings: (*mnist_like(10), "x"))

    def slow(self, path, x, y, threads):
        while True:
            pass

    monkeypatch.setattr(GradeMnist, "grade", slow)
    plan = MNIST.plan({"path": [tmp_path / "slow.npz"], "time_limit": 1})
    MNIST.stage("0123456789ab", plan, tmp_path / "job")
    with pytest.raises(GradingTimeout) as exc:
        MNIST.train(run_ctx(tmp_path / "job", plan.runs[0], plan.params, []))
    assert str(exc.value) == f"{tmp_path / 'slow.npz'}: loading and evaluating took longer than the time limit of 1 s"


@unit
def test_a_copy_altered_on_the_volume_is_rejected(tmp_path, monkeypatch):
    save_mlp(tmp_path / "w.npz")
    monkeypatch.setattr(GradeMnist, "held_out", lambda self, params, settings: (*mnist_like(10), "x"))
    plan = MNIST.plan({"path": [tmp_path / "w.npz"]})
    MNIST.stage("0123456789ab", plan, tmp_path / "job")
    save_mlp(tmp_path / "job" / "submissions" / "001-w.npz", seed=5)
    with pytest.raises(SubmissionRejected, match=r"w.npz: its copy in the job folder \(sha256 [0-9a-f]{12}…\) is "
                                                  r"not the file submitted"):
        MNIST.train(run_ctx(tmp_path / "job", plan.runs[0], plan.params, []))


@unit
def test_grades_csv_puts_failures_last_with_their_reasons():
    grades = [{"index": 0, "file": "a.h5", "accuracy": 0.6, "loss": 0.7, "error": None},
              {"index": 1, "file": "b.h5", "error": "SubmissionRejected: b.h5: no"},
              {"index": 2, "file": "c,d.h5", "accuracy": 0.6, "loss": 0.6, "error": None}]
    assert grades_csv(grades).splitlines() == ["rank,file,accuracy,loss,n_params,size,sha256,error",
                                               '1,"c,d.h5",0.6,0.6,,,,', "2,a.h5,0.6,0.7,,,,",
                                               ",b.h5,,,,,,SubmissionRejected: b.h5: no"]


# ----------------------------------------------------------------------------- real tf.keras models
@pytest.fixture(scope="module")
def keras_data():
    """Problem 4's validation part of the synthetic human-like set (as `--synthetic` trains on)."""
    from shared import datasets
    from worker.experiments.human_machine import split_data

    x, y = datasets.synthetic_human_machine()
    return x, y, *split_data(x, y)[1]


def tf_keras_scores(path: Path, x, y) -> tuple[float, float]:
    """(accuracy, binary cross-entropy) as tf.keras itself computes them for the file."""
    import tensorflow as tf

    model = tf.keras.models.load_model(path, compile=False)
    model.compile(loss="binary_crossentropy", metrics=["accuracy", "binary_crossentropy"])
    scores = model.evaluate(x, np.reshape(y, (-1, 1)), verbose=0, return_dict=True, batch_size=256)
    return scores["accuracy"], scores["binary_crossentropy"]


@integration
def test_the_model_hdf5_problem_4_writes_is_graded_with_tf_keras_own_accuracy(tmp_path, keras_data):
    from worker.experiments.human_machine import run_human_machine

    x, y, x_val, y_val = keras_data
    run = run_human_machine("adam-dropout", x, y, {"epochs": 1}, tmp_path)
    path = tmp_path / run.result["files"]["model"]
    graded = keras_files.grade_keras_file(path, x_val, y_val)
    accuracy, loss = tf_keras_scores(path, x_val, y_val)
    assert graded["accuracy"] == pytest.approx(accuracy, abs=1e-7) == run.result["val_accuracy"]
    assert graded["loss"] == pytest.approx(loss, rel=1e-5)
    assert graded["n_params"] == 441
    assert graded["architecture"] == "20 → Dense(20, relu) → Dropout → Dense(1, sigmoid)"


TF_KERAS_SCRIPT = """
import sys, numpy as np, tensorflow as tf
x = np.random.default_rng(1).choice([-1.0, 1.0], size=(400, 20)).astype("float32")
y = (x[:, :3].sum(axis=1) > 0).astype("int64")
seq = tf.keras.Sequential([tf.keras.Input(shape=(20,)),
                           tf.keras.layers.Dense(16, activation="tanh",
                                                 kernel_regularizer=tf.keras.regularizers.l2(1e-3)),
                           tf.keras.layers.Dropout(0.2), tf.keras.layers.Dense(1, activation="sigmoid")])
inputs = tf.keras.Input(shape=(20,))
hidden = tf.keras.layers.Dense(12, activation="elu")(inputs)
outputs = tf.keras.layers.Activation("sigmoid")(tf.keras.layers.Dense(1)(hidden))
fun = tf.keras.Model(inputs, outputs)
for model, name in ((seq, "sequential.h5"), (fun, "functional.hdf5")):
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, verbose=0)
    model.save(sys.argv[1] + "/" + name)
"""


@integration
def test_models_saved_by_a_plain_tf_keras_script_are_graded_with_tf_keras_own_accuracy(tmp_path, keras_data):
    proc = subprocess.run([sys.executable, "-c", TF_KERAS_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, x_val, y_val = keras_data
    expected = {"sequential.h5": "20 → Dense(16, tanh) → Dropout → Dense(1, sigmoid)",
                "functional.hdf5": "20 → Dense(12, elu) → Dense(1, linear) → Activation(sigmoid)"}
    for name, architecture in expected.items():
        graded = keras_files.grade_keras_file(tmp_path / name, x_val, y_val)
        accuracy, loss = tf_keras_scores(tmp_path / name, x_val, y_val)
        assert graded["accuracy"] == pytest.approx(accuracy, abs=1e-7), name
        assert graded["loss"] == pytest.approx(loss, rel=1e-5), name  # the cross-entropy, no L2 penalty in it
        assert graded["architecture"] == architecture


def build_and_save(path: Path, *layers, width: int = 20) -> Path:
    import keras

    from worker.experiments.human_machine import save_hdf5

    return save_hdf5(keras.Sequential([keras.Input(shape=(width,)), *layers]), path)


@integration
def test_a_real_keras_lambda_layer_that_would_create_a_marker_is_rejected_and_never_runs(tmp_path, keras_data):
    import keras

    marker = tmp_path / "lambda-ran"
    path = build_and_save(tmp_path / "lambda.h5", keras.layers.Dense(20, activation="relu"),
                          keras.layers.Lambda(marker_lambda(marker), name="lambda"),
                          keras.layers.Dense(1, activation="sigmoid"))
    marker.unlink()  # building the model ran the lambda once, here
    _, _, x_val, y_val = keras_data
    with pytest.raises(Rejected) as exc:
        keras_files.grade_keras_file(path, x_val, y_val)
    assert str(exc.value) == ('layer \'lambda\' of class "Lambda" is not allowed; allowed: InputLayer, Dense, '
                              'Dropout, Activation')
    assert not marker.exists()
    code = f"import keras; keras.models.load_model({str(path)!r}, safe_mode=False)"  # what grading never does
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert marker.exists()


@integration
def test_a_real_keras_model_with_a_layer_not_allowed_or_the_wrong_input_width_is_rejected(tmp_path, keras_data):
    import keras

    _, _, x_val, y_val = keras_data
    norm = build_and_save(tmp_path / "norm.h5", keras.layers.Dense(20, activation="relu"),
                          keras.layers.BatchNormalization(name="norm"), keras.layers.Dense(1, activation="sigmoid"))
    with pytest.raises(Rejected, match="^layer 'norm' of class \"BatchNormalization\" is not allowed"):
        keras_files.grade_keras_file(norm, x_val, y_val)
    wide = build_and_save(tmp_path / "wide.h5", keras.layers.Dense(20, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid"), width=21)
    with pytest.raises(Rejected, match=r"^the input width is 21; expected 20 \(the 20-bit sequences\)$"):
        keras_files.grade_keras_file(wide, x_val, y_val)
