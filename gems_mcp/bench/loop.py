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
from PIL import Image, ImageDraw, ImageFont

from gems_mcp.bench.agent import CONDITIONS, Outcome, ReferenceAgent, outcome_dict
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
        raise ValueError(f"split must be dev or test, not {split!r}")
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


def server_env(home: Path, budget: int) -> dict[str, str]:
    """The stdio server's environment: the same settings the in-process server gets."""
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_MAX_ROUNDS": str(budget)}
    env["GEMS_MAX_CANDIDATES"] = str(max(8, budget))  # best-of-B asks for B candidates in one call
    env.pop("GEMS_MODEL", None)
    return env


@asynccontextmanager
async def connect(home: Path, budget: int, transport: str = "memory") -> AsyncIterator[Client]:
    """A client on a fresh server whose round budget is the image budget."""
    if transport == "stdio":
        env = server_env(home, budget)
        params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)
        async with Client(params) as client:
            yield client
        return
    from gems_mcp.config import load_settings
    from gems_mcp.server import create_server

    settings = load_settings(home=home, max_rounds=budget, model=None, max_candidates=max(8, budget))
    async with Client(create_server(settings)) as client:
        yield client


async def run_condition(
    condition: str, prompts: list[tuple[str, str]], budget: int, home: Path, transport: str, log: IO[str] | None
) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    async with connect(home, budget, transport) as client:
        if condition == "gems+lessons":
            warm = ReferenceAgent(client, "gems", budget)
            for i, (_, prompt) in enumerate(split_prompts("dev", WARMUP_PROMPTS)):
                await warm.solve(prompt, seed=10_000 + i)
        agent = ReferenceAgent(client, condition, budget)  # type: ignore[arg-type]
        outcomes = []
        for i, (category, prompt) in enumerate(prompts):
            outcomes.append(await agent.solve(prompt, category, seed=1000 * i))
            if log is not None and (i + 1) % 20 == 0:
                print(f"  {condition}: {i + 1}/{len(prompts)} prompts", file=log)
    return outcomes, time.perf_counter() - started


async def run_benchmark(
    split: str,
    limit: int | None,
    prompts_file: Path | None,
    budget: int,
    conditions: list[str],
    out: Path,
    stream: IO[str],
    transport: str = "memory",
) -> dict[str, Any]:
    """Run every condition, print the table, write results.json and curve.png under `out`."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}")
    prompts = file_prompts(prompts_file, limit) if prompts_file else split_prompts(split, limit)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"split": split, "budget": budget, "prompts": len(prompts), "conditions": {}}
    for condition in conditions:
        with tempfile.TemporaryDirectory(prefix="gems-bench-") as home:
            outcomes, seconds = await run_condition(condition, prompts, budget, Path(home), transport, sys.stderr)
        results["conditions"][condition] = {
            "seconds": round(seconds, 1),
            "outcomes": [outcome_dict(o) for o in outcomes],
            "summary": summarize(outcomes),
        }
        print(f"{condition}: done in {seconds:.0f} s", file=sys.stderr)
    print_table(results, stream)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    draw_curve(results, out / "curve.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'curve.png'}", file=stream)
    return results


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_category[o.category].append(o)
    by_category["overall"] = list(outcomes)
    summary = {}
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


def draw_curve(results: dict[str, Any], path: Path) -> None:
    """Question pass fraction per round per condition (like GEMS' Fig. 5), drawn with PIL."""
    width, height, margin = 640, 400, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]
    budget = results["budget"]
    curves = {c: d["summary"]["overall"]["curve"] for c, d in results["conditions"].items()}
    values = [v for curve in curves.values() for v in curve] or [0.0, 1.0]
    low, high = max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = margin + (width - 2 * margin) * (i / max(1, budget - 1))
        y = height - margin - (height - 2 * margin) * ((v - low) / max(1e-6, high - low))
        return x, y

    draw.line([(margin, margin), (margin, height - margin), (width - margin, height - margin)], fill="black")
    for i in range(budget):
        x, _ = xy(i, low)
        draw.text((x - 3, height - margin + 6), str(i + 1), fill="black", font=font)
    for v in np.linspace(low, high, 5):
        _, y = xy(0, v)
        draw.text((8, y - 5), f"{v:.2f}", fill="black", font=font)
    draw.text((width // 2 - 30, height - 20), "round", fill="black", font=font)
    draw.text((margin, 12), "question pass fraction (best so far)", fill="black", font=font)
    for k, (condition, curve) in enumerate(curves.items()):
        color = colors[k % len(colors)]
        points = [xy(i, v) for i, v in enumerate(curve)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        draw.text((width - margin - 110, margin + 14 * k), condition, fill=color, font=font)
    image.save(path)
