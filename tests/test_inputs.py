"""Checking the input files before a job is created, `hw3-submit datasets check / fetch`, --download, and the
datasets folder a job records: small files made here, links to the real files (HW3_TEST_DATASETS) for the cases
that pass, fake downloads (these machines reach no dataset host), Click's runner and a real SQLite store."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from api import cli, client
from shared import datasets as ds
from shared.datasets import DatasetError
from shared.settings import get_settings
from worker import kinds
from worker.kinds.base import JobKind

pytestmark = pytest.mark.unit

SWEEP, CONFUSION, REGULARIZATION, HUMAN_MACHINE = (kinds.get(n) for n in
                                                   ("sweep", "confusion", "regularization", "human-machine"))
MNIST_NAMES = (ds.MNIST_TRAIN_FILE, ds.MNIST_TEST_FILE)
FASHION_NAMES = tuple(ds.FASHION_FILES.values())


# ----------------------------------------------------------------------------- building folders


def write_h5(path: Path, **arrays) -> Path:
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            if isinstance(value, tuple):  # (shape, fill value): a dataset of that shape, no data written
                h5.create_dataset(key, shape=value[0], dtype="f4", fillvalue=value[1])
            else:
                h5.create_dataset(key, data=value)
    return path


def idx_gz(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return gzip.compress(magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
                         + array.tobytes())


def link_real(folder: Path, real: Path, skip: tuple[str, ...] = ()) -> Path:
    """`folder` with links to every real input file but those in `skip` (names relative to the folder)."""
    (folder / ds.FASHION_DIR).mkdir(parents=True, exist_ok=True)
    names = [*MNIST_NAMES, *ds.FASHION_INPUTS, "binary_random_20fa.hdf5"]
    for name in names:
        if name not in skip:
            (folder / name).symlink_to(real / name)
    return folder


@pytest.fixture
def real(real_datasets) -> Path:
    return real_datasets


@pytest.fixture
def linked(tmp_path, real) -> Path:
    return link_real(tmp_path / "linked", real)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Embedded mode (no broker), an isolated HW3_DATA, HW3_DATASETS pointing at a folder that does not exist."""
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HW3_DATASETS", str(tmp_path / "default-datasets"))
    for name in ("CELERY_BROKER_URL", "DATABASE_URL", "HW3_KINDS"):
        monkeypatch.delenv(name, raising=False)
    return get_settings()


def check(kind, folder: Path, settings, **params) -> None:
    kind.check_inputs(kind.plan({"datasets": str(folder), **params}).params, settings)


def message_of(kind, folder: Path, settings, **params) -> str:
    with pytest.raises(DatasetError) as exc:
        check(kind, folder, settings, **params)
    return str(exc.value)


# ----------------------------------------------------------------------------- --datasets


def test_a_relative_datasets_option_is_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ds.check_datasets_option("inputs/../datasets/") == str(tmp_path / "datasets")
    assert ds.check_datasets_option("/srv/x/../datasets") == "/srv/datasets"
    assert ds.check_datasets_option(None) is None
    with pytest.raises(ValueError, match="--datasets is empty"):
        ds.check_datasets_option("  ")


def test_the_environment_folders_are_read_as_the_option_is(tmp_path, monkeypatch):
    """HW3_DATASETS=../shared/data names the same folder as --datasets ../shared/data (and a link stays a link)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    env = {"HW3_DATA": "work/../volume", "HW3_DATASETS": "work/../link/"}
    settings = get_settings(env)
    assert settings.data_dir == tmp_path / "volume"
    assert settings.datasets_dir == tmp_path / "link" == Path(ds.check_datasets_option("work/../link/"))


# ----------------------------------------------------------------------------- the contract and each kind


def test_the_contract_checks_nothing_by_default(settings):
    assert JobKind().check_inputs({}, settings) is None
    from tests.toykind import KIND as TOY

    assert TOY.check_inputs(TOY.plan({}).params, settings) is None


@pytest.mark.parametrize("kind", [SWEEP, CONFUSION, REGULARIZATION, HUMAN_MACHINE], ids=lambda k: k.name)
def test_every_kind_accepts_the_real_files(kind, linked, settings):
    check(kind, linked, settings)


def test_the_check_reads_headers_only(tmp_path, settings):
    """A training file of the right shapes but every pixel NaN passes the check (no data read) and is refused
    by the worker's loader."""
    folder = tmp_path / "nan"
    folder.mkdir()
    write_h5(folder / ds.MNIST_TRAIN_FILE, xdata=((60000, 784), np.nan), ydata=((60000,), 0.0))
    write_h5(folder / ds.MNIST_TEST_FILE, xdata=((10, 784), 0.5), ydata=np.eye(10, dtype=np.float32))
    check(SWEEP, folder, settings)
    with pytest.raises(DatasetError, match="NaN"):
        ds.mnist_full_train(folder)


