"""Bad input through the real CLI and one real Celery worker on the real Redis.

One worker (concurrency 1) serves every case of the module. A good job runs first; then each bad input must
fail its own job with a message naming the file, the key where there is one, and what was expected, while the
worker process (and its single pool process) stays alive and the good job's status, rows and artifacts stay
exactly as they were. Input files the client can judge from their headers (missing, not HDF5, wrong keys or
shapes, a bad IDX magic number) are refused by the CLI with the same message before any job exists; the worker
still finds what only the data shows (NaN, out-of-range values, truncated data). Options that are malformed on
their face are refused by the CLI before anything is created. A job whose learning rate makes one run diverge
still succeeds with the failure listed.
"""
from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import WorkerProcess, hw3
from shared.artifacts import sha256_of
from shared.datasets import FASHION_DIR, FASHION_FILES, MNIST_TEST_FILE, MNIST_TRAIN_FILE
from shared.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # whole jobs through the CLI, a worker and Redis

# one small run; the final retrain on all 60,000 images stays quick with a narrow network and large batches
SMALL = ["--epochs", "1", "--train-size", "1000", "--hidden", "32", "--batch-size", "200", "--activations", "relu"]
QUICK_SWEEP = [*SMALL, "--lrs", "0.04"]
N = 100  # rows of the hand-made MNIST files
END_TIMEOUT = 300  # generous: each job here takes seconds, but the machine is shared


def _json_tail(stdout: str):
    return json.loads(stdout[stdout.index("{"):])


