"""The reference corrector's region edits, decided from what the judge found."""

from __future__ import annotations

from gems_mcp.bench.repair import place, plan_repair
from gems_mcp.boxes import center, overlap, relation_holds
from gems_mcp.checks import Detection
from gems_mcp.shapes.world import parse


def found(obj, color, x0, y0, side=9):
    return Detection(object=obj, color=color, box=(x0 / 32, y0 / 32, (x0 + side) / 32, (y0 + side) / 32))


def test_a_matching_image_needs_no_edit():
    spec = parse("a red circle to the left of a blue square")
    assert plan_repair(spec, [found("circle", "red", 2, 10), found("square", "blue", 20, 10)]).edits == []


def test_a_wrong_color_is_repainted_in_its_own_box():
    spec = parse("a red circle and a blue square")
    repair = plan_repair(spec, [found("circle", "red", 2, 10), found("square", "green", 20, 10)])
    assert repair.levers == ["recolor"]
    (edit,) = repair.edits
    assert edit["prompt"] == "a blue square"
    assert overlap(tuple(edit["box"]), found("square", "green", 20, 10).box) > 0


def test_a_missing_object_is_added_in_a_free_box_on_the_right_side():
    spec = parse("a red circle to the left of a blue square")
    square = found("square", "blue", 12, 12)
    repair = plan_repair(spec, [square])
    (edit,) = repair.edits
    assert repair.levers == ["add"] and edit["prompt"] == "a red circle"
    assert relation_holds("left", center(tuple(edit["box"])), center(square.box))
    assert overlap(tuple(edit["box"]), square.box) == 0


def test_an_extra_object_is_erased():
    spec = parse("two green triangles")
    extra = found("circle", "white", 22, 22, 7)
    repair = plan_repair(spec, [found("triangle", "green", 2, 2), found("triangle", "green", 12, 2), extra])
    assert repair.levers == ["erase"]
    assert repair.edits[0]["prompt"] == "" and overlap(tuple(repair.edits[0]["box"]), extra.box) > 0


def test_objects_on_the_wrong_sides_are_moved_by_erase_and_add():
    spec = parse("a red circle to the left of a blue square")
    circle, square = found("circle", "red", 20, 10), found("square", "blue", 2, 10)
    repair = plan_repair(spec, [circle, square])
    assert repair.levers == ["move"]
    erased = [tuple(e["box"]) for e in repair.edits if e["prompt"] == ""]
    added = {e["prompt"]: tuple(e["box"]) for e in repair.edits if e["prompt"]}
    assert erased  # every move starts by erasing the object where it stands
    where = {"a red circle": circle.box, "a blue square": square.box} | added
    assert relation_holds("left", center(where["a red circle"]), center(where["a blue square"]))


def test_one_object_moves_when_there_is_room_beside_the_other():
    spec = parse("a red circle to the left of a blue square")
    circle, square = found("circle", "red", 12, 12), found("square", "blue", 1, 12)
    repair = plan_repair(spec, [circle, square])
    assert repair.levers == ["move"] and len(repair.edits) == 2


def test_no_free_place_means_no_add():
    crowded = [(x / 32, y / 32, (x + 10) / 32, (y + 10) / 32) for x in (0, 11, 22) for y in (0, 11, 22)]
    assert place(crowded) is None
