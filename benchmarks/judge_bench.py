"""Judge time against generation time per round, on the tiny models (ratio in the same process).

One round = generate n candidates (tiny SD, 64x64) then judge them against the questions derived from the
prompt, with each server judge: vlm (tiny LLaVA, P(yes) per image-question pair), detect (tiny OWLv2),
and both. The figures say how much of a round the judge takes; on real models the ratio is what matters
(a 3B VLM on 8 x 3 pairs against 30 SDXL steps), so run it with --model/--vlm/--detect pointing at real
folders on a GPU for real numbers.

Usage: python benchmarks/judge_bench.py [--rounds 5] [--n 4] [--steps 4] [--model DIR] [--vlm DIR] [--detect DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gems_mcp.backends import load_generator, load_judge
from gems_mcp.config import load_settings
from gems_mcp.critique.questions import prompt_questions
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.types import GenerationParams

PROMPT = "two dogs and a red car left of a bench"


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=4, help="candidates per round")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model", help="diffusers pipeline folder (default: the tiny SD)")
    parser.add_argument("--vlm", help="VLM folder or hub id (default: the tiny LLaVA)")
    parser.add_argument("--detect", help="detector folder or hub id (default: the tiny OWLv2)")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        from tests.critique.tiny_models import build_tiny_owlv2, build_tiny_vlm
        from tests.tiny_pipeline import build_tiny_pipeline

        model = args.model or str(build_tiny_pipeline(Path(tmp) / "sd"))
        vlm = args.vlm or str(build_tiny_vlm(Path(tmp) / "vlm"))
        detect = args.detect or str(build_tiny_owlv2(Path(tmp) / "owl"))
        settings = load_settings(home=Path(tmp) / "home", model=model)
        generator = load_generator(settings)
        checklist = prompt_questions(PROMPT)
        for i, req in enumerate(checklist, start=1):
            req.id = f"q{i}"
        request = GenerationRequest(
            prompt=PROMPT, seeds=list(range(args.n)),
            params=GenerationParams(width=args.size, height=args.size, steps=args.steps, guidance=5.0),
        )
        generator.generate(request)  # warm-up: loads the pipeline
        gen_s, images = timed(lambda: generator.generate(request), args.rounds)
        print(f"prompt: {PROMPT!r}; {len(checklist)} derived questions; n={args.n}; {args.steps} steps; "
              f"{args.size}x{args.size}; median of {args.rounds} rounds")
        print(f"{'judge':<10} {'generate s':>11} {'judge s':>9} {'judge/generate':>15}")
        for label, spec in (("vlm", f"vlm:{vlm}"), ("detect", f"detect:{detect}"),
                            ("both", f"detect:{detect},vlm:{vlm}")):
            judge = load_judge(load_settings(home=Path(tmp) / "home", judge=spec))
            judge.verify(images, checklist)  # warm-up: loads the judge
            judge_s, _ = timed(lambda j=judge: j.verify(images, checklist), args.rounds)
            print(f"{label:<10} {gen_s:>11.3f} {judge_s:>9.3f} {judge_s / gen_s:>15.2f}")


if __name__ == "__main__":
    main()
