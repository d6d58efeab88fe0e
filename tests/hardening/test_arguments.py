"""Case 4: arguments the tools do not take, wrong types and coercions are refused in one sentence each."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.hardening._client import make, session, text

pytestmark = pytest.mark.anyio


async def test_every_input_schema_refuses_unknown_names():
    server, _ = make()
    tools = (await session(lambda c: c.list_tools(), server)).tools
    assert len(tools) > 5
    for tool in tools:
        assert tool.input_schema.get("additionalProperties") is False, tool.name


async def test_an_unknown_argument_is_refused_with_the_accepted_names():
    server, loop = make()
    result = await session(lambda c: c.call_tool("generate", {"prompt": "x", "guidance_scale": 7.5}), server)
    assert result.is_error
    message = text(result)
    assert "'guidance_scale'" in message and "guidance" in message.split("accepts", 1)[1]
    assert loop.store.list_trajectories() == []


async def test_type_errors_are_one_sentence_per_field_without_urls():
    server, _ = make()
    result = await session(lambda c: c.call_tool("generate", {"prompt": "x", "n": "three", "seed": [1]}), server)
    assert result.is_error
    message = text(result)
    assert "n:" in message and "seed:" in message
    assert "http" not in message and "pydantic" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("recall_memory", {"budget": 0}),
        ("recall_memory", {"budget": "5000"}),
        ("generate", {"prompt": "x", "n": "2"}),
        ("generate", {"prompt": "x", "n": 2.0}),
        ("generate", {"prompt": "x", "width": True}),
    ],
)
async def test_no_silent_coercion(tool, args):
    server, _ = make()
    result = await session(lambda c: c.call_tool(tool, args), server)
    assert result.is_error, text(result)
    assert len(text(result)) < 300


async def test_an_unknown_tool_name_is_not_echoed_whole():
    server, _ = make()
    result = await session(lambda c: c.call_tool("x" * 100_000, {}), server)
    assert result.is_error and len(text(result)) < 200


async def test_a_prompt_fetched_without_its_required_argument_is_invalid_params():
    server, _ = make()

    async def go(client):
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("gems_loop", {})
        ok = await client.get_prompt("gems_loop", {"request": "a red circle"})
        return caught.value, ok

    error, ok = await session(go, server)
    assert error.code == INVALID_PARAMS
    assert "request" in error.message and "Internal" not in error.message
    assert ok.messages


async def test_a_prompt_argument_with_a_nul_byte_is_invalid_params():
    server, _ = make()

    async def go(client):
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("gems_loop", {"request": "a\x00b"})
        return caught.value

    assert (await session(go, server)).code == INVALID_PARAMS


async def test_the_server_answers_after_every_refusal():
    server, _ = make()

    async def go(client):
        for args in ({"budget": 0}, {"x": 1}, {"trajectory_id": "\x00"}):
            assert (await client.call_tool("recall_memory", args)).is_error
        return await client.call_tool("recall_memory", {})

    assert not (await session(go, server)).is_error
