"""The embedded model's benchmark: first-try pass rates on fixed held-out prompts, and speed."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from gems_mcp.shapes.judge import ExactJudge
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.shapes import world
from gems_mcp.shapes.generator import WEIGHTS, EmbeddedGenerator

PER_CATEGORY = 40
TARGETS = {"single": 0.9, "two_objects": 0.5, "counting": 0.5, "position": 0.3, "overall": 0.5}


def bench_prompts(limit: int | None = None) -> list[tuple[str, str]]:
    """The held-out prompts, categories interleaved so that any prefix stays balanced."""
    by_category: dict[str, list[str]] = defaultdict(list)
    for category, prompt in world.held_out_prompts(PER_CATEGORY):
        by_category[category].append(prompt)
    mixed = [(c, by_category[c][i]) for i in range(PER_CATEGORY) for c in world.CATEGORIES]
    return mixed[:limit] if limit else mixed


def score(
    generator: EmbeddedGenerator, prompts: list[tuple[str, str]], guidance: float | None = None
) -> dict[str, Any]:
    """First-try results: per category prompt and question pass rates, per question kind, overall."""
    judge = ExactJudge()
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    defaults = generator.defaults()
    for index, (category, prompt) in enumerate(prompts):
        request = GenerationRequest(
            prompt, [index], defaults.width, defaults.height, defaults.steps, guidance
        )
        image = generator.generate(request)[0]
        checklist = generator.checklist(prompt)
        verdicts = judge.verify(image, checklist)
        passed = [v.passed for v in verdicts]
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
    defaults = generator.defaults()
    result = {}
    for batch in (1, 8):
        request = GenerationRequest(
            "a red circle to the left of a blue square", list(range(batch)),
            defaults.width, defaults.height, defaults.steps,
        )
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
) -> dict[str, Any]:
    """Benchmark the embedded model on `limit` held-out prompts (all when None) and print a table."""
    generator = EmbeddedGenerator(weights)
    prompts = bench_prompts(limit)
    start = time.perf_counter()
    results = score(generator, prompts, guidance)
    results["speed"] = speed(generator)
    results["guidance"] = generator.defaults().guidance if guidance is None else guidance
    results["seconds"] = time.perf_counter() - start
    write_table(results, out)
    return results


def write_table(results: dict[str, Any], out: TextIO) -> None:
    """The results as a markdown table, with the targets of issue #3 next to them."""
    out.write(f"embedded-shapes, guidance {results['guidance']}, first try, strict (no extra objects)\n\n")
    out.write("| category | prompts | prompt pass | question pass | target |\n|---|---|---|---|---|\n")
    rows = [*world.CATEGORIES, "overall"] + sorted(k for k in results if k.startswith("kind:"))
    for key in rows:
        if key not in results:
            continue
        r = results[key]
        target = f">= {TARGETS[key]:.0%}" if key in TARGETS else ""
        out.write(f"| {key} | {r['prompts']} | {r['pass_rate']:.1%} | {r['question_rate']:.1%} | {target} |\n")
    s = results["speed"]
    out.write(
        f"\nspeed: {s['batch1_s_per_image']:.2f} s/image at batch 1, "
        f"{s['batch8_s_per_image']:.2f} s/image at batch 8 ({8 * s['batch8_s_per_image']:.2f} s per batch)\n"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--guidance", type=float, default=None)
    args = parser.parse_args()
    run(args.limit, weights=args.weights, guidance=args.guidance)
