"""What an agent meets when it follows the server's own advice, on the embedded model (issue 19)."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from gems_mcp.config import load_settings
from gems_mcp.gallery.data import detail
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server

pytestmark = pytest.mark.anyio

LAYOUT = [{"prompt": "a red circle", "box": [0.05, 0.35, 0.35, 0.65]},
          {"prompt": "a blue square", "box": [0.65, 0.35, 0.95, 0.65]}]
MANIFEST_BUDGET = 15000
"""Bytes of tools/list JSON for the loop tools, as benchmarks/manifest_size.py counts them (11802 before the
descriptions named the model, its limits and the fixes; 14000 after)."""


def embedded():
    settings = load_settings()
    loop = AgentLoop(settings)
    return create_server(settings, loop), loop


def texts(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def tid_of(result) -> str:
    return texts(result).split()[1]


def assert_no_line_twice(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), [line for line in lines if lines.count(line) > 1]


async def test_the_model_its_limits_and_the_fixes_are_said_before_the_first_call():
    server, _ = embedded()
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        instructions = client.instructions or ""
        prompt = (await client.get_prompt("gems_loop", {"request": "a red circle"})).messages[0].content.text
    for text in (instructions, tools["generate"].description, tools["refine"].description, prompt):
        assert "embedded-shapes" in text and "n 1-8" in text
    for text in (instructions, tools["generate"].description, prompt):
        assert "circle, square, triangle" in text and "multiples of 32" in text and "origin top-left" in text
    assert "missing -> inpaint" in tools["refine"].description and "wrong place -> inpaint" in instructions
    manifest = [t.model_dump_json(by_alias=True, exclude_none=True) for n, t in tools.items() if not n.startswith("skill_")]
    assert not any("GEMS_" in tool for tool in manifest), "a schema names a setting the agent cannot see"
    assert sum(len(tool) for tool in manifest) <= MANIFEST_BUDGET
    verdicts = tools["critique"].input_schema["properties"]["verdicts"]["description"]
    assert "kept beside it" in verdicts and "instead of" not in verdicts


async def test_intent_is_free_text_and_a_refused_prompt_names_its_argument():
    server, loop = embedded()
    async with Client(server) as client:
        made = await client.call_tool("generate", {"prompt": "a red circle", "intent": "a crimson ball, please",
                                                   "seed": 1})
        refused = await client.call_tool("generate", {"prompt": "a crimson ball, please"})
        region = await client.call_tool("generate", {"prompt": "a red circle and a blue square", "layout": [
            LAYOUT[0], {"prompt": "a crimson ball", "box": [0.6, 0.3, 0.9, 0.6]}]})
    assert not made.is_error, texts(made)
    assert loop.trajectory(tid_of(made)).intent == "a crimson ball, please"
    assert refused.is_error and "generate: prompt: The embedded model cannot draw" in texts(refused)
    assert region.is_error and "layout[1].prompt: the region prompt 'a crimson ball'" in texts(region)


async def test_agent_questions_are_kept_and_the_stop_rule_waits_for_the_ones_marked_for_the_agent():
    server, loop = embedded()
    mine = ["Are the red circle and the blue square about the same size?",
            "Is the red circle to the left of the blue square?"]
    async with Client(server) as client:
        made = await client.call_tool("generate", {"prompt": "a red circle and a blue square", "requirements": mine,
                                                   "layout": LAYOUT, "seed": 1, "n": 2})
        tid = tid_of(made)
        trajectory = loop.trajectory(tid)
        own = next(r for r in trajectory.checklist if r.question == mine[0])
        best = texts(made).split("verdicts for ", 1)[1].split(":", 1)[0]
        answered = await client.call_tool("critique", {"trajectory_id": tid, "image_id": best,
                                                       "verdicts": [{"id": own.id, "passed": True}]})
        closed = await client.call_tool("close_trajectory", {"trajectory_id": tid})
        resource = json.loads((await client.read_resource(f"gems://trajectories/{tid}")).contents[0].text)
    questions = [r.question for r in trajectory.checklist]
    assert mine[0] in questions and own.source == "agent" and own.check is None
    assert questions.count(mine[1]) == 1, "the relation the layout draws and the agent's own are one question"
    assert f"? {own.id} {mine[0]} (for you" in texts(made)
    assert "status: active" in texts(made) and f"Answer {own.id} (marked 'for you')" in texts(made)
    assert "status: DONE (every question passes)" in texts(answered), texts(answered)
    total = len(questions)
    assert f"answer: image {best} (round 1, {total - 1}/{total})" in texts(made), "before the agent answered"
    answer = f"answer: image {best} (round 1, {total}/{total})"
    for text in (texts(answered), texts(closed), resource["answer"], detail(loop.store, tid)["answer"]):
        assert answer in text
    for text in (texts(made), texts(answered), texts(closed)):
        assert_no_line_twice(text)


async def test_a_layout_adds_its_relations_and_every_question_says_what_it_tests():
    server, loop = embedded()
    layout = [{"prompt": "a green triangle", "box": [0.05, y, 0.3, y + 0.25]} for y in (0.05, 0.37, 0.69)]
    layout.append({"prompt": "a white square", "box": [0.65, 0.37, 0.9, 0.62]})
    async with Client(server) as client:
        made = await client.call_tool("generate", {"prompt": "three green triangles and a white square",
                                                   "layout": layout, "seed": 3})
    questions = [r.question for r in loop.trajectory(tid_of(made)).checklist]
    assert "Are the three green triangles to the left of the white square?" in questions
    assert "Are there exactly 3 green triangles and 1 white square, and nothing else?" in questions


async def test_no_tool_says_a_line_twice(tmp_path):
    server, loop = embedded()
    async with Client(server) as client:
        results = [await client.call_tool("skill_shapes-world", {"prompt": "a red circle"})]
        made = await client.call_tool("generate", {"prompt": "a red circle left of a blue square", "seed": 2,
                                                   "requirements": ["Is the red circle round and flat?"],
                                                   "skill": "spatial-layout", "layout": LAYOUT})
        tid = tid_of(made)
        results += [made, await client.call_tool("critique", {"trajectory_id": tid})]
        results.append(await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a red circle left of a "
                                                         "blue square", "mode": "inpaint", "edits": [LAYOUT[0]]}))
        results.append(await client.call_tool("critique", {"trajectory_id": tid, "verdicts": [
            {"id": r.id, "passed": True} for r in loop.trajectory(tid).checklist]}))
        for args in ({"trajectory_id": tid}, {"query": "a red circle"}, {}):
            results.append(await client.call_tool("recall_memory", args))
        results.append(await client.call_tool("close_trajectory", {"trajectory_id": tid}))
    assert "spatial-layout's defaults for steps, guidance, negative_prompt do not fit" in texts(made)
    assert loop.trajectory(tid).rounds[0].params.steps == 20, "the embedded model keeps its own steps"
    for result in results:
        assert not result.is_error, texts(result)
        assert_no_line_twice(texts(result))
