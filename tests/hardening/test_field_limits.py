"""Case 2: every free-text argument is capped in characters, control characters and odd ids refused."""

from __future__ import annotations

import pytest

from gems_mcp.inputs import MAX_EXPERIENCE_CHARS, MAX_ID_CHARS
from gems_mcp.types import Lesson
from tests.hardening._client import QUESTIONS, ScriptedJudge, make, session, text

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def _started(client, judge_first=True):
    return client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS})


async def test_a_one_mebibyte_single_word_experience_is_refused_with_the_cap():
    server, loop = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        first = await _started(client)
        tid = first.content[-1].uri.rsplit("/", 1)[-1]
        return tid, await client.call_tool("refine", {"trajectory_id": tid, "prompt": "x", "experience": "w" * MIB})

    tid, result = await session(go, server)
    assert result.is_error
    assert f"at most {MAX_EXPERIENCE_CHARS} characters" in text(result)
    assert len(text(result)) < 400
    assert len(loop.store.get_trajectory(tid).rounds) == 1


@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        ("generate", {"prompt": "a red\x00 circle"}, "prompt"),
        ("generate", {"prompt": "ok", "requirements": ["Is it\x07 red?"]}, "requirements"),
        ("generate", {"prompt": "ok", "negative_prompt": "blur\x1b[31m"}, "negative_prompt"),
        ("generate", {"prompt": "ok", "intent": "x\x00"}, "intent"),
        ("recall_memory", {"query": "red\x00 circles"}, "query"),
        ("skill_shapes-world", {"prompt": "a\x00b"}, "prompt"),
        # a list sent as a JSON string (as some clients do) is checked after the SDK parses it
        ("generate", {"prompt": "ok", "layout": '[{"prompt": "a\\u0000b", "box": [0, 0, 1, 1]}]'}, "layout.0.prompt"),
    ],
)
async def test_nul_and_control_characters_are_refused(tool, args, field):
    server, loop = make()
    result = await session(lambda c: c.call_tool(tool, args), server)
    assert result.is_error
    assert field in text(result) and "control character" in text(result)
    assert loop.store.list_trajectories() == []


async def test_newlines_and_tabs_stay_allowed_in_prompts():
    server, _ = make()
    result = await session(lambda c: c.call_tool("generate", {"prompt": "a red circle\n\tand a square"}), server)
    assert not result.is_error, text(result)


@pytest.mark.parametrize("tool", ["refine", "critique", "close_trajectory", "recall_memory"])
async def test_a_huge_id_is_refused_without_being_echoed(tool):
    server, _ = make()
    args = {"trajectory_id": "t-" + "a" * MIB}
    if tool == "refine":
        args["prompt"] = "x"
    result = await session(lambda c: c.call_tool(tool, args), server)
    assert result.is_error
    assert f"at most {MAX_ID_CHARS}" in text(result)
    assert len(text(result)) < 400


@pytest.mark.parametrize("bad", ["t-abc\n", "t-abc\nt-def", "../etc/passwd", "t abc", ""])
async def test_ids_must_match_the_whole_pattern(bad):
    server, _ = make()
    result = await session(lambda c: c.call_tool("close_trajectory", {"trajectory_id": bad}), server)
    assert result.is_error
    assert "trajectory_id" in text(result)


async def test_long_strings_anywhere_are_capped():
    server, _ = make()
    layout = [{"prompt": "a red circle", "box": [0, 0, 0.5, 0.5]}]
    for args in (
        {"prompt": "ok", "negative_prompt": "n" * MIB},
        {"prompt": "ok", "layout": layout, "background": "b" * MIB},
        {"prompt": "ok", "requirements": ["Is it red?"] * 10_000},
    ):
        result = await session(lambda c, a=args: c.call_tool("generate", a), server)
        assert result.is_error and "at most" in text(result), text(result)
        assert len(text(result)) < 400


async def test_recall_holds_its_budget_including_lessons_stored_before_the_caps():
    server, loop = make()
    # lessons written by an older version, each with a huge single-word experience
    loop.store.add_lessons([
        Lesson(trajectory_id=f"t-{i}", intent="four red circles above a square", question="Are there four red circles?",
               kind="count", text="w" * MIB)
        for i in range(5)
    ])

    for budget in (600, 4000):
        result = await session(lambda c, b=budget: c.call_tool(
            "recall_memory", {"query": "four red circles above a square", "budget": b}), server)
        assert not result.is_error, text(result)
        assert "Lesson" in text(result)
        assert len(text(result)) <= budget
        assert len(str(result.structured_content)) <= 2 * budget


async def test_a_huge_resource_uri_is_refused_without_being_echoed():
    from mcp.shared.exceptions import MCPError

    server, _ = make()

    async def go(client):
        errors = []
        for uri in ("gems://trajectories/" + "a" * MIB, "gems://images/" + "b" * MIB, "skill://" + "c" * MIB):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            errors.append(caught.value)
        return errors

    for error in await session(go, server):
        assert len(str(error)) < 400 and len(str(error.error.data or "")) < 400
