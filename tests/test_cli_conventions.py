"""The command line reads well: help on every argument, one exit-code convention, errors in one line."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest
from mcp import Client

from gems_mcp.bench.agent import ReferenceAgent
from gems_mcp.cli import _parser, main
from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server
from gems_mcp.types import Requirement
from tests.fakes import FakeGenerator, ScriptedJudge


class QuestionsGenerator(FakeGenerator):
    """A fake model that, like the embedded one, writes the checklist itself."""

    def checklist(self, prompt: str) -> list[Requirement]:
        return [Requirement(id="q1", question="Is there a red circle?", kind="object", source="prompt"),
                Requirement(id="q2", question="Is the sky blue?", kind="color", source="prompt")]


def _parsers(parser: argparse.ArgumentParser, path: str = "gems-mcp"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_of_every_subcommand_has_help_text():
    missing = [
        f"{path}: {action.dest}"
        for path, parser in _parsers(_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction) and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", ""], "prompt is empty"),
        (["run", "a red circle", "--n", "0"], "--n must be 1..8"),
        (["skills", "show", "no-such-skill"], "`gems-mcp skills list`"),
        (["memory", "show", "t-0000000000"], "`gems-mcp memory list`"),
        (["gallery", "--port", "70000"], "--port must be 0..65535"),
        (["gallery", "--host", "0.0.0.0"], "--host must be a loopback address"),
    ],
)
def test_bad_usage_exits_2_with_one_line_that_speaks_cli(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "call " not in err[0]  # no MCP advice ("call generate")


def test_argparse_errors_exit_2_too():
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    assert exit_.value.code == 2


@pytest.mark.anyio
async def test_each_round_names_its_failed_questions_in_words():
    settings = load_settings()
    loop = AgentLoop(settings, generator=QuestionsGenerator(), judge=ScriptedJudge([[True, False]] * 2 + [[True, True]]))
    log = io.StringIO()
    async with Client(create_server(settings, loop)) as client:
        outcome = await ReferenceAgent(client, "loop", budget=3, log=log).solve("a red circle", seed=1)
    assert outcome.rounds == 2
    assert log.getvalue().splitlines() == [
        "round 1: 1 of 2 questions pass",
        "  ✗ Is the sky blue?",
        "round 2: 2 of 2 questions pass",
    ]


@pytest.mark.slow
def test_a_refused_run_is_one_line_without_library_logs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gems_mcp", "run", "a cat on a sofa", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 2  # a prompt the model cannot draw is a request that cannot work
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr  # what it runs, then the error
    assert lines[1].startswith("gems-mcp run: prompt: The embedded model cannot draw 'a cat on a sofa'")
    assert "INFO" not in done.stderr and "Error executing tool" not in done.stderr
