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
SHARED_DATA = Path(os.path.abspath(os.environ.get("HW3_TEST_DATASETS", REPO.parent / "shared" / "data")))


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


@pytest.fixture
def volume(tmp_path, monkeypatch) -> Path:
    """This process's HW3_DATA, an empty folder in tmp_path (embedded broker, SQLite store, no extra kinds)."""
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "HW3_KINDS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


@pytest.fixture
def volume_store(volume):
    """The store of `volume`, as the CLI run in this process opens it."""
    from shared.store import Store
    store = Store(f"sqlite:///{volume / 'hw3.sqlite'}")
    yield store
    store.dispose()


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


def _postgres_bindir() -> Path | None:
    """The directory holding initdb and postgres: Debian's /usr/lib/postgresql/<version>/bin (newest first),
    else `pg_config --bindir`, else wherever `postgres` is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "postgres").is_file():
            return Path(out)
    exe = shutil.which("postgres")
    return Path(exe).parent if exe else None


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (a fresh cluster in a temp dir, trust auth, a free loopback port) for the
    whole session; yields the SQLAlchemy URL of its `postgres` database. PostgreSQL refuses to run as root,
    so under root the cluster belongs to, and the server runs as, the `postgres` system user."""
    import pwd
    import tempfile

    bindir = _postgres_bindir()
    if bindir is None or not (bindir / "initdb").is_file():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)")
    run_as: dict = {}
    base = Path(tempfile.mkdtemp(prefix="hw3-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, but there is no `postgres` system user to run PostgreSQL as "
                        "(apt-get install postgresql creates it)")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    data = base / "data"
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--locale=C", "--no-sync"], capture_output=True, text=True, env=env,
                          cwd=base, **run_as)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    port = _free_port()
    log = open(base / "postgres.log", "ab")
    # a throwaway cluster: durability settings off, enough connections for 8 writers + workers per test
    proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                             "-k", str(base), "-c", "max_connections=200", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base, **run_as)
    import psycopg

    admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    deadline = time.time() + 30
    while True:
        try:
            psycopg.connect(admin, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                proc.wait()
                log.close()
                text = (base / "postgres.log").read_text(errors="replace")
                shutil.rmtree(base, ignore_errors=True)
                pytest.fail(f"postgres did not start on port {port}:\n{text[-3000:]}")
            time.sleep(0.1)
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    import signal

    proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects the sessions still open, then exits
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server; yields its SQLAlchemy URL."""
    import secrets

    import psycopg

    name = f"hw3_{secrets.token_hex(6)}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database of each backend: a SQLite file, a database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hw3.sqlite'}"
    return request.getfixturevalue("pg_url")