@pytest.mark.parametrize("kind, expected", [
    (SWEEP, MNIST_NAMES), (CONFUSION, FASHION_NAMES), (REGULARIZATION, FASHION_NAMES),
    (HUMAN_MACHINE, (ds.HUMAN_MACHINE_PATTERN,)),
], ids=lambda v: v.name if isinstance(v, JobKind) else "")
def test_a_missing_folder_is_one_error_naming_it_and_the_files(kind, expected, tmp_path, settings):
    folder = tmp_path / "nowhere"
    msg = message_of(kind, folder, settings)
    assert f"the datasets folder {folder} does not exist" in msg
    for name in expected:
        assert name in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("kind", [SWEEP, CONFUSION, HUMAN_MACHINE], ids=lambda k: k.name)
def test_a_file_where_the_folder_should_be_is_named_as_such(kind, tmp_path, settings):
    (tmp_path / "a-file").write_text("not a folder\n")
    msg = message_of(kind, tmp_path / "a-file", settings)
    assert msg.startswith(f"{tmp_path / 'a-file'}: is a file, not a directory (the datasets directory)"), msg


def test_a_missing_file_is_named_with_the_folder_and_what_it_must_hold(tmp_path, real, settings):
    folder = link_real(tmp_path / "no-test-file", real, skip=(ds.MNIST_TEST_FILE,))
    msg = message_of(SWEEP, folder, settings)
    assert msg.startswith(f"{ds.MNIST_TEST_FILE} is missing from {folder}, which must hold "
                          f"{ds.MNIST_TRAIN_FILE} and {ds.MNIST_TEST_FILE}"), msg
    assert "--download" in msg and "hw3-submit datasets fetch mnist" in msg


def test_a_missing_fashion_folder_is_named_once(tmp_path, settings):
    (tmp_path / "d").mkdir()
    msg = message_of(CONFUSION, tmp_path / "d", settings)
    assert msg.startswith(f"{ds.FASHION_DIR}/ is missing from {tmp_path / 'd'}, which must hold {ds.FASHION_DIR}/ "
                          f"with {', '.join(FASHION_NAMES[:3])} and {FASHION_NAMES[3]}"), msg


N = 20
PIX = np.full((N, 784), 0.5, np.float32)
ONEHOT = np.eye(10, dtype=np.float32)[np.arange(N) % 10]

SWEEP_HEADERS = {
    "not HDF5": (lambda p: p.write_text("xdata,ydata\n"), None, "is not an HDF5 file"),
    "missing key": (lambda p: write_h5(p, xdata=PIX), "ydata", "key is missing (keys present: 'xdata')"),
    "783 columns": (lambda p: write_h5(p, xdata=PIX[:, :783], ydata=ONEHOT), "xdata", "has 783 columns"),
    "labels of 9 columns": (lambda p: write_h5(p, xdata=PIX, ydata=ONEHOT[:, :9]), "ydata", "has 9 columns"),
    "row mismatch": (lambda p: write_h5(p, xdata=PIX, ydata=ONEHOT[:-1]), "ydata", f"has {N - 1} rows but xdata"),
    "not 60000 rows": (lambda p: write_h5(p, xdata=PIX, ydata=ONEHOT), "xdata", f"holds {N} rows"),
    "a directory": (lambda p: p.mkdir(), None, "is a directory, not a file"),
}


@pytest.mark.parametrize("case", list(SWEEP_HEADERS))
def test_a_malformed_mnist_header_names_the_file_the_key_and_the_folder(case, tmp_path, real, settings):
    write, key, fragment = SWEEP_HEADERS[case]
    folder = link_real(tmp_path / "bad", real, skip=(ds.MNIST_TRAIN_FILE,))
    write(folder / ds.MNIST_TRAIN_FILE)
    msg = message_of(SWEEP, folder, settings)
    assert msg.startswith(str(folder / ds.MNIST_TRAIN_FILE)), msg
    assert fragment in msg and (key is None or repr(key) in msg), msg
    assert f"The datasets folder {folder} must hold {ds.MNIST_TRAIN_FILE} and {ds.MNIST_TEST_FILE}" in msg


