"""Security through the real CLI, a real Celery worker and real redis-servers: only JSON is accepted from the
broker, no path leaves its folder, job ids are checked before anything is opened, a Redis password works (and a
wrong one fails at once, masked), and the image and compose file keep the service private."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, _free_port, hw3
from shared.store import Store

pytestmark = pytest.mark.integration  # real redis-servers and a real Celery worker

QUICK = ["--epochs", "1", "--train-size", "1000", "--activations", "relu", "--lrs", "0.04", "--batch-size", "100"]
PNG = b"\x89PNG\r\n\x1a\n"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _wait_log(worker, pattern: str, timeout: float = 180) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = worker.log()
        if re.search(pattern, log):
            return log
        if worker.proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"no {pattern!r} in the worker's log within {timeout} s:\n{worker.log()[-4000:]}")


def _quick_sweep_succeeds(env: dict, worker) -> dict:
    proc = hw3("sweep", *QUICK, "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr + worker.log()[-4000:]
    status = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert status["state"] == "succeeded" and status["result"]["test_accuracy"] > 0.5, status
    return status


# --------------------------------------------------------------------------------------------
# 1. JSON only on the broker
# --------------------------------------------------------------------------------------------


class _TouchOnUnpickle:
    """Unpickling this creates a file: what a pickled message could make a worker do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_message_is_refused_and_the_worker_goes_on(hw3_env, redis_server, start_worker, tmp_path):
    from celery import Celery

    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    worker = start_worker(env, concurrency=1, name="json-only")
    marker = tmp_path / "unpickled-by-the-worker"

    sender = Celery("untrusted", broker=redis_server)  # a client that is willing to send pickle
    sender.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    try:
        sender.send_task("hw3.train_run", args=[_TouchOnUnpickle(marker)], queue="hw3", serializer="pickle")
    finally:
        sender.close()

    log = _wait_log(worker, r"Refusing to deserialize untrusted content of type pickle|ContentDisallowed")
    assert "application/x-python-serialize" in log
    assert not marker.exists()
    assert worker.proc.poll() is None, worker.log()[-4000:]

    _quick_sweep_succeeds(env, worker)  # the same worker still runs ordinary jobs
    assert worker.proc.poll() is None
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# 2. Paths stay inside their folders
# --------------------------------------------------------------------------------------------


