"""Two server processes on one GEMS_HOME (Claude Desktop and Claude Code with default settings)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.memory.store import MemoryStore
from tests.fakes import FakeGenerator, ScriptedJudge

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_processes_refining_one_trajectory_lose_no_round(tmp_path):
    loop = AgentLoop(load_settings(home=tmp_path), generator=FakeGenerator(), judge=ScriptedJudge([[False]]))
    first = await loop.generate("start", requirements=["Is it done?"])
    trajectory_id = first.trajectory.id
    # a budget past what the two writers need, set on the stored trajectory itself
    loop.store.update_trajectory(trajectory_id, lambda t: t.model_copy(update={"max_rounds": 500}))

    writers = [
        await anyio.open_process([sys.executable, "-m", "tests._refiner", str(tmp_path), trajectory_id, "100", tag],
                                 cwd=ROOT, stdin=None, stdout=None, stderr=None)
        for tag in ("a", "b")
    ]
    with anyio.fail_after(600):
        assert [await w.wait() for w in writers] == [0, 0]

    trajectory = MemoryStore(tmp_path).get_trajectory(trajectory_id)
    assert [r.index for r in trajectory.rounds] == list(range(1, 202))
    prompts = [r.prompt for r in trajectory.rounds[1:]]
    for tag in ("a", "b"):
        assert sorted(p for p in prompts if p.startswith(tag)) == sorted(f"{tag} {i}" for i in range(100))
    # experiences are the writers' own: none was overwritten by the other process's
    given = {f"{tag} try {i}" for tag in ("a", "b") for i in range(100)}
    kept = [r.experience for r in trajectory.rounds if r.experience]
    assert kept and set(kept) <= given and len(kept) == len(set(kept))
