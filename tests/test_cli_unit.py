"""Unit tests of `hw3-submit` in process (click's CliRunner): the JSON view, the commands derived from the
kind registry, refusals before anything is created, and read-only commands against an old schema.
No broker, no worker processes: every command here ends before a job would be dispatched."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from api.cli import _kind_command, _view, main
from shared.entities import JobStatus
from shared.store import MIGRATIONS_DIR, Store
from worker import kinds
from worker.kinds.sweep import KIND as SWEEP

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
JOB_ID = "0123456789ab"
HOMEWORK = ["sweep", "confusion", "regularization", "human-machine"]
UPGRADE_HINT = "run `hw3-submit db upgrade`"


def one_line(text: str) -> str:
    """Help text with click's line wrapping undone."""
    return " ".join(text.split())


# ----------------------------------------------------------------------------- the JSON view
# (the progress display, `status` and the end of `--wait` are tested in tests/test_display.py)


def job(runs: list, *, state: str = "running", kind: str = "sweep", result: dict | None = None) -> JobStatus:
    return JobStatus(job_id=JOB_ID, kind=kind, state=state, error=None, params={}, result=result,
                     cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                     best_val_accuracy=None, eta_seconds=None, runs=runs)


def test_the_view_shows_the_public_part_of_the_result():
    view = _view(job([], state="succeeded", result={"test_accuracy": 0.98, "internal": 1, "failed_runs": {}}))
    assert view["result"] == {"test_accuracy": 0.98, "failed_runs": {}}
    assert view["job_id"] == JOB_ID and view["runs"] == []


def test_the_view_of_a_kind_not_loaded_shows_the_result_as_stored():
    assert _view(job([], kind="unloaded", result={"x": 1}))["result"] == {"x": 1}


# ----------------------------------------------------------------------------- commands from the registry


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """An empty HW3_DATA folder; no broker, no DATABASE_URL, no extra kinds."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("HW3_DATA", str(folder))
    monkeypatch.setenv("HW3_DATASETS", str(tmp_path / "datasets"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "HW3_KINDS"):
        monkeypatch.delenv(name, raising=False)
    return folder


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help_lists_a_command_per_kind_and_all():
    result = invoke("--help")
    assert result.exit_code == 0
    commands = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert {*HOMEWORK, "all"} <= commands
    for kind in kinds.all_kinds().values():  # a kind's first command word (e.g. `grade` for grading)
        assert (kind.command or (kind.name,))[0] in commands


def test_the_sweep_help_shows_every_option_with_its_default():
    result = invoke("sweep", "--help")
    assert result.exit_code == 0
    text = one_line(result.output)
    for opt in SWEEP.options:
        flag = "--" + opt.name.replace("_", "-")
        assert flag in text, flag
        assert f"{one_line(opt.help)} [default: {opt.default}]" in text, opt.name
    for flag in ("--datasets", "--wait", "--workers", "--json"):
        assert flag in text


@pytest.mark.parametrize("name", HOMEWORK)
def test_each_kind_command_offers_its_options(name):
    kind = kinds.get(name)
    text = one_line(invoke(name, "--help").output)
    assert one_line(kind.help) in text
    for opt in kind.options:
        assert "--" + opt.name.replace("_", "-") in text
        if opt.default is not None:
            assert f"[default: {opt.default}]" in text


def test_a_kind_registered_later_gets_a_command_from_its_options(monkeypatch):
    from tests.toykind import KIND as TOY

    monkeypatch.setitem(kinds._registry, "toy", TOY)
    cmd = _kind_command(TOY)
    text = one_line(CliRunner().invoke(cmd, ["--help"]).output)
    assert "one made-up learning rate per run [default: 0.1,0.2]" in text and "--fail" in text
    refused = CliRunner().invoke(cmd, ["--epochs", "99"])
    assert refused.exit_code == 2 and refused.stderr == "error: epochs must be in 1..20, got 99\n"


def jobs_in(data: Path) -> list:
    """The jobs in the folder's default database; none when the command never created it."""
    db = data / "hw3.sqlite"
    if not db.exists():
        return []
    store = Store(f"sqlite:///{db}", migrate=False)
    try:
        return store.list_jobs(100) if store.schema_revision() else []
    finally:
        store.dispose()