@pytest.fixture
def volume(tmp_path) -> dict[str, str]:
    """An isolated volume for commands that read the store and the artifacts (no datasets, no broker)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL", "HW3_DATASETS")}
    env["HW3_DATA"] = str(tmp_path / "data")
    return env


def _store(env: dict) -> Store:
    return Store(f"sqlite:///{Path(env['HW3_DATA']) / 'hw3.sqlite'}")


def _sweep_with_rows(store: Store) -> str:
    """A sweep job with one run and two epoch rows, enough for `plot` (no training needed)."""
    job = store.create_job("sweep", {"decay_epochs": [1]},
                           [{"name": "relu-lr0.04", "config": {"activation": "relu", "lr": 0.04}, "epochs_total": 2}])
    run_id = store.runs(job)[0].run_id
    for epoch, acc in ((1, 0.91), (2, 0.95)):
        store.record_epoch(run_id, {"epoch": epoch, "lr": 0.04, "train_loss": 0.3, "train_accuracy": acc,
                                    "val_loss": 0.3, "val_accuracy": acc, "seconds": 1.0})
    return job


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()) if folder.exists() else []


def _refused(proc: subprocess.CompletedProcess, *words: str, code: int = 1) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def _job_with_files(volume: dict) -> tuple[Store, str, Path]:
    """A sweep job whose folder holds report.md and runs/final/weights.npz (not yet recorded as artifacts)."""
    store = _store(volume)
    job = _sweep_with_rows(store)
    folder = Path(volume["HW3_DATA"]) / "artifacts" / job
    (folder / "runs" / "final").mkdir(parents=True)
    (folder / "report.md").write_text("# report\n")
    (folder / "runs" / "final" / "weights.npz").write_bytes(b"weights")
    return store, job, folder


def test_fetch_copies_recorded_artifacts(volume, tmp_path):
    store, job, folder = _job_with_files(volume)
    for rel in ("report.md", "runs/final/weights.npz"):
        store.record_artifact(job, rel, (folder / rel).stat().st_size, "0" * 64)
    dest = tmp_path / "fetched"
    hw3("fetch", job, "--dest", str(dest), env=volume, check=True)
    assert (dest / "report.md").read_text() == "# report\n"
    assert (dest / "runs" / "final" / "weights.npz").read_bytes() == b"weights"


@pytest.mark.parametrize("case", ["dotdot-row", "absolute-row", "symlinked-artifact", "symlinked-dest-folder"])
def test_fetch_refuses_paths_that_leave_their_folder(volume, tmp_path, case):
    store, job, folder = _job_with_files(volume)
    secret = tmp_path / "secret.txt"  # outside the volume: must never be copied
    secret.write_text("secret\n")
    outside = tmp_path / "outside"  # outside the destination: must stay empty
    outside.mkdir()
    dest = tmp_path / "fetched"
    # rows come back ordered by path: a good one (report.md) precedes the bad one, except for the absolute path
    store.record_artifact(job, "report.md", 9, "0" * 64)
    store.record_artifact(job, "runs/final/weights.npz", 7, "0" * 64)
    if case == "dotdot-row":
        store.record_artifact(job, "runs/../../../../secret.txt", 7, "0" * 64)  # = tmp_path/secret.txt
    elif case == "absolute-row":
        store.record_artifact(job, str(secret), 7, "0" * 64)
    elif case == "symlinked-artifact":
        (folder / "runs" / "secret.txt").symlink_to(secret)
        store.record_artifact(job, "runs/secret.txt", 7, "0" * 64)
    else:
        dest.mkdir()
        (dest / "runs").symlink_to(outside, target_is_directory=True)

    proc = hw3("fetch", job, "--dest", str(dest), env=volume)
    _refused(proc, "refused")
    assert _files_under(outside) == []
    copied = [p for p in _files_under(dest) if not p.is_symlink()]
    assert copied == [], copied  # every path is checked before anything is copied
    assert secret.read_text() == "secret\n"


@pytest.mark.parametrize("case", ["symlinked-subfolder", "symlinked-figure"])
def test_plot_refuses_to_write_through_a_symlink_leading_out(volume, tmp_path, case):
    job = _sweep_with_rows(_store(volume))
    ok = tmp_path / "plots"
    listed = json.loads(hw3("plot", job, "--out", str(ok), "--json", env=volume, check=True).stdout)
    assert sorted(Path(p).relative_to(ok).as_posix() for p in listed) == ["overview.png", "runs/relu-lr0.04/curve.png"]
    assert all(Path(p).read_bytes().startswith(PNG) for p in listed)

    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.png"
    victim.write_bytes(b"untouched")
    out = tmp_path / "out"
    out.mkdir()
    if case == "symlinked-subfolder":
        (out / "runs").symlink_to(outside, target_is_directory=True)
    else:
        (out / "overview.png").symlink_to(victim)
    proc = hw3("plot", job, "--out", str(out), env=volume)
    _refused(proc, "refused", "outside")
    assert _files_under(outside) == [victim] and victim.read_bytes() == b"untouched"


BAD_JOB_IDS = ["../../etc", "abc/../..", "/etc/passwd", "0123456789abc", "0123456789AB"]


@pytest.mark.parametrize("command", ["plot", "report", "fetch", "status", "metrics", "cancel"])
def test_job_ids_are_checked_before_anything_is_opened(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env["HW3_DATA"] = str(tmp_path / "volume")  # does not exist: no command may create it
    dest = tmp_path / "dest"
    for job_id in BAD_JOB_IDS:
        extra = {"plot": ["--out", str(dest)], "fetch": ["--dest", str(dest)]}.get(command, [])
        proc = hw3(command, job_id, *extra, env=env, timeout=120)
        _refused(proc, "invalid job id", repr(job_id), code=2)  # malformed input
    assert sorted(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# 3. A password on Redis
# --------------------------------------------------------------------------------------------


@pytest.fixture
def redis_with_password():
    """A redis-server of its own requiring a password, on a free loopback port; yields (port, password)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does this)")
    port, password = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", password], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                time.sleep(0.05)
                if b"+PONG" in s.recv(64):
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("redis-server with --requirepass did not start")
        time.sleep(0.05)
    yield port, password
    proc.terminate()
    proc.wait(10)


