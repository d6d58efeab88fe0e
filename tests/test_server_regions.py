"""Layouts and region edits at the MCP boundary: what the agent sends, what it gets back."""

from __future__ import annotations

import pytest

from tests.fakes import FakeGenerator, ScriptedJudge
from tests.test_server import make, session

pytestmark = pytest.mark.anyio

QUESTIONS = ["Is there a red circle?", "Is the circle left of the square?"]
LAYOUT = [{"prompt": "a red circle", "box": [0.05, 0.35, 0.35, 0.65]},
          {"prompt": "a blue square", "box": [0.65, 0.35, 0.95, 0.65]}]


def trajectory_id(result) -> str:
    return str(result.content[-1].uri).rsplit("/", 1)[-1]


async def test_a_layout_reaches_the_model_and_the_round_keeps_it():
    server, loop = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        return await client.call_tool("generate", {"prompt": "a red circle left of a blue square",
                                                   "requirements": QUESTIONS, "layout": LAYOUT})

    result = await session(go, server)
    assert not result.is_error
    assert "layout: a red circle [0.05, 0.35, 0.35, 0.65]; a blue square" in result.content[0].text
    assert [r.prompt for r in loop.generator.calls[-1].layout] == ["a red circle", "a blue square"]
    stored = loop.trajectory(trajectory_id(result))
    assert [r.box for r in stored.rounds[0].layout] == [tuple(r["box"]) for r in LAYOUT]


async def test_an_inpaint_round_keeps_every_pixel_outside_its_boxes_and_the_layout_carries_over():
    server, loop = make(judge=ScriptedJudge([[True, False], [True, False], [True, True]]))

    async def go(client):
        first = await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS, "layout": LAYOUT})
        tid = trajectory_id(first)
        again = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "x"})
        edit = await client.call_tool("refine", {
            "trajectory_id": tid, "prompt": "x", "mode": "inpaint",
            "edits": [{"box": [0.5, 0.5, 1.0, 1.0], "prompt": ""}, {"box": [0.0, 0.0, 0.25, 0.25], "prompt": "a red circle"}],
        })
        return tid, again, edit

    tid, again, edit = await session(go, server)
    assert not again.is_error and not edit.is_error, edit.content[0].text
    trajectory = loop.trajectory(tid)
    assert trajectory.rounds[1].layout == trajectory.rounds[0].layout  # regenerate keeps the last layout
    source = trajectory.rounds[2].params.source_image_id
    assert source == trajectory.rounds[0].candidates[0].image_id  # the best so far (earliest on ties)
    before = loop.images.load(source).load()
    after = loop.images.load(trajectory.rounds[2].candidates[0].image_id).load()
    outside = [(x, y) for x in range(64) for y in range(64) if not (x >= 32 and y >= 32) and not (x < 16 and y < 16)]
    assert all(before[p] == after[p] for p in outside)
    assert any(before[x, y] != after[x, y] for x in range(32, 64) for y in range(32, 64))
    assert "edits: (erase) [0.50, 0.50, 1.00, 1.00]; a red circle" in edit.content[0].text
    assert trajectory.status == "done"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"layout": [{"prompt": "a", "box": [0, 0, 1.5, 1]}]}, "layout.0.box.2: Input should be less than or equal to 1"),
        ({"layout": [{"prompt": "a", "box": [0.2, 0.2, 0.2, 0.5]}]}, "x0 < x1 and y0 < y1"),
        ({"layout": [{"prompt": "a", "box": [0.1, 0.1, 0.2, 0.2]}] * 9}, "at most 8 regions"),
        ({"layout": [{"prompt": " ", "box": [0.1, 0.1, 0.2, 0.2]}]}, "every layout region needs a prompt"),
        ({"layout": []}, "layout is empty"),
        ({"background": "grass"}, "background applies only with a layout"),
        ({"layout": [{"prompt": "a", "box": [0.1, 0.1, 0.2, 0.2], "colour": "red"}]}, "Extra inputs are not permitted"),
    ],
)
async def test_bad_layouts_are_one_clear_sentence(arguments, message):
    server, loop = make()

    async def go(client):
        return await client.call_tool("generate", {"prompt": "x", **arguments})

    result = await session(go, server)
    assert result.is_error and message in result.content[0].text
    assert "pydantic" not in result.content[0].text and loop.generator.calls == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "inpaint"}, "mode='inpaint' needs edits"),
        ({"mode": "regenerate", "edits": [{"box": [0, 0, 0.5, 0.5], "prompt": ""}]}, "edits does not apply to mode='regenerate'"),
        ({"mode": "edit", "layout": LAYOUT}, "layout does not apply to mode='edit'"),
        ({"mode": "inpaint", "edits": [{"box": [0, 0, 0.5, 0.5], "prompt": ""}], "image_id": "0123456789abcdef"},
         "is not an image of trajectory"),
        ({"mode": "inpaint", "edits": [{"box": [0, 0, 0.5, 0.5], "prompt": "a"}] * 9}, "at most 8 regions"),
    ],
)
async def test_bad_edits_are_refused_and_the_trajectory_stays_usable(arguments, message):
    server, _ = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        first = await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS})
        tid = trajectory_id(first)
        bad = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "x", **arguments})
        good = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "x"})
        return bad, good

    bad, good = await session(go, server)
    assert bad.is_error and message in bad.content[0].text, bad.content[0].text
    assert not good.is_error and "round 2/" in good.content[0].text


async def test_a_model_without_inpainting_says_what_it_cannot_do():
    server, _ = make(FakeGenerator(edit=False), judge=ScriptedJudge([[True, False]]))

    async def go(client):
        first = await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS})
        return await client.call_tool("refine", {"trajectory_id": trajectory_id(first), "prompt": "x", "mode": "inpaint",
                                                 "edits": [{"box": [0, 0, 0.5, 0.5], "prompt": "a red circle"}]})

    result = await session(go, server)
    assert result.is_error and "cannot repaint regions of an image (mode='inpaint')" in result.content[0].text
