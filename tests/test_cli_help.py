"""Every option of every command says what it does and, unless it is a switch, what it defaults to."""
from __future__ import annotations

import click
import pytest

from api.cli import main

pytestmark = pytest.mark.unit


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


COMMANDS = list(_commands(main))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_a_help_line_with_its_default(path, command):
    assert command.help, f"hw3-submit {' '.join(path)} has no help"
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        assert param.help, f"hw3-submit {' '.join(path)} {param.opts[0]} has no help"
        if not param.is_flag:
            said = "default" in param.help.lower() or param.show_default or param.required
            assert said, f"hw3-submit {' '.join(path)} {param.opts[0]}: its help does not state its default"


def test_the_job_commands_say_where_their_results_go():
    for path, command in COMMANDS:
        if any(p.name == "wait" for p in command.params) and path[0] not in ("wait", "resume", "all"):
            assert "Results go to" in command.help, path