def _pool_pids(pid: int) -> set[int]:
    """Processes whose parent is `pid` (the Celery pool of the worker's main process)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def _snapshot(service, job_id: str) -> dict:
    """What must never change once a job has ended: state, result, error, runs, rows, artifacts and their bytes."""
    st = service.store.job_status(job_id)
    base = Path(service.env["HW3_DATA"]) / "artifacts" / job_id
    return {
        "job": {k: getattr(st, k) for k in ("state", "result", "error", "params", "finished_at")},
        "runs": [{k: getattr(r, k) for k in ("name", "state", "epochs_done", "result", "error", "finished_at")}
                 for r in st.runs],
        "rows": service.store.epochs(job_id),
        "artifacts": service.store.artifacts(job_id),
        "bytes": {a.path: sha256_of(base / a.path) for a in service.store.artifacts(job_id)},
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory, redis_server, real_datasets):
    """A volume, the real datasets as the worker's HW3_DATASETS, and one worker on a Redis database of its own
    (so that no other module's leftover messages reach it)."""
    data = tmp_path_factory.mktemp("bad-input") / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HW3_BLAS_THREADS")}
    env.update(HW3_DATA=str(data), HW3_DATASETS=str(real_datasets),
               CELERY_BROKER_URL=redis_server.rsplit("/", 1)[0] + "/7")
    # the worker inherits one core: its single pool process then trains with one BLAS thread, which keeps the
    # small retrains here quick on a busy shared machine (two threads on two busy cores are many times slower)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        worker = WorkerProcess(env, concurrency=1, name="bad-input")
    finally:
        os.sched_setaffinity(0, cpus)
    try:
        yield SimpleNamespace(env=env, worker=worker, store=Store(f"sqlite:///{data / 'hw3.sqlite'}"),
                              datasets=real_datasets, pool=set())
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def good_job(service) -> dict:
    """A quick sweep that succeeds before any bad input; its snapshot is compared at the end."""
    proc = hw3("sweep", *QUICK_SWEEP, "--wait", "--json", env=service.env, timeout=END_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr + service.worker.log()[-3000:]
    status = _json_tail(proc.stdout)
    assert status["state"] == "succeeded" and status["result"]["test_accuracy"] > 0.8, status
    snap = _snapshot(service, status["job_id"])
    assert {"report.md", "overview.png", "runs/final/weights.npz"} <= set(snap["bytes"])
    assert snap["bytes"] == {a.path: a.sha256 for a in snap["artifacts"]}  # recorded = on disk
    assert len(snap["rows"]) == 2  # the run's epoch and the final retrain's
    service.pool = _pool_pids(service.worker.proc.pid)
    assert len(service.pool) == 1, service.pool
    return {"job_id": status["job_id"], "snapshot": snap}


def _assert_worker_alive(service) -> None:
    assert service.worker.proc.poll() is None, service.worker.log()[-3000:]
    assert _pool_pids(service.worker.proc.pid) == service.pool, "the pool process was replaced (it crashed)"


# ----------------------------------------------------------------------------- building bad inputs

Writer = Callable[[Path], None]


def _h5(**arrays) -> Writer:
    def write(path: Path) -> None:
        with h5py.File(path, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value)
    return write


def _pixels(n: int = N, cols: int = 784, at: tuple | None = None, value=None) -> np.ndarray:
    x = np.full((n, cols), 0.5, np.float32)
    if at is not None:
        x[at] = value
    return x


def _onehot(n: int = N) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[np.arange(n) % 10]


FULL = 60_000  # rows of the training file: the client refuses any other count before a job exists


def _full_train(at: tuple | None = None, value=None, labels: Callable[[int], np.ndarray] | None = None) -> Writer:
    """A training file of the right shapes (60,000 rows, gzip-compressed: nearly one value) with one bad pixel or
    bad labels, which only the worker's loader finds; the arrays are built when the file is written."""
    def write(path: Path) -> None:
        with h5py.File(path, "w") as f:
            f.create_dataset("xdata", data=_pixels(FULL, at=at, value=value), compression="gzip", compression_opts=1)
            f.create_dataset("ydata", data=_onehot(FULL) if labels is None else labels(FULL), compression="gzip",
                             compression_opts=1)
    return write


def _truncated(write: Writer) -> Writer:
    def wr(path: Path) -> None:
        write(path)
        os.truncate(path, path.stat().st_size // 2)
    return wr


def _text(content: str) -> Writer:
    return lambda path: path.write_text(content)


def _directory(path: Path) -> None:
    path.mkdir()


def _unreadable(write: Writer) -> Writer:
    def wr(path: Path) -> None:
        write(path)
        path.chmod(0)
    return wr


def _idx_gz(magic: int, dims: tuple[int, ...], payload: bytes) -> Writer:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return lambda path: path.write_bytes(gzip.compress(header + payload, compresslevel=1))


def _real_edited(name: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], Writer]:
    """A writer deriving the bad file from the bytes of the real Fashion-MNIST file `name`."""
    def make(real: Path) -> Writer:
        def wr(path: Path) -> None:
            raw = (real / FASHION_DIR / name).read_bytes()
            path.write_bytes(edit(raw))
        return wr
    return make


@dataclass(frozen=True)
class Case:
    command: str                   # sweep, confusion, regularization, human-machine
    target: str                    # the file under test, relative to the case's datasets folder
    write: Writer | Callable | None  # makes the bad file (None: leave it missing)
    fragments: tuple[str, ...]     # besides the file's path, the message must hold each of these
    via_data: bool = False         # human-machine: pass the file with --data instead of --datasets
    folder: str = "linked"         # linked: the real files but the target; empty: no files; a-file: not a folder
    from_real: bool = False        # `write` takes the real datasets folder and returns the writer
    final: bool = False            # the sweep fails only at its final test step
    refused: bool = False          # the client refuses it from the headers: exit 2, no job
    names_folder: bool = False     # the message names the datasets folder rather than the (missing) file


def _build(case: Case, root: Path, real: Path) -> tuple[list[str], Path]:
    """A datasets folder in `root`: links to every real input file except the one under test. Returns the
    CLI arguments naming it (or the file under test) and the path the message must name."""
    folder = root / "datasets"
    if case.folder == "a-file":
        folder.symlink_to(real / MNIST_TRAIN_FILE)
        return ["--datasets", str(folder)], folder
    folder.mkdir()
    if case.folder == "empty":
        return ["--datasets", str(folder)], folder
    (folder / FASHION_DIR).mkdir()
    for name in (MNIST_TRAIN_FILE, MNIST_TEST_FILE):
        (folder / name).symlink_to(real / name)
    for name in FASHION_FILES.values():
        (folder / FASHION_DIR / name).symlink_to(real / FASHION_DIR / name)
    bad = folder / case.target
    if bad.is_symlink():
        bad.unlink()
    if case.write is not None:
        (case.write(real) if case.from_real else case.write)(bad)
    if case.command == "human-machine" and case.via_data:
        return ["--data", str(bad)], bad
    return ["--datasets", str(folder)], bad


def _train(write: Writer, *fragments: str, **kw) -> Case:
    return Case("sweep", MNIST_TRAIN_FILE, write, fragments, **kw)


def _fashion(command: str, name: str, write, *fragments: str, **kw) -> Case:
    return Case(command, f"{FASHION_DIR}/{FASHION_FILES[name]}", write, fragments, **kw)


def _bits(human: np.ndarray, machine: np.ndarray) -> Writer:
    return _h5(human=human, machine=machine)


_rng = np.random.default_rng(0)
HUMAN = _rng.choice(np.array([-1.0, 1.0], np.float32), size=(40, 20))
MACHINE = _rng.choice(np.array([-1.0, 1.0], np.float32), size=(40, 20))
BITS = "expected bits in {-1, +1} or in {0, 1}"
PIXELS = "expected pixels as floats in [0, 1] or integers in 0..255"


def _set(a: np.ndarray, at: tuple, value) -> np.ndarray:
    a = a.copy()
    a[at] = value
    return a


def _bump_label(raw: bytes) -> bytes:
    data = bytearray(gzip.decompress(raw))
    data[8 + 5] = 10  # the sixth label of train-labels becomes 10
    return gzip.compress(bytes(data), compresslevel=1)


ROOT = os.geteuid() == 0
CASES = [
    pytest.param(_train(_truncated(_h5(xdata=_pixels(), ydata=_onehot())), "HDF5 file is truncated or corrupt",
                        "expected a complete HDF5 file", refused=True), id="truncated-hdf5"),
    pytest.param(_train(_text("xdata,ydata\n0.5,3\n"), "is not an HDF5 file", "expected an HDF5 file", refused=True),
                 id="not-hdf5"),
    pytest.param(_train(_h5(xdata=_pixels()), "key 'ydata'", "key is missing (keys present: 'xdata')",
                        "expected a dataset named 'ydata'", refused=True), id="missing-key"),
    pytest.param(_train(_h5(images=_pixels(), ydata=_onehot()), "key 'xdata'", "keys present: 'images', 'ydata'",
                        "expected a dataset named 'xdata'", refused=True), id="misnamed-key"),
    pytest.param(_train(_h5(xdata=_pixels(cols=783), ydata=_onehot()), "key 'xdata'", "has 783 columns",
                        "expected 784 columns", refused=True), id="783-columns"),
    pytest.param(_train(_h5(xdata=_pixels(n=0), ydata=_onehot(0)), "key 'xdata'", "is empty (0 rows)",
                        "expected at least one row", refused=True), id="0-rows"),
    pytest.param(_train(_full_train(at=(3, 5), value=np.nan), "key 'xdata'",
                        "contains 1 NaN and 0 infinite values (first in row 3)", "expected finite numbers only"),
                 id="nan-pixels"),
    pytest.param(_train(_full_train(at=(4, 0), value=np.inf), "key 'xdata'",
                        "contains 0 NaN and 1 infinite values (first in row 4)", "expected finite numbers only"),
                 id="inf-pixels"),
    pytest.param(_train(_full_train(at=(7, 1), value=300), "key 'xdata'",
                        "pixel values above 255 (max 300.0, first in row 7)", PIXELS), id="pixel-300"),
    pytest.param(_train(_full_train(at=(2, 9), value=-1), "key 'xdata'",
                        "negative pixel values (min -1.0, first in row 2)", PIXELS), id="pixel-minus-1"),
    pytest.param(_train(_full_train(labels=lambda n: _set(_onehot(n), (6, 6), 2)), "key 'ydata'",
                        "one-hot row 6 contains values other than 0 and 1", "expected one-hot rows"),
                 id="one-hot-with-a-2"),
    pytest.param(_train(_full_train(labels=lambda n: _set(np.arange(n) % 10, 8, 10)), "key 'ydata'",
                        "label 10 in row 8 is not a class index", "expected whole-number labels in 0..9"),
                 id="class-index-10"),
    pytest.param(_train(_h5(xdata=_pixels(), ydata=_onehot(N - 1)), "key 'ydata'",
                        f"has {N - 1} rows but xdata has {N}", "expected one label per image", refused=True),
                 id="x-y-row-mismatch"),
    pytest.param(_train(_h5(xdata=_pixels(), ydata=_onehot()), "key 'xdata'", f"holds {N} rows",
                        "expected exactly 60000 rows (50000 training + 10000 validation)", refused=True),
                 id="not-60000-rows"),
    pytest.param(_train(_directory, "is a directory, not a file", "expected a regular file", refused=True),
                 id="train-file-is-a-directory"),
    pytest.param(Case("sweep", "", None, ("is a file, not a directory (the datasets directory)",
                                          "expected the directory holding the input files"), folder="a-file",
                      refused=True),
                 id="datasets-is-a-file"),
    pytest.param(_train(_unreadable(_h5(xdata=_pixels(), ydata=_onehot())), "cannot be read (permission denied)",
                        "expected a file readable by this process", refused=True), id="unreadable-file",
                 marks=pytest.mark.skipif(ROOT, reason="running as root: a chmod 000 file is still readable, "
                                                       "so the permission check cannot be exercised")),
    pytest.param(Case("sweep", MNIST_TEST_FILE, _h5(xdata=_pixels(n=10, at=(3, 5), value=np.nan), ydata=_onehot(10)),
                      ("final retrain", "key 'xdata'", "contains 1 NaN and 0 infinite values (first in row 3)",
                       "expected finite numbers only"), final=True),
                 id="bad-test-file-fails-at-the-end"),
    pytest.param(Case("sweep", MNIST_TEST_FILE, _h5(xdata=_pixels(n=10, cols=783), ydata=_onehot(10)),
                      ("key 'xdata'", "has 783 columns", "expected 784 columns"), refused=True),
                 id="bad-test-file-header"),
    pytest.param(_fashion("regularization", "train_images", _idx_gz(0x0801, (10,), bytes(10)),
                          "bad magic number 0x00000801", "expected 0x00000803 (IDX, unsigned bytes, 3 dimensions)",
                          refused=True),
                 id="fashion-wrong-idx-magic"),
    pytest.param(_fashion("confusion", "train_labels", _idx_gz(0x0801, (60000,), bytes(100)),
                          "holds 100 data bytes but its header (60000,) announces 60000",
                          "expected a complete IDX file"), id="fashion-truncated-labels"),
    pytest.param(_fashion("regularization", "train_images", _real_edited(FASHION_FILES["train_images"],
                                                                         lambda raw: raw[:5000]),
                          "gzip data is truncated or corrupt", "expected a complete gzip-compressed IDX file",
                          from_real=True), id="fashion-truncated-gzip"),
    pytest.param(_fashion("confusion", "train_labels", _real_edited(FASHION_FILES["train_labels"], _bump_label),
                          "label 10 at index 5 is not a class index", "expected labels in 0..9", from_real=True),
                 id="fashion-label-10"),
    pytest.param(_fashion("confusion", "train_images", None, f"{FASHION_DIR}/{FASHION_FILES['train_images']} is "
                          "missing from", f"must hold {FASHION_DIR}/ with", refused=True, names_folder=True),
                 id="fashion-missing-file"),
    pytest.param(Case("human-machine", "hm.hdf5", _bits(_set(HUMAN, (2, 3), 2), MACHINE),
                      ("key 'human'", "values outside the bit encodings: 2.0 (first in row 2)", BITS), via_data=True),
                 id="bits-with-a-2"),
    pytest.param(Case("human-machine", "hm.hdf5", _bits(HUMAN, _set((MACHINE + 1) / 2, (1, 1), 0.5)),
                      ("key 'machine'", "values outside the bit encodings: 0.5 (first in row 1)", BITS),
                      via_data=True), id="bits-of-0.5"),
    pytest.param(Case("human-machine", "hm.hdf5", _bits(HUMAN[:, :19], MACHINE),
                      ("key 'human'", "has 19 columns", "expected 20 columns, shape (N, 20)"), via_data=True,
                      refused=True),
                 id="sequences-of-19-bits"),
    pytest.param(Case("human-machine", "hm.hdf5", None, ("human/machine file not found",
                                                         "expected the course file (keys 'human', 'machine')"),
                      via_data=True, refused=True), id="human-machine-missing-file"),
    pytest.param(Case("human-machine", "", None, ("no human/machine file matching binary_random*.hdf5",
                                                  "expected the course file"), folder="empty", refused=True),
                 id="human-machine-folder-without-the-file"),
]

COMMAND_ARGS = {"sweep": QUICK_SWEEP, "confusion": ["--epochs", "1"], "regularization": ["--epochs", "1"],
                "human-machine": ["--epochs", "1"]}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_its_job_only(case: Case, service, good_job, tmp_path):
    args, bad = _build(case, tmp_path, service.datasets)
    if case.refused:  # judged from the headers by the client: one error line, exit 2, no job
        before = service.store.list_jobs(1000)
        proc = hw3(case.command, *COMMAND_ARGS[case.command], *args, "--wait", "--json", env=service.env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == "" and proc.stderr.startswith("error: ") and proc.stderr.count("error:") == 1, proc.stderr
        named = tmp_path / "datasets" if case.names_folder else bad
        for fragment in (str(named), *case.fragments):
            assert fragment in proc.stderr, f"{fragment!r} not in {proc.stderr!r}"
        assert service.store.list_jobs(1000) == before
        _assert_worker_alive(service)
        return
    proc = hw3(case.command, *COMMAND_ARGS[case.command], *args, "--wait", "--json", env=service.env,
               timeout=END_TIMEOUT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status = _json_tail(proc.stdout)
    assert status["state"] == "failed", status
    message = status["error"]
    for fragment in (str(bad), *case.fragments):
        assert fragment in message, f"{fragment!r} not in {message!r}"
    runs = [r for r in status["runs"] if r["role"] == "run"]
    if case.final:  # the runs trained and kept their rows; only the final test step failed
        assert all(r["state"] == "succeeded" for r in runs), runs
        final = [r for r in status["runs"] if r["role"] == "final"]
        assert [r["state"] for r in final] in (["failed"], ["running"]), final
        rows = service.store.epochs(status["job_id"])
        assert {(r.run, r.epoch) for r in rows} == {("relu-lr0.04", 1), ("final", 1)}
        assert message.startswith("final retrain: DatasetError: ")
    else:  # every run failed with the loader's message, before any epoch
        assert runs and all(r["state"] == "failed" and str(bad) in r["error"] for r in runs), runs
        assert service.store.epochs(status["job_id"]) == []
    _assert_worker_alive(service)
    assert service.store.job_status(good_job["job_id"]).state == "succeeded"


# ----------------------------------------------------------------------------- refused by the CLI


@pytest.mark.parametrize("args, message", [
    pytest.param(["sweep", "--lrs", "-0.1"], "lr must be a positive finite number, got -0.1", id="negative-lr"),
    pytest.param(["sweep", "--lrs", "abc"], "expected a comma-separated list of learning rates, got 'abc'",
                 id="non-numeric-lr"),
    pytest.param(["sweep", "--lrs", "0.04,inf"], "lr must be a positive finite number, got inf", id="infinite-lr"),
    pytest.param(["sweep", "--batch-size", "123"],
                 "batch size 123 does not divide the 50,000 training images (every batch is full); batch sizes in 50..1000 that divide 50,000: 50, 80, 100", id="batch-size"),
    pytest.param(["sweep", "--epochs", "0"], "epochs must be an integer in 1..", id="epochs-0"),
    pytest.param(["sweep", "--epochs", "1000000000"], "got 1000000000", id="epochs-1e9"),
    pytest.param(["sweep", "--epochs", "50", "--decay-epochs", "20,60"],
                 "decay epochs must be strictly increasing integers in 1..49 (epochs - 1), got [20, 60]",
                 id="decay-epoch-past-the-end"),
    pytest.param(["sweep", "--activations", "sigmoid"], "unknown activation 'sigmoid'; expected one of:",
                 id="unknown-activation"),
    pytest.param(["sweep", "--train-size", "4999"], "batch size 100 does not divide the 4,999 training images", id="train-size-4999"),
    pytest.param(["sweep", "--train-size", "60000"], "train size 60000 is outside 1..50000", id="train-size-60000"),
    pytest.param(["sweep", "--datasets", ""], "--datasets is empty; expected the absolute path", id="empty-datasets"),
])
def test_malformed_options_are_refused_before_anything_is_created(args, message, service):
    before = service.store.list_jobs(1000)
    proc = hw3(*args, env=service.env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert service.store.list_jobs(1000) == before


@pytest.mark.parametrize("command", [["status"], ["metrics"], ["report"], ["cancel"], ["fetch", "--dest"]],
                         ids=["status", "metrics", "report", "cancel", "fetch"])
@pytest.mark.parametrize("job_id, message", [("0123456789ab", "no job 0123456789ab"), ("../etc", "invalid job id")],
                         ids=["unknown-id", "malformed-id"])
def test_unknown_or_malformed_job_ids_are_clear_errors(command, job_id, message, service, tmp_path):
    args = [*command[1:], str(tmp_path / "fetched")] if command[0] == "fetch" else []
    proc = hw3(command[0], job_id, *args, env=service.env)
    assert proc.returncode == (2 if "invalid" in message else 1) and message in proc.stderr, (command, proc.stderr)


# ----------------------------------------------------------------------------- a job whose run raises


def test_a_diverging_run_fails_alone_and_the_job_lists_it(service, good_job):
    proc = hw3("sweep", *SMALL, "--lrs", "0.04,1e6", "--wait", "--json", env=service.env, timeout=END_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = _json_tail(proc.stdout)
    assert status["state"] == "succeeded", status
    runs = {r["name"]: r for r in status["runs"]}
    assert runs["relu-lr0.04"]["state"] == "succeeded" and runs["final"]["state"] == "succeeded"
    huge = runs["relu-lr1e+06"]
    assert huge["state"] == "failed"
    reason = re.fullmatch(r"TrainingDiverged: training loss became (nan|inf|-inf) at epoch (\d+) \(lr 1e\+06\); "
                          r"try a smaller learning rate", huge["error"])
    assert reason, huge["error"]
    assert status["result"]["failed_runs"] == {"relu-lr1e+06": huge["error"]}
    assert status["result"]["chosen"]["run"] == "relu-lr0.04"

    shown = hw3("status", status["job_id"], env=service.env)
    assert shown.returncode == 0, shown.stderr
    assert f"run relu-lr1e+06 failed: {huge['error']}" in shown.stdout
    assert "  chosen configuration: relu, initial LR 0.04 (run relu-lr0.04)" in shown.stdout.splitlines()
    assert "result:" not in shown.stdout  # a summary, not the stored result as JSON
    _assert_worker_alive(service)

    # the worker goes on serving: the next job runs to its end
    nxt = hw3("sweep", *QUICK_SWEEP, "--wait", "--json", env=service.env, timeout=END_TIMEOUT)
    assert nxt.returncode == 0 and _json_tail(nxt.stdout)["state"] == "succeeded", nxt.stdout + nxt.stderr
    _assert_worker_alive(service)


def test_the_good_job_is_unchanged_after_all_of_it(service, good_job):
    """Last in the module: every case above has run against the same worker and database."""
    assert _snapshot(service, good_job["job_id"]) == good_job["snapshot"]
    _assert_worker_alive(service)
