"""The `hw3-submit` command group and what every command shares: the one-line `error:` exit, JSON output, JOB
arguments checked as they are parsed and resolved once the store is open. api/cli.py adds the job commands,
api/reading.py the reading ones."""
from __future__ import annotations

import json
import sys

import click

from api import client
from shared.entities import JobStatus
from shared.store import StoreError

FAILED_EXIT = 1
MALFORMED_EXIT = 2  # malformed options or input (Click's usage errors exit 2 too)


def _fail(message: str, code: int = FAILED_EXIT):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


class _Main(click.Group):
    """The command group; a broker that cannot be reached, or a store that refuses (an old schema), is reported
    as one `error:` line (exit 1)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (client.BrokerUnavailable, StoreError) as exc:  # e.g. SchemaBehind as a reading command opens it
            _fail(str(exc))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Submit EE599 HW3 training jobs to Celery workers and read their results back."""


def _job_id(ctx, param, value: str | None) -> str | None:
    """JOB arguments are checked as they are parsed, before any file or database is opened: a job id, or a
    unique beginning of one (resolved by `_resolve` once the store is open)."""
    from shared.store import InvalidJobId, validate_job_id_prefix

    try:
        return None if value is None else validate_job_id_prefix(value)
    except InvalidJobId as exc:
        _fail(str(exc), MALFORMED_EXIT)


def _resolve(store, prefix: str) -> str:
    """The full id of the job `prefix` names (exit 1 when none or several jobs match)."""
    try:
        return store.resolve_job_id(prefix)
    except StoreError as exc:
        _fail(str(exc))


def _status_or_fail(store, job_id: str) -> JobStatus:
    """The status of the job `job_id` names (a full id or a unique beginning of one)."""
    try:
        return store.job_status(store.resolve_job_id(job_id))
    except StoreError as exc:
        _fail(str(exc))


def _job_id_list(ctx, param, values: tuple[str, ...]) -> list[str]:
    return [_job_id(ctx, param, v) for v in values]

