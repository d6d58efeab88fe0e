"""Boxes as an agent writes them: one object per box whatever its size, edits, refusals and notes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gems_mcp.errors import InvalidRequest
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.shapes import world
from gems_mcp.shapes.generator import EmbeddedGenerator
from gems_mcp.shapes.judge import ExactJudge, find_objects
from gems_mcp.shapes.layout import Cell, contradiction, to_pixels
from gems_mcp.shapes.placement import MIN_BOX, OBJECT_SIDE, place_cells
from gems_mcp.types import ImageParams, Region


@pytest.fixture(scope="module")
def generator() -> EmbeddedGenerator:
    return EmbeddedGenerator()


def _request(prompt: str, seeds: range, **kw: object) -> GenerationRequest:
    params = EmbeddedGenerator().capabilities().resolve(ImageParams(width=64, height=64))
    return GenerationRequest(prompt, list(seeds), params, **kw)  # type: ignore[arg-type]


def _held(box: tuple[float, float, float, float], image: Image.Image) -> list[str]:
    """The objects whose centre lies in the box, as 'red circle'."""
    x0, y0, x1, y1 = to_pixels(box)
    found = []
    for d in find_objects(image):
        cx, cy = (d.box[0] + d.box[2]) * 16, (d.box[1] + d.box[3]) * 16
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            found.append(f"{d.color} {d.object}")
    return found


# ---------------------------------------------------------------- placement (pure)


def test_a_loose_box_becomes_an_object_sized_cell_at_its_centre_and_the_rest_is_kept_empty() -> None:
    half = Cell((0, 0, 16, 32), "circle", "red")
    empty_rest, cell = place_cells([half])
    assert empty_rest == Cell((0, 0, 16, 32))
    assert cell.shape == "circle" and cell.color == "red"
    assert cell.box == (3, 11, 3 + OBJECT_SIDE, 11 + OBJECT_SIDE)


def test_an_object_sized_box_is_drawn_as_written() -> None:
    tight = [Cell((2, 3, 11, 12), "square", "blue"), Cell((20, 3, 28, 11), "circle", None)]
    assert place_cells(tight) == tight


def test_an_object_in_a_loose_box_keeps_clear_of_a_smaller_box_nested_in_it() -> None:
    outer, inner = Cell((0, 0, 32, 32), "circle", "red"), Cell((16, 16, 26, 26), "square", "blue")
    cells = place_cells([outer, inner])
    placed = {c.shape: c.box for c in cells if not c.empty}
    assert placed["square"] == inner.box
    _, _, x1, y1 = placed["circle"]
    assert x1 <= 16 or y1 <= 16  # out of the inner box, so each box holds its own object
    # object cells come last: the outer box's "keep empty" never covers the inner object
    assert [c.empty for c in cells] == [True, False, False]


def test_touching_boxes_get_cells_apart() -> None:
    left, right = Cell((3, 8, 16, 21), "circle", "red"), Cell((16, 8, 29, 21), "circle", "red")
    a, b = (c.box for c in place_cells([left, right]) if not c.empty)
    assert a[2] + 2 <= b[0]


def test_a_box_too_small_for_an_object_is_refused_naming_the_smallest_box_that_works(
    generator: EmbeddedGenerator,
) -> None:
    request = _request("a red circle", range(1), layout=[Region(prompt="a red circle", box=(0.1, 0.1, 0.2, 0.5))])
    with pytest.raises(InvalidRequest, match=rf"at least {MIN_BOX:.2f} x {MIN_BOX:.2f}") as caught:
        generator.generate(request)
    assert "'a red circle'" in str(caught.value) and str(caught.value).count(". ") == 0
    # an erase region may be as small as it likes
    init = Image.new("RGB", (64, 64))
    generator.generate(_request("a red circle", range(1), init_image=init, edits=[Region(prompt="", box=(0, 0, 0.05, 0.05))]))


# ---------------------------------------------------------------- what the model draws


@pytest.mark.slow
def test_loose_half_image_boxes_get_exactly_one_object_each(generator: EmbeddedGenerator) -> None:
    regions = [Region(prompt="a red triangle", box=(0, 0, 0.5, 1)), Region(prompt="a yellow circle", box=(0.5, 0, 1, 1))]
    images = generator.generate(_request("a red triangle and a yellow circle", range(8), layout=regions))
    right = sum(_held(regions[0].box, im) == ["red triangle"] and _held(regions[1].box, im) == ["yellow circle"]
                for im in images)
    assert right >= 7


@pytest.mark.slow
def test_a_region_edit_for_one_object_leaves_exactly_one_object_in_its_box_and_nothing_outside_changes(
    generator: EmbeddedGenerator,
) -> None:
    scene = [world.Placed("triangle", "red", 4, 12, 9), world.Placed("square", "blue", 21, 4, 8)]
    init = Image.fromarray(world.render(scene)).resize((64, 64), Image.Resampling.NEAREST)
    box = (0.0, 0.1, 0.4, 0.9)  # 0.4 x 0.8 around the red triangle, clear of the blue square
    edit = [Region(prompt="a green triangle", box=box)]
    images = generator.generate(_request("a green triangle and a blue square", range(6), init_image=init, edits=edit))
    x0, y0, x1, y1 = (round(v * 64) for v in box)
    outside = np.ones((64, 64), dtype=bool)
    outside[y0:y1, x0:x1] = False
    for image in images:
        assert _held(box, image) == ["green triangle"]
        assert np.array_equal(np.asarray(image)[outside], np.asarray(init)[outside])
    # a blank prompt edits as well: the regions say what to draw
    blank = generator.generate(_request("", range(1), init_image=init, edits=edit))[0]
    assert np.array_equal(np.asarray(blank)[outside], np.asarray(init)[outside])


@pytest.mark.slow
def test_a_plain_position_prompt_is_drawn_with_the_models_own_layout_and_says_so(generator: EmbeddedGenerator) -> None:
    prompt = "a purple square below a white triangle"
    request = _request(prompt, range(8))
    notes = generator.explain(request)
    assert len(notes) == 1 and notes[0].startswith("drawn with the model's own layout")
    checklist = generator.checklist(prompt)
    passed = [all(v.passed for v in j.verdicts) for j in ExactJudge().verify(generator.generate(request), checklist)]
    assert sum(passed) >= 7
    # its own words alone: the old first try
    words = EmbeddedGenerator(own_layout=False)
    assert words.explain(request) == []


def test_a_single_object_and_a_given_layout_get_no_own_layout(generator: EmbeddedGenerator) -> None:
    assert generator.explain(_request("a red circle", range(1))) == []
    layout = [Region(prompt="a red circle", box=(0, 0, 0.4, 0.4)), Region(prompt="a blue square", box=(0.6, 0, 1, 0.4))]
    assert generator.explain(_request("a red circle to the left of a blue square", range(1), layout=layout)) == []


def test_a_layout_contradicting_its_prompt_is_drawn_and_said_in_one_line(generator: EmbeddedGenerator) -> None:
    layout = [Region(prompt="a square", box=(0.3, 0.6, 0.7, 1.0)), Region(prompt="a circle", box=(0.3, 0.0, 0.7, 0.4))]
    request = _request("a square above a circle", range(1), layout=layout)
    (note,) = generator.explain(request)
    assert "\n" not in note
    assert "puts the square's box below the circle's, not above it" in note
    assert "checklist still asks" in note
    assert any(r.kind == "position" for r in generator.checklist("a square above a circle"))
    assert len(generator.generate(request)) == 1  # accepted


def test_contradiction_matches_regions_to_groups_by_shape_and_color() -> None:
    spec = world.parse("a red circle to the left of a red square")
    agrees = [("red circle", (0.0, 0.3, 0.4, 0.7)), ("a red square", (0.6, 0.3, 1.0, 0.7))]
    assert contradiction(spec, agrees) is None
    swapped = [("red circle", (0.6, 0.3, 1.0, 0.7)), ("a red square", (0.0, 0.3, 0.4, 0.7))]
    assert "to the right of the red square's" in (contradiction(spec, swapped) or "")
    assert contradiction(world.parse("a red circle and a red square"), swapped) is None


@pytest.mark.anyio
async def test_the_round_text_says_when_the_model_laid_out_a_prompt_itself_or_a_layout_contradicts_it() -> None:
    from gems_mcp.config import load_settings
    from gems_mcp.loop import AgentLoop
    from gems_mcp.results import round_summary

    loop = AgentLoop(load_settings(), generator=EmbeddedGenerator())
    plain = await loop.generate("a red circle to the left of a blue square", params=ImageParams(steps=4), seed=1)
    text = round_summary(plain.trajectory, plain.round, plain.notes)
    assert "note: drawn with the model's own layout" in text
    layout = [Region(prompt="a red circle", box=(0.6, 0.3, 1.0, 0.7)), Region(prompt="a blue square", box=(0.0, 0.3, 0.4, 0.7))]
    laid = await loop.generate("a red circle to the left of a blue square", params=ImageParams(steps=4), layout=layout)
    text = round_summary(laid.trajectory, laid.round, laid.notes)
    said = (
        "note: the layout contradicts the prompt: it puts the red circle's box to the right of the blue square's, "
        "not to the left of it; the image follows the layout, and the checklist still asks whether the red circle "
        "is to the left of the blue square"
    )
    assert [line for line in text.splitlines() if "contradicts" in line] == [said]
    assert any(r.kind == "position" for r in laid.trajectory.checklist)
    assert "own layout" not in text
