"""Six tasks for the agent that follows only what the server says, run over stdio, with a transcript.

Usage: python -m gems_mcp.bench.six_tasks [OUT.md]   (default benchmarks/results/agent-transcript.md)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from gems_mcp.bench.follower import FollowingAgent, Refused

TASKS: list[tuple[str, str, int]] = [
    # (what the task exercises, the user's request word for word, the seed the agent is told to use)
    ("two objects with a relation, in the user's words", "a crimson ball to the left of a blue square, please", 1),
    ("two groups", "two red circles and a blue square", 2),
    ("a relation the model cannot parse but a layout can draw", "three green triangles to the left of a white square", 3),
    ("an inpaint fix: round 1 draws a wrong shape", "a yellow triangle, a blue circle and a white square", 1),
    ("four of one shape", "four purple squares", 5),
    ("an impossible prompt", "a dog on a beach at sunset", 7),
]


def server(home: Path) -> StdioServerParameters:
    env = {**os.environ, "GEMS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("GEMS_MODEL", None)
    return StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)


async def run_tasks(home: Path, tasks: list[tuple[str, str, int]] = TASKS) -> tuple[list[dict[str, Any]], str, list[str]]:
    """Every task through one stdio server: the outcomes, the markdown transcript, the refused calls."""
    outcomes: list[dict[str, Any]] = []
    async with Client(server(home)) as client:
        agent = FollowingAgent(client)
        for what, request, seed in tasks:
            agent.seed = seed
            try:
                outcome = await agent.solve(request)
            except Refused as exc:
                outcome = {"request": request, "outcome": "refused", "why": str(exc), "rounds": 0, "levers": []}
            outcomes.append({"task": what, "seed": seed, **outcome})
        for query in ("four red circles", "three blue squares"):
            await agent.call("recall_memory", {"query": query})
    head = ["# The agent's path: six tasks by an agent that knows only what the server says", "",
            ("Written by `python -m gems_mcp.bench.six_tasks` (gems_mcp/bench/follower.py) against `gems-mcp serve` "
            "over stdio on the embedded model. Every call and every result text, in order."), "", "## Outcomes", ""]
    head += [f"- {o['task']}: {o['outcome']}; {o.get('answer') or o.get('why', '')}; levers: "
             f"{', '.join(o['levers']) or 'none'}" for o in outcomes]
    head.append(f"- refused calls: {len(agent.refusals)}")
    return outcomes, "\n".join(head + ["", *agent.transcript]) + "\n", agent.refusals


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="gems-agent-") as home:
        outcomes, transcript, refusals = await run_tasks(Path(home))
    out.write_text(transcript)
    for o in outcomes:
        print(f"{o['task']}: {o['outcome']} {o.get('answer', '')} rounds={o['rounds']} levers={o['levers']}")
    print(f"refused calls: {len(refusals)}; transcript: {out}")


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/agent-transcript.md"))
