"""ExactJudge against rendered ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from gems_mcp.critique.base import Judge
from gems_mcp.shapes import world
from gems_mcp.shapes.checklist import checklist
from gems_mcp.shapes.judge import ExactJudge, find_objects
from gems_mcp.types import Requirement


def _upscaled(objects: list[world.Placed], side: int = 256) -> Image.Image:
    return Image.fromarray(world.render(objects)).resize((side, side), Image.Resampling.NEAREST)


def _negatives(spec: world.SceneSpec, objects: list[world.Placed], rng: np.random.Generator) -> list[Requirement]:
    """Questions whose true answer is no, built by changing the prompt's facts."""
    group = spec.groups[0]
    absent = [c for c in world.COLORS if c not in {o.color for o in objects}]
    checks: list[dict] = [
        {"type": "exactly", "shape": group.shape, "color": group.color, "n": group.count + 1},
        {"type": "at_least", "shape": group.shape, "color": absent[int(rng.integers(len(absent)))], "n": 1},
        {"type": "only", "groups": [{"shape": g.shape, "color": g.color, "n": g.count} for g in spec.groups]
         + [{"shape": "triangle", "color": absent[0], "n": 1}]},
    ]
    if spec.relation:
        opposite = {"left": "right", "right": "left", "above": "below", "below": "above"}[spec.relation]
        a, b = ({"shape": g.shape, "color": g.color} for g in spec.groups)
        checks.append({"type": "relation", "relation": opposite, "a": a, "b": b})
    return [Requirement(id=f"n{i}", question="negative", check=c) for i, c in enumerate(checks)]


def test_judge_answers_at_least_99_percent_right_on_1000_rendered_scenes() -> None:
    rng = np.random.default_rng(11)
    judge = ExactJudge()
    right = total = 0
    for i in range(1000):
        spec = world.sample_spec((*world.CATEGORIES, "groups")[i % 7], rng)
        objects = world.place(spec, rng)
        image = _upscaled(objects)
        yes = judge.verify([image], checklist(spec.caption()))[0].verdicts
        no = judge.verify([image], _negatives(spec, objects, rng))[0].verdicts
        right += sum(v.passed for v in yes) + sum(not v.passed for v in no)
        total += len(yes) + len(no)
    assert right / total >= 0.99


@pytest.mark.parametrize("side", [32, 96, 256, 1024])
def test_judge_finds_the_same_objects_at_any_size(side: int) -> None:
    spec = world.parse("two red circles and a blue triangle")
    objects = world.place(spec, np.random.default_rng(2))
    found = sorted((f.color, f.object) for f in find_objects(_upscaled(objects, side)))
    assert found == [("blue", "triangle"), ("red", "circle"), ("red", "circle")]


def test_empty_image_has_no_objects_and_fails_existence() -> None:
    image = Image.new("RGB", (256, 256), world.BACKGROUND)
    verdicts = ExactJudge().verify([image], checklist("a red circle"))[0].verdicts
    assert not any(v.passed for v in verdicts[:-1])


def test_question_without_a_check_fails_with_an_explanation() -> None:
    image = _upscaled(world.place(world.parse("a red circle"), np.random.default_rng(0)))
    reqs = [
        Requirement(id="q1", question="Is it pretty?"),
        Requirement(id="q2", question="Is there a red circle?", check={"type": "at_least", "object": "circle"}),
    ]
    verdicts = ExactJudge().verify([image], reqs)[0].verdicts
    assert [v.requirement_id for v in verdicts] == ["q1", "q2"]
    assert not verdicts[0].passed and "cannot check" in (verdicts[0].note or "")
    assert verdicts[1].passed
    # a check of a type no judge knows is refused when the question is written, not judged wrongly
    with pytest.raises(ValidationError):
        Requirement(id="q3", question="Odd", check={"type": "smiles"})


def test_judgement_reports_the_objects_it_found_with_boxes() -> None:
    objects = world.place(world.parse("a red circle"), np.random.default_rng(0))
    judgement = ExactJudge().verify([_upscaled(objects)], checklist("a red circle"))[0]
    (found,) = judgement.detections
    o = objects[0]
    assert (found.object, found.color) == ("circle", "red")
    assert found.box == (o.x0 / 32, o.y0 / 32, (o.x0 + o.side) / 32, (o.y0 + o.side) / 32)


def test_verdict_notes_say_what_was_found() -> None:
    image = _upscaled(world.place(world.parse("a green square"), np.random.default_rng(0)))
    verdicts = ExactJudge().verify([image], checklist("a red circle"))[0].verdicts
    assert "green square" in (verdicts[0].note or "")
    assert verdicts[0].judge == "exact"


def test_exact_judge_implements_the_judge_protocol() -> None:
    assert isinstance(ExactJudge(), Judge)
    assert ExactJudge().name == "exact"
