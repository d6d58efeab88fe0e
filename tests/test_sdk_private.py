"""One test per private part of the MCP SDK that gems-mcp reaches into (pyproject pins mcp to 2.3.x for them).

When an SDK upgrade moves one, its test fails saying what moved and which of our functions used it, so the
fix starts in the right place instead of in a confusing failure elsewhere.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from mcp import Client
from pydantic import BaseModel

from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.server import GemsServer, create_server
from tests.fakes import FakeGenerator


def _server() -> GemsServer:
    settings = load_settings()
    return create_server(settings, AgentLoop(settings, generator=FakeGenerator(), judge=None))


def _needs(obj: object, attribute: str, used_by: str) -> object:
    """obj.attribute, or a failure naming the SDK change and the code of ours to fix."""
    found = getattr(obj, attribute, None)
    assert found is not None, (
        f"mcp {version('mcp')} has no {type(obj).__name__}.{attribute}, which {used_by} uses; "
        "find its public replacement (or the new private name) and update that code and the pin in pyproject.toml"
    )
    return found


def test_the_sdk_is_the_minor_version_the_private_uses_were_written_against():
    assert version("mcp").startswith("2.3."), (
        f"mcp {version('mcp')} is installed; server.py and arguments.py were written against 2.3.x "
        "(see the other tests in this file for what they use)"
    )


def test_initialization_options_can_still_be_wrapped_to_advertise_tools_list_changed():
    low = _needs(_server(), "_lowlevel_server", "GemsServer.__init__ (advertising tools.listChanged)")
    make = _needs(low, "create_initialization_options", "GemsServer.__init__")
    assert "notification_options" in inspect.signature(make).parameters, (  # type: ignore[arg-type]
        "Server.create_initialization_options no longer takes notification_options; GemsServer.__init__ passes it"
    )
    options = make()  # type: ignore[operator]
    assert options.capabilities.tools.list_changed, "the server no longer advertises tools.listChanged"


def test_the_tool_manager_still_finds_and_lists_tools():
    manager = _needs(_server(), "_tool_manager", "GemsServer.add_tool/call_tool and register_skill_tools")
    tool = _needs(manager, "get_tool", "GemsServer.call_tool")("generate")  # type: ignore[operator]
    assert tool is not None and tool.name == "generate", "ToolManager.get_tool no longer returns the tool by name"
    listed = _needs(manager, "list_tools", "register_skill_tools")()  # type: ignore[operator]
    assert "generate" in {t.name for t in listed}, "ToolManager.list_tools no longer lists registered tools"


def test_a_tools_argument_model_can_still_be_read_and_replaced():
    tool = _server()._tool_manager.get_tool("generate")
    metadata = _needs(tool, "fn_metadata", "arguments.strict/accepted/check")
    model = _needs(metadata, "arg_model", "arguments.strict (refusing unknown names and coercion)")
    assert isinstance(model, type) and issubclass(model, BaseModel), "fn_metadata.arg_model is no longer a model"
    assert model.model_config.get("extra") == "forbid", "arguments.strict's replacement model did not take"
    _needs(metadata, "pre_parse_json", "arguments.check (bounding values the SDK parses from JSON strings)")


def test_the_prompt_manager_still_finds_prompts():
    manager = _needs(_server(), "_prompt_manager", "GemsServer.get_prompt")
    prompt = _needs(manager, "get_prompt", "GemsServer.get_prompt")("gems_loop")  # type: ignore[operator]
    assert prompt is not None and [a.name for a in prompt.arguments] == ["request"], (
        "PromptManager.get_prompt no longer returns the prompt with its arguments (arguments.prompt_problem reads them)"
    )


@pytest.mark.anyio
async def test_tools_list_still_passes_through_handle_list_tools_with_the_sessions_connection():
    server = _server()
    _needs(server, "_handle_list_tools", "GemsServer._handle_list_tools (remembering sessions)")
    async with Client(server) as client:
        await client.list_tools()
        assert len(server._sessions) == 1, (
            "tools/list no longer reaches MCPServer._handle_list_tools with a session that has _connection; "
            "GemsServer cannot remember sessions to announce tools/list_changed to legacy clients"
        )
