"""The embedded model's benchmark: first-try pass rates on fixed held-out prompts, and speed."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from gems_mcp.generation.base import GenerationRequest
from gems_mcp.shapes import world
from gems_mcp.shapes.generator import WEIGHTS, EmbeddedGenerator
from gems_mcp.shapes.judge import ExactJudge
from gems_mcp.shapes.layout import plan_layout
from gems_mcp.types import ImageParams

PER_CATEGORY = 40
TARGETS = {"single": 0.9, "two_objects": 0.5, "counting": 0.5, "position": 0.3, "overall": 0.5}
LAYOUT_TARGETS = {"position": 0.8, "color_attr": 0.8}
"""First try with plan_layout(prompt) as the layout (the spatial-levers issue)."""


GROUPS_SEED = 0xB0C5
"""RNG stream of the two-groups prompts ('two red circles and a blue square'), which world.held_out_prompts lacks."""

CATEGORIES = (*world.CATEGORIES, "two_groups")


def two_groups_prompts(n: int = PER_CATEGORY) -> list[tuple[str, str]]:
    """Held-out two-groups prompts from their own stream (training draws (seed, step) streams, never this one)."""
    rng = np.random.default_rng(GROUPS_SEED)
    return [("two_groups", world.sample_spec("groups", rng).caption()) for _ in range(n)]


def bench_prompts(limit: int | None = None, categories: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """The held-out prompts, categories interleaved so that any prefix stays balanced."""
    by_category: dict[str, list[str]] = defaultdict(list)
    for category, prompt in world.held_out_prompts(PER_CATEGORY) + two_groups_prompts():
        by_category[category].append(prompt)
    wanted = categories or CATEGORIES
    mixed = [(c, by_category[c][i]) for i in range(PER_CATEGORY) for c in wanted]
    return mixed[:limit] if limit else mixed


def score(
    generator: EmbeddedGenerator,
    prompts: list[tuple[str, str]],
    guidance: float | None = None,
    layout: bool = False,
) -> dict[str, Any]:
    """First-try results: per category prompt and question pass rates, per question kind, overall.

    With layout, each prompt is drawn with plan_layout(prompt, seed=index) as its layout.
    """
    judge = ExactJudge()
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    params = generator.capabilities().resolve(ImageParams(guidance=guidance))
    shown = tqdm(prompts, desc="with layout" if layout else "plain", unit="prompt", leave=False,
                 file=sys.stderr, disable=not sys.stderr.isatty())
    for index, (category, prompt) in enumerate(shown):
        regions = plan_layout(prompt, seed=index) if layout else []
        request = GenerationRequest(prompt, [index], params, layout=regions)
        image = generator.generate(request)[0]
        checklist = generator.checklist(prompt)
        passed = [v.passed for v in judge.verify([image], checklist)[0].verdicts]
        for key in (category, "overall"):
            _add(tallies[key], all(passed), sum(passed), len(passed))
        for req, ok in zip(checklist, passed, strict=True):
            _add(tallies[f"kind:{req.kind}"], ok, ok, 1)
    return {key: _rates(t) for key, t in tallies.items()}


def _add(tally: list[int], prompt_passed: bool, questions_passed: int, questions: int) -> None:
    tally[0] += int(prompt_passed)
    tally[1] += 1
    tally[2] += questions_passed
    tally[3] += questions


def _rates(tally: list[int]) -> dict[str, float | int]:
    return {"prompts": tally[1], "pass_rate": tally[0] / tally[1], "question_rate": tally[2] / tally[3]}


def speed(generator: EmbeddedGenerator, repeats: int = 3) -> dict[str, float]:
    """Seconds per image at default settings for one image and for a batch of eight (after a warm-up)."""
    params = generator.capabilities().resolve(ImageParams())
    result = {}
    for batch in (1, 8):
        request = GenerationRequest("a red circle to the left of a blue square", list(range(batch)), params)
        generator.generate(request)
        start = time.perf_counter()
        for _ in range(repeats):
            generator.generate(request)
        result[f"batch{batch}_s_per_image"] = (time.perf_counter() - start) / repeats / batch
    return result


def run(
    limit: int | None = None,
    out: TextIO = sys.stdout,
    weights: Path = WEIGHTS,
    guidance: float | None = None,
    categories: tuple[str, ...] | None = None,
    layout: bool = True,
    device: str = "cpu",
    measure_speed: bool = True,
    words_only: bool = False,
) -> dict[str, Any]:
    """Benchmark the embedded model on `limit` held-out prompts (all when None) and print a table.

    Two columns: the plain first try (no layout given: the model lays out a prompt of several objects
    itself, or with words_only draws from the caption alone), and (layout=True) the first try given
    plan_layout(prompt).
    """
    generator = EmbeddedGenerator(weights, device=device, own_layout=not words_only)
    prompts = bench_prompts(limit, categories)
    start = time.perf_counter()
    results: dict[str, Any] = {"plain": score(generator, prompts, guidance), "words_only": words_only}
    if layout:
        results["layout"] = score(generator, prompts, guidance, layout=True)
    if measure_speed:
        results["speed"] = speed(generator)
    results["guidance"] = generator.capabilities().guidance if guidance is None else guidance
    results["seconds"] = time.perf_counter() - start
    write_table(results, out)
    return results


def write_table(results: dict[str, Any], out: TextIO) -> None:
    """The results as a markdown table, with the targets of issue #3 (and the layout issue) next to them."""
    plain, with_layout = results["plain"], results.get("layout")
    plain_is = "the caption alone" if results.get("words_only") else "the model's own layout for several objects"
    out.write(f"embedded-shapes, guidance {results['guidance']}, first try, strict (no extra objects); "
              f"without a layout: {plain_is}\n\n")
    # Category rows count prompts; kind rows (kind:color, ...) count the questions of that kind.
    head = "| row | judged | prompt pass | question pass | target |"
    rule = "|---|---|---|---|---|"
    if with_layout is not None:
        head += " with layout: prompt pass | question pass | target |"
        rule += "---|---|---|"
    out.write(head + "\n" + rule + "\n")
    rows = [*CATEGORIES, "overall"] + sorted(k for k in plain if k.startswith("kind:"))
    for key in rows:
        if key not in plain:
            continue
        r = plain[key]
        target = f">= {TARGETS[key]:.0%}" if key in TARGETS else ""
        unit = "question" if key.startswith("kind:") else "prompt"
        judged = f"{r['prompts']} {unit}{'' if r['prompts'] == 1 else 's'}"
        line = f"| {key} | {judged} | {r['pass_rate']:.1%} | {r['question_rate']:.1%} | {target} |"
        if with_layout is not None:
            lr = with_layout[key]
            goal = f">= {LAYOUT_TARGETS[key]:.0%}" if key in LAYOUT_TARGETS else ""
            line += f" {lr['pass_rate']:.1%} | {lr['question_rate']:.1%} | {goal} |"
        out.write(line + "\n")
    if "speed" in results:
        s = results["speed"]
        out.write(
            f"\nspeed: {s['batch1_s_per_image']:.2f} s/image at batch 1, "
            f"{s['batch8_s_per_image']:.2f} s/image at batch 8 ({8 * s['batch8_s_per_image']:.2f} s per batch)\n"
        )
    out.write(f"bench time: {results['seconds']:.0f} s\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--categories", default=None, help="Comma-separated, e.g. position,color_attr.")
    parser.add_argument("--no-layout", action="store_true", help="Skip the with-layout column.")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--words-only", action="store_true", help="No layout of the model's own without one.")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    run(
        args.limit,
        weights=args.weights,
        guidance=args.guidance,
        categories=tuple(args.categories.split(",")) if args.categories else None,
        layout=not args.no_layout,
        device=args.device,
        measure_speed=not args.no_speed,
        words_only=args.words_only,
    )
