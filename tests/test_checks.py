"""Typed checks: decided from detections, and read back from trajectories stored before they were typed."""

from __future__ import annotations

from gems_mcp.checks import AtLeast, Detection, Exactly, Only, RelationCheck, Target, answer
from gems_mcp.types import Requirement


def found(obj, color, x0, y0):
    return Detection(object=obj, color=color, box=(x0, y0, x0 + 0.25, y0 + 0.25))


SCENE = [found("circle", "red", 0.05, 0.4), found("square", "blue", 0.6, 0.4)]


def test_checks_decide_from_what_was_found():
    assert answer(AtLeast(object="circle", color="red"), SCENE)
    assert not answer(Exactly(object="square", n=2), SCENE)
    assert answer(RelationCheck(relation="left", a=Target(object="circle"), b=Target(object="square", color="blue")), SCENE)
    assert not answer(RelationCheck(relation="right", a=Target(object="circle"), b=Target(object="square")), SCENE)
    assert not answer(Only(groups=[{"object": "circle", "color": "red", "n": 1}]), SCENE)


def test_a_checklist_stored_with_untyped_checks_still_loads():
    stored = {"id": "q1", "question": "Is the red circle left of the blue square?", "kind": "position",
              "check": {"type": "relation", "relation": "left", "a": {"shape": "circle", "color": "red"},
                        "b": {"shape": "square", "color": "blue"}}}
    requirement = Requirement.model_validate(stored)
    assert isinstance(requirement.check, RelationCheck) and requirement.check.a.object == "circle"
    assert answer(requirement.check, SCENE)
