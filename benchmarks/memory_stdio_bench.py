"""Memory over stdio: a home of 10,000 imported rounds against a fresh one, as a client sees it.

For each home, a new `gems-mcp serve` per repeat: the first recall_memory(query=...) after start,
then a generate (embedded model) and the close_trajectory of that trajectory, timed at the client.
Prints the medians and large / small; the large home is filled through `gems-mcp memory import`.

Run from the repository root:  python benchmarks/memory_stdio_bench.py [--rounds 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.memory_bench import ROUNDS_PER_TRAJECTORY, _intent
from gems_mcp.memory.lessons import extract_lessons
from gems_mcp.memory.store import MemoryStore
from tests.memory.factories import make_trajectory

QUERY = "three red circles left of a blue square"
_TRAJECTORY_ID = re.compile(r"trajectory (\S+) ·")


def write_export(path: Path, rounds: int) -> None:
    """An export file of ``rounds`` rounds, as `gems-mcp memory export` writes one."""
    import random

    rng = random.Random(11)
    template = make_trajectory(ROUNDS_PER_TRAJECTORY)
    template.status = "done"
    trajectories, lessons = [], []
    for i in range(max(rounds // ROUNDS_PER_TRAJECTORY, 1)):
        traj = template.model_copy(update={"id": f"t-{i:08x}", "intent": _intent(rng),
                                           "created_at": template.created_at + i})
        trajectories.append(traj.model_dump(mode="json"))
        lessons += [lesson.model_dump(mode="json") for lesson in extract_lessons(traj)]
    path.write_text(json.dumps({"schema_version": 2, "trajectories": trajectories, "lessons": lessons}, indent=2))


async def _call(client: Client, tool: str, args: dict) -> object:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result
    return result


async def one_session(home: Path) -> tuple[float, float]:
    """(first recall with a query after start, close_trajectory) in seconds, on a new server.

    The closed trajectory has a question that failed in round 1 and passed in round 2 (the agent's
    verdicts), so closing it keeps a lesson: the close writes the trajectory, the index and the lessons.
    """
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_JUDGE": "none", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("GEMS_MODEL", None)
    params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)
    async with Client(params) as client:
        await client.list_tools()
        t0 = time.perf_counter()
        await _call(client, "recall_memory", {"query": QUERY})
        first_recall = time.perf_counter() - t0
        made = await _call(client, "generate", {"prompt": "two red circles", "steps": 4,
                                                "requirements": ["Are there two circles?", "Are they red?"]})
        match = _TRAJECTORY_ID.search(made.content[0].text)  # type: ignore[attr-defined]
        assert match is not None
        tid = match.group(1)
        asked = await _call(client, "critique", {"trajectory_id": tid})  # no judge: the questions come back
        ids = sorted(set(re.findall(r"\bq\d+\b", asked.content[0].text)))  # type: ignore[attr-defined]
        await _call(client, "critique", {"trajectory_id": tid, "verdicts": [{"id": q, "passed": False} for q in ids]})
        await _call(client, "refine", {"trajectory_id": tid, "prompt": "two red circles and a blue square",
                                       "experience": "the count was wrong; state it first"})
        await _call(client, "critique", {"trajectory_id": tid,
                                         "verdicts": [{"id": q, "passed": q == "q1"} for q in ids]})
        t0 = time.perf_counter()
        await _call(client, "close_trajectory", {"trajectory_id": tid})
        close = time.perf_counter() - t0
    return first_recall, close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000, help="Rounds in the large home (default 10000).")
    parser.add_argument("--repeats", type=int, default=5, help="Server starts per home (default 5).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        large, small, export = Path(tmp) / "large", Path(tmp) / "small", Path(tmp) / "export.json"
        write_export(export, args.rounds)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gems_mcp", "memory", "import", str(export)], check=True,
                       env={**os.environ, "GEMS_HOME": str(large)}, cwd=ROOT)
        print(f"import of {args.rounds} rounds ({export.stat().st_size / 1e6:.1f} MB): "
              f"{time.perf_counter() - t0:.1f} s (a process of its own, start included)")
        times: dict[str, list[tuple[float, float]]] = {"large": [], "small": []}
        for _ in range(args.repeats):  # interleaved, so a busy spell of the machine hits both
            for name, home in (("large", large), ("small", small)):
                times[name].append(anyio.run(one_session, home))
        kept = len(MemoryStore(small).lessons())
        assert kept == args.repeats, f"each close should have kept one lesson, the fresh home has {kept}"
        print(f"{'median ms over ' + str(args.repeats) + ' server starts':<40} {'large':>8} {'fresh':>8} {'large/fresh':>12}")
        for i, what in enumerate(("first recall_memory(query) after start", "close_trajectory")):
            big = statistics.median(t[i] for t in times["large"]) * 1000
            fresh = statistics.median(t[i] for t in times["small"]) * 1000
            print(f"{what:<40} {big:>8.1f} {fresh:>8.1f} {big / fresh:>12.2f}")


if __name__ == "__main__":
    main()
