"""`gems-mcp bench loop`: the reference agent under each condition, same prompts, same image budget."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from mcp import Client, StdioServerParameters

from gems_mcp.bench.agent import CONDITIONS, Outcome, ReferenceAgent, outcome_dict
from gems_mcp.bench.curve import draw_curve, progress
from gems_mcp.errors import InvalidRequest
from gems_mcp.shapes import world

DEV_SEED = 0xDE5E7
WARMUP_PROMPTS = 60


def split_prompts(split: str, limit: int | None) -> list[tuple[str, str]]:
    """(category, prompt) pairs: `test` is the fixed held-out set; `dev` is a disjoint stream for tuning."""
    if split == "test":
        prompts = world.held_out_prompts()
    elif split == "dev":
        rng = np.random.default_rng(DEV_SEED)
        prompts = [(c, world.sample_spec(c, rng).caption()) for _ in range(40) for c in world.CATEGORIES]
    else:
        raise InvalidRequest(f"split must be dev or test, not {split!r}")
    return _spread(prompts, limit)


def file_prompts(path: Path, limit: int | None) -> list[tuple[str, str]]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    prompts = [("file", line) for line in lines if line and not line.startswith("#")]
    return prompts[:limit] if limit else prompts


def _spread(prompts: list[tuple[str, str]], limit: int | None) -> list[tuple[str, str]]:
    """The first `limit` prompts, taken round-robin over categories so a small slice covers them all."""
    if not limit or limit >= len(prompts):
        return prompts
    by_category: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item in prompts:
        by_category[item[0]].append(item)
    picked: list[tuple[str, str]] = []
    while len(picked) < limit:
        for items in by_category.values():
            if items and len(picked) < limit:
                picked.append(items.pop(0))
    return picked


def server_env(home: Path, budget: int, backend: str = "local") -> dict[str, str]:
    """The stdio server's environment: the same settings the in-process server gets."""
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_MAX_ROUNDS": str(budget), "GEMS_BACKEND": backend}
    env["GEMS_MAX_CANDIDATES"] = str(max(8, budget))  # best-of-B asks for B candidates in one call
    env.pop("GEMS_MODEL", None)
    return env


@asynccontextmanager
async def connect(home: Path, budget: int, transport: str = "memory", backend: str = "local") -> AsyncIterator[Client]:
    """A client on a fresh server whose round budget is the image budget (its model in process, or on Ray)."""
    if transport == "stdio":
        env = server_env(home, budget, backend)
        params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)
        async with Client(params) as client:
            yield client
        return
    from gems_mcp.config import load_settings
    from gems_mcp.server import create_server

    settings = load_settings(home=home, max_rounds=budget, model=None, max_candidates=max(8, budget), backend=backend)
    async with Client(create_server(settings)) as client:
        yield client


async def run_condition(
    condition: str, prompts: list[tuple[str, str]], budget: int, home: Path, transport: str, log: IO[str] | None,
    backend: str = "local",
) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    async with connect(home, budget, transport, backend) as client:
        if condition == "gems+lessons":
            warm = ReferenceAgent(client, "gems", budget)
            warmup = split_prompts("dev", warmup_size(len(prompts)))
            if log is not None:
                print(f"  gems+lessons: filling the memory first with {len(warmup)} dev prompts", file=log)
            for i, (_, prompt) in enumerate(progress(warmup, "gems+lessons warm-up", log)):
                await warm.solve(prompt, seed=10_000 + i)
        agent = ReferenceAgent(client, condition, budget)  # type: ignore[arg-type]
        outcomes = []
        for i, (category, prompt) in enumerate(progress(prompts, condition, log)):
            outcomes.append(await agent.solve(prompt, category, seed=1000 * i))
    return outcomes, time.perf_counter() - started


def warmup_size(prompts: int) -> int:
    """Dev prompts gems+lessons solves first: WARMUP_PROMPTS, or four per benchmark prompt when fewer."""
    return min(WARMUP_PROMPTS, 4 * prompts)


async def run_benchmark(
    split: str,
    limit: int | None,
    prompts_file: Path | None,
    budget: int,
    conditions: list[str],
    out: Path,
    stream: IO[str],
    transport: str = "memory",
    backend: str = "local",
) -> dict[str, Any]:
    """Run every condition, print the table, write results.json and curve.png under `out`."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise InvalidRequest(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}")
    prompts = file_prompts(prompts_file, limit) if prompts_file else split_prompts(split, limit)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"split": split, "budget": budget, "prompts": len(prompts), "conditions": {}}
    if backend != "local":
        results["backend"] = backend
    for condition in conditions:
        with tempfile.TemporaryDirectory(prefix="gems-bench-") as home:
            outcomes, seconds = await run_condition(condition, prompts, budget, Path(home), transport, sys.stderr, backend)
        results["conditions"][condition] = {
            "seconds": round(seconds, 1),
            "outcomes": [outcome_dict(o) for o in outcomes],
            "summary": summarize(outcomes),
        }
        print(f"{condition}: done in {seconds:.0f} s", file=sys.stderr)
    print_table(results, stream)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    if draw_curve(results, out / "curve.png"):
        print(f"\nwrote {out / 'results.json'} and {out / 'curve.png'}", file=stream)
    else:
        print(f"\nwrote {out / 'results.json'} (pip install 'gems-mcp[bench]' for curve.png)", file=stream)
    return results


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_category[o.category].append(o)
    by_category["overall"] = list(outcomes)
    summary: dict[str, dict[str, Any]] = {}
    for category, items in by_category.items():
        summary[category] = {
            "prompts": len(items),
            "prompt_pass": float(np.mean([o.passed for o in items])),
            "question_pass": float(np.mean([o.question_fraction for o in items])),
            "images": float(np.mean([o.images for o in items])),
        }
    curves = [o.curve for o in outcomes if o.curve]
    summary["overall"]["curve"] = [float(x) for x in np.mean(curves, axis=0)] if curves else []
    return summary


def print_table(results: dict[str, Any], stream: IO[str]) -> None:
    conditions = list(results["conditions"])
    categories = [c for c in results["conditions"][conditions[0]]["summary"] if c != "overall"] + ["overall"]
    print(f"\nprompt pass rate (question pass rate), budget B={results['budget']}, {results['prompts']} prompts", file=stream)
    print(f"{'category':<14}" + "".join(f"{c:>18}" for c in conditions), file=stream)
    for category in categories:
        cells = []
        for c in conditions:
            s = results["conditions"][c]["summary"].get(category)
            cells.append(f"{s['prompt_pass']:>7.1%} ({s['question_pass']:.0%})" if s else "-")
        print(f"{category:<14}" + "".join(f"{x:>18}" for x in cells), file=stream)
    images = "".join(f"{results['conditions'][c]['summary']['overall']['images']:>18.2f}" for c in conditions)
    seconds = "".join(f"{results['conditions'][c]['seconds']:>17.0f}s" for c in conditions)
    print(f"{'mean images':<14}{images}\n{'wall time':<14}{seconds}", file=stream)
    print("question pass fraction by round (best so far):", file=stream)
    for c in conditions:
        curve = results["conditions"][c]["summary"]["overall"]["curve"]
        print(f"  {c:<14}" + " ".join(f"{x:.3f}" for x in curve), file=stream)
