"""Shared fixtures: real data location, an isolated HW3_DATA, a real redis-server, real Celery workers."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HW3_TEST_DATASETS", REPO.parent / "shared" / "data"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def real_datasets() -> Path:
    """The read-only real datasets (MNIST, Fashion-MNIST, human/machine); skipped where absent."""
    if not (SHARED_DATA / "mnist_traindata.hdf5").is_file():
        pytest.skip(f"real datasets not found in {SHARED_DATA} (set HW3_TEST_DATASETS)")
    return SHARED_DATA


@pytest.fixture
def hw3_env(tmp_path, monkeypatch, real_datasets) -> dict[str, str]:
    """An isolated volume (HW3_DATA in tmp_path) reading the real datasets; embedded broker by default."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("HW3_DATA", str(data))
    monkeypatch.setenv("HW3_DATASETS", str(real_datasets))
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return dict(os.environ)


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server on a free loopback port, for the whole test session."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does this)")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def hw3(*args: str, env: dict, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real `hw3-submit` CLI in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"hw3-submit {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


class WorkerProcess:
    """A real `hw3-submit worker` process group (Celery prefork) for integration tests."""

    def __init__(self, env: dict, concurrency: int = 2, name: str = "test"):
        log = Path(env["HW3_DATA"]) / f"worker-{name}.log"
        self.log_path = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker", "--concurrency", str(concurrency), "--name", name,
             "--loglevel", "INFO"], env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop(self, sig=None) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig or signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker():
    workers: list[WorkerProcess] = []

    def start(env: dict, concurrency: int = 2, name: str = "test") -> WorkerProcess:
        w = WorkerProcess(env, concurrency, name)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