def test_a_password_in_the_broker_url_works(hw3_env, redis_with_password, start_worker):
    port, password = redis_with_password
    env = {**hw3_env, "CELERY_BROKER_URL": f"redis://:{password}@127.0.0.1:{port}/0"}
    worker = start_worker(env, concurrency=1, name="auth")
    proc = hw3("sweep", *QUICK, "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr + worker.log()[-4000:]
    assert json.loads(proc.stdout[proc.stdout.index("{"):])["state"] == "succeeded"
    assert password not in proc.stdout + proc.stderr
    assert password not in worker.log()


def test_a_wrong_password_fails_at_once_with_the_password_masked(hw3_env, redis_with_password):
    port, password = redis_with_password
    wrong = secrets.token_hex(16)
    env = {**hw3_env, "CELERY_BROKER_URL": f"redis://:{wrong}@127.0.0.1:{port}/0"}
    _store(env).dispose()  # an existing store: its creation would be announced on stderr besides the error
    started = time.monotonic()
    proc = hw3("sweep", *QUICK, env=env, timeout=120)
    elapsed = time.monotonic() - started
    _refused(proc, f"redis://:***@127.0.0.1:{port}/0", "authentication failed")
    assert elapsed < 20, f"submitting took {elapsed:.1f} s to give up"
    output = proc.stdout + proc.stderr
    assert wrong not in output and password not in output


# --------------------------------------------------------------------------------------------
# 4. The image and the compose file
# --------------------------------------------------------------------------------------------


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        if not pending and line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def test_the_final_image_stage_runs_as_uid_1000():
    instructions = _dockerfile_instructions((REPO / "Dockerfile").read_text())
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    stage = instructions[last_from:]
    users = [args for word, args in stage if word == "USER"]
    assert users, f"the final stage ({stage[0][1]}) has no USER: it would run as root"
    user = users[-1].split(":")[0]
    if not user.isdigit():  # a name: it must be created with uid 1000 in this stage
        created = [args for word, args in stage if word == "RUN" and "useradd" in args]
        assert any(re.search(rf"--uid\s+1000\b.*\b{re.escape(user)}\b", c) for c in created), (user, created)
        user = "1000"
    assert user == "1000", f"the final stage runs as {users[-1]!r}, expected uid 1000"


def _compose_ports_yaml(text: str) -> tuple[dict[str, list], dict[str, str]]:
    import yaml

    doc = yaml.safe_load(text)
    services = doc.get("services") or {}
    ports = {name: list(svc.get("ports") or []) for name, svc in services.items()}
    modes = {name: str(svc["network_mode"]) for name, svc in services.items() if svc.get("network_mode")}
    return ports, modes


def _compose_ports_text(text: str) -> tuple[dict[str, list], dict[str, str]]:
    """The same without pyyaml, conservatively: every `ports:` block anywhere in the file (anchored blocks such
    as x-hw3 included), attributed to its service (or top-level key); short entries as strings, long ones as
    dicts."""
    ports: dict[str, list] = {}
    modes: dict[str, str] = {}
    section = owner = service_indent = block = block_indent = None
    for raw in text.splitlines():
        line = "" if raw.lstrip().startswith("#") else re.sub(r"\s+#.*$", "", raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if block is not None and indent > block_indent:  # inside a ports list
            if stripped.startswith("- "):
                item = stripped[2:].strip()
                if re.match(r"^[A-Za-z_]+\s*:", item):  # long syntax: the first field of a mapping
                    key, _, value = item.partition(":")
                    block.append({key.strip(): value.strip().strip("\"'")})
                else:
                    block.append(item.strip("\"'"))
            elif block and isinstance(block[-1], dict) and ":" in stripped:
                key, _, value = stripped.partition(":")
                block[-1][key.strip()] = value.strip().strip("\"'")
            continue
        block = None
        key, _, value = (part.strip() for part in stripped.partition(":"))
        if indent == 0:
            section, owner, service_indent = key, key, None
            continue
        if section == "services" and (service_indent is None or indent <= service_indent):
            service_indent, owner = indent, key
            ports.setdefault(owner, [])
            continue
        if key == "ports":
            block, block_indent = ports.setdefault(owner, []), indent
            if value.startswith("["):
                block.extend(v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip())
        elif key == "network_mode":
            modes[owner] = value.strip("\"'")
    return ports, modes


def _host_ip(entry) -> str | None:
    """The host address a compose `ports` entry binds (None: every interface)."""
    if isinstance(entry, dict):
        return entry.get("host_ip") or None
    spec = re.sub(r"\$\{[^}]*\}", "0", str(entry))  # ${REDIS_PORT:-6379} and the like
    if spec.startswith("["):
        return spec[1:spec.index("]")]
    parts = spec.split("/")[0].split(":")
    return parts[0] if len(parts) == 3 else None


def test_compose_publishes_ports_on_the_loopback_only():
    text = (REPO / "docker-compose.yml").read_text()
    try:
        ports, modes = _compose_ports_yaml(text)
    except ImportError:
        ports, modes = _compose_ports_text(text)
    assert {"redis", "worker", "flower"} <= set(ports), ports
    assert ports["flower"], "Flower is expected to be published (on the loopback)"
    for name, entries in ports.items():
        for entry in entries:
            assert _host_ip(entry) in LOOPBACK, f"{name} publishes {entry!r} on every interface"
    assert "host" not in modes.values(), f"host networking would expose every port: {modes}"
    # the text parse and the YAML parse agree where pyyaml is installed
    try:
        assert _compose_ports_yaml(text)[0]["redis"] == _compose_ports_text(text)[0]["redis"]
    except ImportError:
        pass
