"""Layouts of the shapes world: the planner's boxes, free places, the layout map and region prompts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gems_mcp.boxes import center, overlap, relation_holds
from gems_mcp.errors import Unsupported
from gems_mcp.shapes import world
from gems_mcp.shapes.layout import (
    EMPTY_CHANNEL,
    LAYOUT_CHANNELS,
    OBJECT_CHANNEL,
    Cell,
    free_box,
    free_boxes,
    plan_layout,
    raster,
    region_cell,
    region_group,
    to_pixels,
)


def _prompts() -> list[str]:
    return [prompt for _category, prompt in world.held_out_prompts()]


def test_plan_layout_gives_one_box_per_object_in_the_spec_order() -> None:
    for prompt in _prompts():
        spec = world.parse(prompt)
        regions = plan_layout(prompt)
        wanted = [(g.shape, g.color) for g in spec.groups for _ in range(g.count)]
        got = [(g.shape, g.color) for g in (region_group(r.prompt) for r in regions)]
        assert got == wanted, prompt
        assert all(world.parse(r.prompt).total == 1 for r in regions)


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3])
def test_planned_boxes_never_overlap_and_have_the_size_of_world_objects(seed: int | None) -> None:
    for prompt in _prompts():
        boxes = [r.box for r in plan_layout(prompt, seed=seed)]
        for box in boxes:
            assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
            assert 0.25 <= box[2] - box[0] <= 0.34 and 0.25 <= box[3] - box[1] <= 0.34
        for a, b in itertools.combinations(boxes, 2):
            assert overlap(a, b) == 0, prompt


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3, 4, 5])
def test_planned_boxes_satisfy_the_relation_by_the_judges_rule_with_a_clear_margin(seed: int | None) -> None:
    relations = [p for p in _prompts() if world.parse(p).relation]
    assert len(relations) >= 40
    for prompt in relations:
        relation = world.parse(prompt).relation
        a, b = (center(r.box) for r in plan_layout(prompt, seed=seed))
        assert relation_holds(relation, a, b), prompt
        # still true if each object lands 3 px away from its box centre, in the worst direction
        assert relation_holds(relation, a, b, margin=2 / 32 + 6 / 32), prompt


def test_plan_layout_is_deterministic_and_a_seed_gives_variety() -> None:
    prompt = "a red circle to the left of a blue square"
    assert plan_layout(prompt) == plan_layout(prompt)
    assert plan_layout(prompt, seed=3) == plan_layout(prompt, seed=3)
    assert len({tuple(r.box for r in plan_layout(prompt, seed=s)) for s in range(10)}) > 5
    assert plan_layout(prompt, seed=np.random.default_rng(1)) == plan_layout(prompt, seed=np.random.default_rng(1))


def test_plan_layout_refuses_prompts_outside_the_world() -> None:
    with pytest.raises(Unsupported):
        plan_layout("a cat on a mat")


def test_free_box_keeps_clear_of_what_is_occupied() -> None:
    occupied = [(0.0, 0.0, 0.5, 0.5), (0.55, 0.55, 0.9, 0.9)]
    box = free_box(occupied)
    assert box is not None
    assert abs((box[2] - box[0]) - 10 / 32) < 1e-9
    for other in occupied:
        assert overlap(box, other) == 0
    assert free_box(occupied) == box  # deterministic
    assert free_box(occupied, seed=4) == free_box(occupied, seed=4)
    for seed in range(5):
        assert all(overlap(free_box(occupied, seed=seed), o) == 0 for o in occupied)


def test_free_box_puts_a_missing_object_away_from_the_others() -> None:
    left = [(0.05, 0.35, 0.35, 0.65)]
    box = free_box(left)
    assert box is not None and center(box)[0] > 0.6


def test_free_box_says_none_when_nothing_fits() -> None:
    assert free_box([(0.0, 0.0, 1.0, 1.0)]) is None
    assert free_box([(0.0, 0.0, 0.5, 1.0)], size=0.6) is None


def test_free_boxes_places_several_without_overlaps() -> None:
    occupied = [(0.1, 0.1, 0.4, 0.4)]
    boxes = free_boxes(occupied, 3)
    assert len(boxes) == 3
    for a, b in itertools.combinations(occupied + boxes, 2):
        assert overlap(a, b) == 0


def test_boxes_round_outward_to_native_pixels() -> None:
    assert to_pixels((0.1, 0.1, 0.2, 0.2)) == (3, 3, 7, 7)
    assert to_pixels((0.25, 0.5, 0.75, 1.0)) == (8, 16, 24, 32)
    assert to_pixels((0.0, 0.0, 0.001, 0.001)) == (0, 0, 1, 1)


def test_the_layout_map_marks_color_shape_object_and_empty_cells() -> None:
    grid = raster([region_cell("a red circle", (0.0, 0.0, 0.25, 0.25)), region_cell("", (0.5, 0.5, 1.0, 1.0))])
    assert grid.shape == (LAYOUT_CHANNELS, 32, 32) and grid.dtype == np.uint8
    inside = grid[:, 4, 4]
    assert inside[world.COLORS.index("red")] == 1 and inside[len(world.COLORS) + world.SHAPES.index("circle")] == 1
    assert inside[OBJECT_CHANNEL] == 1 and inside.sum() == 3
    assert grid[:, 20, 20].tolist() == [0] * EMPTY_CHANNEL + [1]
    assert grid[:, 12, 4].sum() == 0


def test_a_colorless_region_marks_only_the_shape_and_later_regions_win() -> None:
    grid = raster([Cell((0, 0, 10, 10), "square", "blue"), Cell((5, 5, 15, 15), "triangle", None)])
    assert grid[:6, 7, 7].sum() == 0 and grid[len(world.COLORS) + 2, 7, 7] == 1
    assert grid[world.COLORS.index("blue"), 2, 2] == 1


@pytest.mark.parametrize("prompt", ["a red circle", "red circle", "a square", "one blue triangle", "Triangle"])
def test_region_prompts_name_one_object(prompt: str) -> None:
    group = region_group(prompt)
    assert group is not None and group.count == 1


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        ("two red circles", "names 2 objects"),
        ("a red circle and a blue square", "names 2 objects"),
        ("a red circle above a blue square", "names 2 objects"),
        ("a cat", "not one object"),
        ("a pink circle", "not one object"),
    ],
)
def test_other_region_prompts_are_unsupported_with_what_is_allowed(prompt: str, why: str) -> None:
    with pytest.raises(Unsupported, match=why) as error:
        region_group(prompt)
    assert "'a red circle'" in str(error.value)
