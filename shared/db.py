"""The database under the store: engines (SQLite in WAL mode with IMMEDIATE write transactions, PostgreSQL through
psycopg 3), retries of transient write failures, sessions, and the schema's Alembic migrations.

Only the store (shared/store.py, with its lease queries in shared/store_leases.py) builds on this module.
"""
from __future__ import annotations

import fcntl
import functools
import re
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import masked_url

JOB_ID_RE = re.compile(r"^[0-9a-f]{12}$")
JOB_ID_PREFIX_RE = re.compile(r"^[0-9a-f]{1,12}$")
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x687733  # PostgreSQL advisory lock id held while migrating ("hw3")


class StoreError(Exception):
    """Base class of the store's user-facing errors."""


class InvalidJobId(StoreError, ValueError):
    pass


class SchemaBehind(StoreError):
    """The database's schema is older than this code's; read-only commands do not migrate it."""


def validate_job_id(job_id: str) -> str:
    """Job ids are 12 lowercase hex digits; anything else is refused before it reaches a query or a path."""
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        raise InvalidJobId(f"invalid job id {job_id!r}: expected 12 lowercase hex digits, e.g. 3f9c0a1b2d4e")
    return job_id


def validate_job_id_prefix(prefix: str) -> str:
    """A job id or a unique beginning of one (as in git and docker): 1 to 12 lowercase hex digits."""
    if not isinstance(prefix, str) or not JOB_ID_PREFIX_RE.fullmatch(prefix):
        raise InvalidJobId(f"invalid job id {prefix!r}: expected 12 lowercase hex digits (or a unique beginning "
                           f"of them), e.g. 3f9c0a1b2d4e or 3f9c")
    return prefix


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat(timespec="seconds")


# PostgreSQL's transient write failures: a deadlock (it aborts one of the transactions) and a serialization failure
RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def _transient(exc: OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message or getattr(exc.orig, "sqlstate", None) in RETRY_SQLSTATES


def _retry_locked(fn):
    """Retry a write a few times if SQLite's busy timeout still expired under heavy contention, or PostgreSQL
    aborted it as a deadlock victim (the transaction was rolled back whole, so running it again is safe)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        delay = 0.05
        for attempt in range(8):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if not _transient(exc) or attempt == 7:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    return wrapper


def _make_engine(url: str, *, immediate: bool) -> Engine:
    if url.startswith("postgresql+psycopg:"):
        # text comes back as str even from a SQL_ASCII database (a cluster created under the C locale, e.g.
        # Debian's default one in a container); psycopg would hand back bytes there
        return create_engine(url, pool_pre_ping=True, connect_args={"client_encoding": "utf8"})
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let the "begin" hook below choose BEGIN's flavour
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` (the forms servers and hosting providers hand out) mean psycopg 3,
    the driver the `postgres` extra installs; left alone, SQLAlchemy would look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url




class Database:
    """Engines, sessions and the schema of one database URL. `lease_seconds`: a running run whose heartbeat is
    older than this is presumed lost (see `requeue_stale`). `migrate`: True applies pending migrations (writers: workers, submitting commands); False leaves the schema
    alone; "check" (read-only commands) creates a brand-new database but raises SchemaBehind, which says to run
    `hw3-submit db upgrade`, when an existing one is behind."""

    def __init__(self, url: str, *, migrate: bool | str = True, lease_seconds: float = 120.0):
        url = normalise_url(url)
        self.url, self.lease_seconds = url, lease_seconds
        self.created = False  # True once this object gave a new, empty database its schema
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _make_engine(url, immediate=True)
        self._reader = _make_engine(url, immediate=False) if url.startswith("sqlite") else self._writer
        self._write_session = sessionmaker(self._writer, expire_on_commit=False)
        self._read_session = sessionmaker(self._reader, expire_on_commit=False)
        if migrate == "check":
            self.check_schema()
        elif migrate:
            self.upgrade()

    # -- schema -------------------------------------------------------------------------------------------
    def upgrade(self) -> None:
        """Apply Alembic migrations up to head, serialised across processes: by a file lock for SQLite, by a
        transaction-scoped advisory lock for PostgreSQL (whoever waited then finds the schema at head)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._migration_lock(), self._writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            cfg.attributes["connection"] = conn
            from sqlalchemy import inspect

            self.created = not inspect(conn).has_table("alembic_version")
            command.upgrade(cfg, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if not self.url.startswith("sqlite:///"):
            yield
            return
        lock_path = Path(self.url.removeprefix("sqlite:///") + ".migrate.lock")
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def schema_revision(self) -> str | None:
        """The database's revision; None for a database without the schema yet."""
        from sqlalchemy import inspect

        with self._reader.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    @staticmethod
    def head_revision() -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

    def check_schema(self) -> None:
        """For readers: a new, empty database gets the schema; one at an older revision is left alone and
        raises SchemaBehind (migrating is an explicit step: `hw3-submit db upgrade`)."""
        revision, head = self.schema_revision(), self.head_revision()
        if revision is None:
            self.upgrade()
        elif revision != head:
            raise SchemaBehind(f"the database {masked_url(self.url)} is at schema revision {revision}, this "
                               f"version of hw3 needs {head}: run `hw3-submit db upgrade`")

    def dispose(self) -> None:
        self._writer.dispose()
        self._reader.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_session.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._read_session() as session:
            yield session