FASHION_HEADERS = {
    "bad magic": ("train-images-idx3-ubyte.gz", idx_gz(np.zeros((9, 28, 28)), magic=0x0903), "bad magic number"),
    "27x28 images": ("t10k-images-idx3-ubyte.gz", idx_gz(np.zeros((4, 27, 28))), "images are 27x28"),
    "label count": ("train-labels-idx1-ubyte.gz", idx_gz(np.zeros(8)), "holds 8 labels but"),
    "not gzip": ("t10k-labels-idx1-ubyte.gz", b"plain text\n", "gzip data is truncated or corrupt"),
    "short header": ("t10k-images-idx3-ubyte.gz", gzip.compress((0x0803).to_bytes(4, "big") + b"\0\0"),
                     "IDX header is truncated"),
}


@pytest.mark.parametrize("case", list(FASHION_HEADERS))
@pytest.mark.parametrize("kind", [CONFUSION, REGULARIZATION], ids=lambda k: k.name)
def test_a_malformed_idx_header_names_the_file_and_the_folder(kind, case, tmp_path, settings):
    name, data, fragment = FASHION_HEADERS[case]
    folder = tmp_path / "fm"
    (folder / ds.FASHION_DIR).mkdir(parents=True)
    files = {"train-images-idx3-ubyte.gz": idx_gz(np.zeros((9, 28, 28))), "train-labels-idx1-ubyte.gz":
             idx_gz(np.arange(9) % 10), "t10k-images-idx3-ubyte.gz": idx_gz(np.zeros((4, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": idx_gz(np.arange(4)), name: data}
    for file, content in files.items():
        (folder / ds.FASHION_DIR / file).write_bytes(content)
    msg = message_of(kind, folder, settings)
    assert str(folder / ds.FASHION_DIR) in msg and fragment in msg, msg
    assert f"The datasets folder {folder} must hold {ds.FASHION_DIR}/ with" in msg


def test_the_idx_check_reads_the_header_only(tmp_path, settings):
    """Labels whose header announces 9 but that hold 2 pass the check; the worker's loader refuses them."""
    folder = tmp_path / "fm"
    (folder / ds.FASHION_DIR).mkdir(parents=True)
    short = gzip.compress((0x0801).to_bytes(4, "big") + (9).to_bytes(4, "big") + bytes(2))
    for file, content in {"train-images-idx3-ubyte.gz": idx_gz(np.zeros((9, 28, 28))),
                          "train-labels-idx1-ubyte.gz": short,
                          "t10k-images-idx3-ubyte.gz": idx_gz(np.zeros((4, 28, 28))),
                          "t10k-labels-idx1-ubyte.gz": idx_gz(np.arange(4))}.items():
        (folder / ds.FASHION_DIR / file).write_bytes(content)
    check(CONFUSION, folder, settings)
    with pytest.raises(DatasetError, match="holds 2 data bytes"):
        ds.load_fashion_mnist(folder)


BITS = np.ones((N, 20), np.float32)


def test_human_machine_checks_the_folders_file(tmp_path, settings):
    folder = tmp_path / "hm"
    folder.mkdir()
    msg = message_of(HUMAN_MACHINE, folder, settings)
    assert f"{folder}: no human/machine file matching {ds.HUMAN_MACHINE_PATTERN}" in msg
    assert "--data FILE or --synthetic" in msg
    write_h5(folder / "binary_random_x.hdf5", human=BITS[:, :19], machine=BITS)
    msg = message_of(HUMAN_MACHINE, folder, settings)
    assert str(folder / "binary_random_x.hdf5") in msg and "'human'" in msg and "has 19 columns" in msg


def test_human_machine_checks_the_data_file_instead(tmp_path, linked, settings):
    bad = write_h5(tmp_path / "seqs.hdf5", human=BITS)
    msg = message_of(HUMAN_MACHINE, linked, settings, data=str(bad))
    assert str(bad) in msg and "key is missing" in msg and "'machine'" in msg
    msg = message_of(HUMAN_MACHINE, linked, settings, data=str(tmp_path / "none.hdf5"))
    assert "human/machine file not found" in msg
    good = write_h5(tmp_path / "good.hdf5", human=BITS, machine=-BITS)
    check(HUMAN_MACHINE, tmp_path / "no-folder", settings, data=str(good))  # the folder plays no part


def test_synthetic_human_machine_needs_no_file(tmp_path, settings):
    check(HUMAN_MACHINE, tmp_path / "nowhere", settings, synthetic=True)


# ----------------------------------------------------------------------------- the client's plan


def test_the_client_checks_and_records_the_default_folder(settings, real, monkeypatch):
    with pytest.raises(DatasetError, match=re.escape(f"the datasets folder {settings.datasets_dir} does not exist")):
        client.plan("sweep", {"datasets": None})
    monkeypatch.setenv("HW3_DATASETS", str(real))
    assert client.plan("confusion", {"datasets": None}).params["datasets"] == str(real)
    assert client.plan("sweep", {}).params["datasets"] == str(real)


def test_with_an_external_broker_only_a_folder_seen_here_is_checked(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # never contacted by plan
    plan = client.plan("sweep", {"datasets": None})  # the default is the workers' HW3_DATASETS: not recorded
    assert "datasets" not in plan.params
    (tmp_path / "client-side").mkdir()  # an empty folder this machine names as its HW3_DATASETS: checked
    monkeypatch.setenv("HW3_DATASETS", str(tmp_path / "client-side"))
    with pytest.raises(DatasetError, match="are missing from"):
        client.plan("sweep", {"datasets": None})
    monkeypatch.delenv("HW3_DATASETS")  # the default, $HW3_DATA/datasets (e.g. data/datasets beside a compose
    (tmp_path / "data" / "datasets").mkdir(parents=True)  # stack), is not the workers' folder: not checked
    assert "datasets" not in client.plan("sweep", {"datasets": None}).params
    elsewhere = str(tmp_path / "only-on-the-workers")
    assert client.plan("sweep", {"datasets": elsewhere}).params["datasets"] == elsewhere
    (tmp_path / "here").mkdir()
    with pytest.raises(DatasetError, match="are missing from"):
        client.plan("sweep", {"datasets": str(tmp_path / "here")})


# ----------------------------------------------------------------------------- datasets check


def test_inspect_lists_the_real_folder_as_valid(real):
    statuses = ds.inspect_folder(real)
    assert [s.file for s in statuses] == [*MNIST_NAMES, *ds.FASHION_INPUTS, "binary_random_20fa.hdf5"]
    assert all(s.ok for s in statuses), statuses
    assert statuses[0].shapes == {"xdata": (60000, 784), "ydata": (60000, 10)}
    assert statuses[2].shapes == {"shape": (60000, 28, 28)}


def test_inspect_tells_each_problem_against_its_file(tmp_path, real):
    folder = link_real(tmp_path / "mixed", real, skip=(ds.MNIST_TEST_FILE, f"{ds.FASHION_DIR}/{FASHION_NAMES[1]}",
                                                         "binary_random_20fa.hdf5"))
    (folder / ds.FASHION_DIR / FASHION_NAMES[1]).write_bytes(idx_gz(np.arange(5)))  # 5 labels for 60,000 images
    by_file = {s.file: s for s in ds.inspect_folder(folder)}
    assert by_file[ds.MNIST_TRAIN_FILE].ok
    assert (by_file[ds.MNIST_TEST_FILE].status, by_file[ds.MNIST_TEST_FILE].reason) == ("missing", "not found")
    labels = by_file[f"{ds.FASHION_DIR}/{FASHION_NAMES[1]}"]
    assert labels.status == "invalid" and labels.reason.startswith("holds 5 labels but"), labels
    assert by_file[f"{ds.FASHION_DIR}/{FASHION_NAMES[0]}"].ok  # the images of the same split are fine
    assert by_file[ds.HUMAN_MACHINE_PATTERN].status == "missing"


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def test_datasets_check_on_the_real_folder(real, settings):
    out = run("datasets", "check", "--datasets", str(real))
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == f"datasets folder: {real}" and len(lines) == 9
    assert all("  ok  " in line for line in lines[1:8])
    assert "xdata (60000, 784), ydata (60000, 10)" in lines[1]
    assert lines[-1] == "all 7 inputs of the four problems are present and valid"


def test_datasets_check_json_on_an_empty_relative_folder(tmp_path, settings, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    out = run("datasets", "check", "--datasets", "empty", "--json")
    assert out.exit_code == 1
    report = json.loads(out.stdout)
    assert report["folder"] == str(tmp_path / "empty") and report["ok"] is False
    assert [i["status"] for i in report["inputs"]] == ["missing"] * 7
    assert report["inputs"][0] == {"file": ds.MNIST_TRAIN_FILE, "used_by": "Problem 1", "status": "missing",
                                   "reason": "not found", "shapes": None}


def test_datasets_check_names_the_folder_in_its_download_advice(tmp_path, settings):
    (tmp_path / "my data").mkdir()
    out = run("datasets", "check", "--datasets", str(tmp_path / "my data"))
    assert out.exit_code == 1
    assert f"`hw3-submit datasets fetch all --datasets '{tmp_path / 'my data'}'` downloads what is missing" in out.stdout
    default = run("datasets", "check")  # HW3_DATASETS: the fetch command's own default
    assert "`hw3-submit datasets fetch all` downloads" in default.stdout


def test_a_missing_file_error_says_how_to_fetch_into_that_folder(tmp_path, settings):
    (tmp_path / "d").mkdir()
    with pytest.raises(DatasetError, match=re.escape(f"`hw3-submit datasets fetch mnist --datasets {tmp_path / 'd'}`")):
        ds.require_mnist(tmp_path / "d")


def test_datasets_check_defaults_to_hw3_datasets(settings):
    out = run("datasets", "check")
    assert out.exit_code == 1 and out.stdout.startswith(f"datasets folder: {settings.datasets_dir}\n")
    assert "the datasets folder does not exist" in out.stdout


# ----------------------------------------------------------------------------- downloads (fake fetchers)


def fake_keras(monkeypatch, n_train=30, n_test=7):
    """Replace the two tf.keras downloads; returns their arrays and a list of the calls."""
    rng = np.random.default_rng(4)

    def split(n):
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) * 3 % 10).astype(np.uint8)

    arrays = {name: (split(n_train), split(n_test)) for name in ("mnist", "fashion-mnist")}
    calls = []

    def fake(name):
        def load():
            calls.append(name)
            return arrays[name]
        return load

    monkeypatch.setattr("shared.datasets.download._download_mnist", fake("mnist"))
    monkeypatch.setattr("shared.datasets.download._download_fashion_mnist", fake("fashion-mnist"))
    return arrays, calls


def test_fashion_mnist_is_written_as_the_idx_files_the_loader_reads(tmp_path, monkeypatch):
    arrays, calls = fake_keras(monkeypatch)
    written = ds.ensure_fashion_mnist(tmp_path / "new")
    assert sorted(p.name for p in written) == sorted(FASHION_NAMES) and calls == ["fashion-mnist"]
    (x_tr, y_tr), (x_te, y_te) = ds.load_fashion_mnist(tmp_path / "new")
    (ax_tr, ay_tr), (ax_te, ay_te) = arrays["fashion-mnist"]
    np.testing.assert_array_equal(x_tr, ax_tr.reshape(30, 784).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y_te, ay_te)
    raw = gzip.decompress((tmp_path / "new" / ds.FASHION_DIR / FASHION_NAMES[0]).read_bytes())
    assert raw[:16] == (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (30, 28, 28))
    assert ds.ensure_fashion_mnist(tmp_path / "new") == [] and calls == ["fashion-mnist"]  # present: no download


def test_a_fetch_offline_says_what_is_missing_and_where(tmp_path, monkeypatch):
    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("shared.datasets.download._download_fashion_mnist", offline)
    with pytest.raises(DatasetError) as exc:
        ds.ensure_fashion_mnist(tmp_path / "d")
    msg = str(exc.value)
    assert "Fashion-MNIST could not be downloaded" in msg and str(tmp_path / "d") in msg
    assert all(name in msg for name in FASHION_NAMES) and "name resolution" in msg
    assert not (tmp_path / "d").exists()


def test_a_written_file_that_does_not_read_back_as_downloaded_is_an_error(tmp_path, monkeypatch):
    fake_keras(monkeypatch)
    monkeypatch.setattr("shared.datasets.download.load_course_mnist",
                        lambda path: (np.zeros((30, 784), np.float32), np.zeros(30, np.int64)))
    with pytest.raises(DatasetError, match="read back differ from the downloaded ones"):
        ds.ensure_mnist(tmp_path)


def test_datasets_fetch_all_writes_both_and_shows_progress(tmp_path, settings, monkeypatch):
    arrays, calls = fake_keras(monkeypatch)
    monkeypatch.chdir(tmp_path)
    out = run("datasets", "fetch", "--datasets", "fetched")
    assert out.exit_code == 0, out.output
    folder = tmp_path / "fetched"
    assert calls == ["mnist", "fashion-mnist"]
    assert out.stdout.splitlines() == [
        f"mnist: wrote and verified {ds.MNIST_TRAIN_FILE}, {ds.MNIST_TEST_FILE} in {folder}",
        f"fashion-mnist: wrote and verified {', '.join(f'{ds.FASHION_DIR}/{n}' for n in ds.FASHION_FILES.values())} "
        f"in {folder}"]
    assert "downloading MNIST with tf.keras.datasets.mnist.load_data()" in out.stderr
    x, y = ds.mnist_test(folder)
    np.testing.assert_array_equal(y, arrays["mnist"][1][1])
    again = run("datasets", "fetch", "mnist", "--datasets", str(folder))
    assert again.stdout == f"mnist: already in {folder}, nothing downloaded\n" and calls == ["mnist", "fashion-mnist"]


def test_datasets_fetch_offline_is_one_error_line(tmp_path, settings, monkeypatch):
    monkeypatch.setattr("shared.datasets.download._download_mnist", lambda: (_ for _ in ()).throw(OSError("offline")))
    out = run("datasets", "fetch", "mnist", "--datasets", str(tmp_path / "d"))
    assert out.exit_code == 1 and out.stderr.count("error: ") == 1 and "could not be downloaded" in out.stderr


@pytest.fixture
def fetchers(monkeypatch, real):
    """FETCHERS replaced by links to the real files: (name, folder) of every call."""
    calls = []

    def fetcher(name, files):
        def fetch(folder, say):
            calls.append((name, Path(folder)))
            for file in files:
                (folder / file).parent.mkdir(parents=True, exist_ok=True)
                (folder / file).symlink_to(real / file)
            return [folder / f for f in files]
        return fetch

    monkeypatch.setitem(ds.FETCHERS, "mnist", fetcher("mnist", MNIST_NAMES))
    monkeypatch.setitem(ds.FETCHERS, "fashion-mnist", fetcher("fashion-mnist", ds.FASHION_INPUTS))
    return calls


def test_no_download_unless_asked(settings, fetchers):
    out = CliRunner().invoke(cli.main, ["sweep"])
    assert out.exit_code == 2 and "--download" in out.stderr and fetchers == []


@pytest.mark.parametrize("command, fetched", [("sweep", ["mnist"]), ("confusion", ["fashion-mnist"]),
                                              ("regularization", ["fashion-mnist"]),
                                              ("all", ["mnist", "fashion-mnist"])])
def test_download_fetches_what_the_job_reads_then_submits(command, fetched, settings, fetchers, tmp_path):
    folder = tmp_path / "fresh"
    extra = ["--synthetic"] if command == "all" else []
    out = CliRunner().invoke(cli.main, [command, "--download", "--datasets", str(folder), *extra, "--json"])
    assert out.exit_code == 0, out.output
    assert fetchers == [(name, folder) for name in fetched]
    jobs = json.loads(out.stdout)
    assert all(j["params"]["datasets"] == str(folder) for j in (jobs if isinstance(jobs, list) else [jobs]))


def test_human_machine_has_no_download_option(settings):
    out = CliRunner().invoke(cli.main, ["human-machine", "--download"])
    assert out.exit_code == 2 and "No such option" in out.stderr


# ----------------------------------------------------------------------------- the folder a job used


def test_status_shows_the_folder_the_job_read(settings, linked, tmp_path, monkeypatch):
    monkeypatch.chdir(linked.parent)
    job = run("sweep", "--datasets", linked.name, "--epochs", "1").stdout.strip()
    shown = run("status", job)
    assert f"\n  inputs: {linked}\n" in shown.stdout
    assert json.loads(run("status", job, "--json").stdout)["params"]["datasets"] == str(linked)
    monkeypatch.setenv("HW3_DATASETS", str(linked))
    job = run("confusion", "--epochs", "1").stdout.strip()  # the default folder is recorded too
    assert json.loads(run("status", job, "--json").stdout)["params"]["datasets"] == str(linked)
