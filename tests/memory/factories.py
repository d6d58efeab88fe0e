"""Builders for realistic trajectories, shared by the memory tests and the benchmark."""

from __future__ import annotations

import argparse

from gems_mcp.commands.memory import add_memory_command
from gems_mcp.types import Candidate, GenerationParams, Requirement, Round, Trajectory, Verdict

QUESTIONS = [
    "Are there exactly three red circles?",
    "Is the blue square to the left of the circles?",
    "Is the background white?",
    "Is there a green triangle above the square?",
    "Does the caption say 'SHAPES'?",
    "Is the image drawn in a flat minimalist style?",
]


def make_round(
    index: int,
    passes: dict[str, bool] | None,
    prompt: str | None = None,
    experience: str | None = None,
    mode: str = "regenerate",
    n: int = 2,
) -> Round:
    """A round whose first candidate has ``passes`` and the others one pass fewer."""
    candidates = []
    for c in range(n):
        verdicts = None
        if passes is not None:
            verdicts = [
                Verdict(requirement_id=q, passed=ok and c == 0, judge="exact")
                for q, ok in passes.items()
            ]
        image_id = f"img-{index:03d}-{c}"
        candidates.append(Candidate(image_id=image_id, seed=1000 * index + c, verdicts=verdicts))
    return Round(
        index=index,
        prompt=prompt or f"three red circles to the right of a blue square, attempt {index}",
        mode="generate" if index == 1 else mode,  # type: ignore[arg-type]
        params=GenerationParams(width=256, height=256, steps=20, guidance=5.0,
                                strength=0.6 if mode == "edit" else None),
        candidates=candidates,
        experience=experience,
        experience_source="agent" if experience else None,
    )


def make_trajectory(
    n_rounds: int,
    intent: str = "three red circles to the right of a blue square, a green triangle above, "
    "caption 'SHAPES', flat minimalist style on white",
    questions: list[str] | None = None,
    long_text: bool = True,
    skill: str | None = "counting",
) -> Trajectory:
    """A trajectory of ``n_rounds`` judged rounds where questions pass one by one over time."""
    questions = questions or QUESTIONS
    checklist = [Requirement(id=f"q{i + 1}", question=q) for i, q in enumerate(questions)]
    rounds = []
    for r in range(1, n_rounds + 1):
        # Question i starts passing at round 2*i, so several flips happen along the way.
        passes = {req.id: r >= 2 * (i + 1) for i, req in enumerate(checklist)}
        filler = " with crisp edges, even lighting and no other objects in the frame"
        filler *= 3 if long_text else 0
        prompt = f"round {r}: three red circles right of a blue square{filler}"
        experience = (
            f"Round {r} still missed some checks; the model ignores counts above two unless the "
            f"count is stated first and repeated, and positions need explicit left/right wording. "
            + ("Keep the caption short and quoted; name the style at the end. " * (2 if long_text else 0))
        )
        rounds.append(make_round(r, passes, prompt=prompt, experience=experience,
                                 mode="edit" if r % 3 == 0 else "regenerate"))
    return Trajectory(intent=intent, checklist=checklist, skill=skill, rounds=rounds,
                      max_rounds=max(n_rounds, 5))


def run_memory_command(*argv: str) -> int:
    """`gems-mcp memory ARGV...` in-process; its exit code."""
    parser = argparse.ArgumentParser(prog="gems-mcp")
    add_memory_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code
