"""The shapes world: grammar, checklist, renderer and prompt sets."""

from __future__ import annotations

import numpy as np
import pytest

from gems_mcp.checks import Exactly, RelationCheck, Target
from gems_mcp.errors import Unsupported
from gems_mcp.shapes import world
from gems_mcp.shapes.checklist import checklist
from gems_mcp.shapes.world import Group, SceneSpec


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red circle", SceneSpec((Group("circle", "red"),))),
        ("A photo of a Red Circle.", SceneSpec((Group("circle", "red"),))),
        ("an image of a circle", SceneSpec((Group("circle", None),))),
        ("a red circle and a blue square", SceneSpec((Group("circle", "red"), Group("square", "blue")))),
        ("three green triangles", SceneSpec((Group("triangle", "green", 3),))),
        ("4 white squares!", SceneSpec((Group("square", "white", 4),))),
        ("one yellow circle", SceneSpec((Group("circle", "yellow"),))),
        (
            "a yellow square to the left of a purple circle",
            SceneSpec((Group("square", "yellow"), Group("circle", "purple")), "left"),
        ),
        ("a red circle right of a blue square", SceneSpec((Group("circle", "red"), Group("square", "blue")), "right")),
        ("a red circle above a red square", SceneSpec((Group("circle", "red"), Group("square", "red")), "above")),
        ("a red circle below a blue circle", SceneSpec((Group("circle", "red"), Group("circle", "blue")), "below")),
        (
            "two red circles and a blue square",
            SceneSpec((Group("circle", "red", 2), Group("square", "blue"))),
        ),
        (
            "a circle, a square and a triangle",
            SceneSpec((Group("circle", None), Group("square", None), Group("triangle", None))),
        ),
    ],
)
def test_parse_understands_the_grammar(prompt: str, expected: SceneSpec) -> None:
    assert world.parse(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a dog on a skateboard", "not a shape"),
        ("five red circles", "at most 4"),
        ("three circles and two squares", "at most 4"),
        ("two red circles above a blue square", "two single objects"),
        ("two circles and a red circle", "more than once"),
    ],
)
def test_parse_rejects_what_the_world_cannot_hold_with_examples(prompt: str, why: str) -> None:
    with pytest.raises(Unsupported) as error:
        world.parse(prompt)
    message = str(error.value)
    assert why in message
    assert "a red circle and a blue square" in message  # the examples a user can copy


def test_canonical_captions_parse_back_to_their_spec() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        spec, _objects = world.sample_training_scene(rng)
        assert world.parse(spec.caption()) == spec


def test_checklist_for_a_relation_asks_objects_position_and_no_extras() -> None:
    reqs = checklist("a red circle to the left of a blue square")
    questions = [r.question for r in reqs]
    assert "Is there a red circle?" in questions
    assert "Is the red circle to the left of the blue square?" in questions
    assert questions[-1] == "Are there exactly 1 red circle and 1 blue square, and nothing else?"
    position = next(r for r in reqs if r.kind == "position")
    assert position.check == RelationCheck(
        relation="left", a=Target(object="circle", color="red"), b=Target(object="square", color="blue")
    )
    assert [r.id for r in reqs] == [f"q{i}" for i in range(1, len(reqs) + 1)]


def test_checklist_for_counting_asks_for_the_exact_number() -> None:
    reqs = checklist("three blue squares")
    count = next(r for r in reqs if isinstance(r.check, Exactly))
    assert count.question == "Are there exactly three blue squares?"
    assert count.kind == "count"
    assert count.check.n == 3


def test_rendered_scenes_use_only_the_palette_and_never_overlap() -> None:
    rng = np.random.default_rng(4)
    allowed = {world.BACKGROUND, *world.PALETTE.values()}
    for _ in range(100):
        spec, objects = world.sample_training_scene(rng)
        image = world.render(objects)
        assert {tuple(int(c) for c in p) for p in image.reshape(-1, 3)} <= allowed
        painted = sum(int(world.shape_mask(o.shape, o.side).sum()) for o in objects)
        assert int((image != world.BACKGROUND).any(axis=-1).sum()) == painted
        assert len(objects) == spec.total


def test_placed_scenes_satisfy_their_relation() -> None:
    rng = np.random.default_rng(5)
    for relation in world.RELATIONS:
        spec = SceneSpec((Group("circle", "red"), Group("square", "blue")), relation)
        for _ in range(20):
            a, b = world.place(spec, rng)
            assert world.relation_holds(relation, a.center, b.center)


def test_held_out_prompts_are_fixed_cover_every_category_and_parse() -> None:
    prompts = world.held_out_prompts()
    assert prompts == world.held_out_prompts()
    assert len(prompts) >= 200
    assert {c for c, _ in prompts} == set(world.CATEGORIES)
    for _category, prompt in prompts:
        world.parse(prompt)