@pytest.mark.parametrize("args, message", [
    (["sweep", "--activations", "tanh,tanh"], "must not repeat"),
    (["sweep", "--activations", "sigmoid"], "unknown activation 'sigmoid'"),
    (["sweep", "--train-size", "0"], "train size 0 is outside 1..50000"),
    (["sweep", "--train-size", "50001"], "train size 50001 is outside 1..50000"),
    (["sweep", "--batch-size", "300"], "batch size 300 does not divide the 50,000 training images"),
    (["sweep", "--datasets", "relative/datasets"], "/relative/datasets does not exist"),  # made absolute, checked
    (["confusion", "--epochs", "0"], "epochs must be an integer in 1..10000, got 0"),
    (["regularization", "--epochs", "10001"], "got 10001"),
    (["human-machine", "--data", "seqs.hdf5", "--synthetic"], "--data and --synthetic exclude each other"),
    (["all", "--datasets", "relative"], "/relative does not exist"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_invalid_values_exit_2_before_anything_is_created(data, args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stdout == ""
    assert jobs_in(data) == []
    assert not (data / "broker.sqlite").exists()


@pytest.mark.parametrize("args, option", [(["sweep", "--lrs", "0.1,abc"], "--lrs"),
                                          (["sweep", "--epochs", "ten"], "--epochs"),
                                          (["sweep", "--hidden", ","], "--hidden")])
def test_malformed_values_are_usage_errors(data, args, option):
    result = invoke(*args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.stderr
    assert jobs_in(data) == []


# ----------------------------------------------------------------------------- read-only commands and the schema


def revision(url: str) -> str | None:
    store = Store(url, migrate=False)
    try:
        return store.schema_revision()
    finally:
        store.dispose()


@pytest.fixture
def old_db(data, tmp_path, monkeypatch) -> str:
    """DATABASE_URL: a SQLite database at schema revision 0001 holding one queued job."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    old = Store(url, migrate=False)
    with old._writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with old._writer.begin() as conn:
        conn.exec_driver_sql("INSERT INTO jobs (id, kind, params, state, cancel_requested, finalize_claimed, "
                             f"created_at) VALUES ('{JOB_ID}', 'sweep', '{{}}', 'queued', false, false, "
                             "'2026-01-01 00:00:00')")
    old.dispose()
    assert revision(url) == "0001" != Store.head_revision()
    monkeypatch.setenv("DATABASE_URL", url)
    return url


READ_ONLY = [["status"], ["status", JOB_ID], ["list"], ["list", "--json"], ["metrics", JOB_ID], ["report", JOB_ID]]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_leave_an_old_schema_alone(old_db, args):
    result = invoke(*args)
    assert result.exit_code == 1
    assert UPGRADE_HINT in result.output + str(result.exception)
    assert revision(old_db) == "0001"


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_report_an_old_schema_as_one_error_line(old_db, args):
    result = invoke(*args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # ended through sys.exit, not an uncaught exception
    assert result.stderr.startswith("error: ") and UPGRADE_HINT in result.stderr
    assert "Traceback" not in result.output


def test_db_upgrade_migrates_an_old_database_keeping_its_jobs(old_db):
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    head = Store.head_revision()
    assert result.stdout == f"database at revision {head}\n"
    assert revision(old_db) == head
    listed = invoke("list", "--json")
    assert listed.exit_code == 0 and [j["job_id"] for j in json.loads(listed.stdout)] == [JOB_ID]


def test_list_creates_a_brand_new_database(data, tmp_path, monkeypatch):
    path = tmp_path / "new" / "sub" / "hw3.sqlite"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert path.is_file() and revision(url) == Store.head_revision()
    table = invoke("list")
    assert table.exit_code == 0 and table.stdout.splitlines() == [table.stdout.splitlines()[0]]
    assert table.stdout.split() == ["job", "kind", "state", "epochs", "created"]


def test_list_creates_the_default_database_under_hw3_data(data):
    result = invoke("list", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert (data / "hw3.sqlite").is_file()


def test_status_of_a_brand_new_database_shows_no_jobs(data):
    result = invoke("status", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


# ----------------------------------------------------------------------------- imports


def test_the_cli_and_the_kinds_import_neither_tensorflow_nor_matplotlib():
    code = ("import sys, api.cli\n"
            "from worker import kinds\n"
            "for k in kinds.all_kinds().values():\n"
            "    if not any(o.argument for o in k.options): k.plan({})  # kinds without required arguments\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'matplotlib'})\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
