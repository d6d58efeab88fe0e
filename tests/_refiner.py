"""Run as a separate process: refine one trajectory N times through AgentLoop (tests/test_loop_processes.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from tests.fakes import FakeGenerator, ScriptedJudge


def main(home: str, trajectory_id: str, count: int, tag: str) -> None:
    loop = AgentLoop(load_settings(home=Path(home)), generator=FakeGenerator(), judge=ScriptedJudge([[False]]))
    for i in range(count):
        # A script in its own OS process (started by tests/test_loop_processes.py), not a test: no pytest loop here.
        anyio.run(lambda i=i: loop.refine(trajectory_id, f"{tag} {i}", experience=f"{tag} try {i}"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
