"""The in-memory client the hardening tests share: a server on a fake generator and a scripted judge."""

from __future__ import annotations

from typing import Any

from mcp import Client

from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server
from tests.fakes import FakeGenerator, ScriptedJudge

QUESTIONS = ["Is there a red circle?", "Is the sky blue?"]


def make(judge: Any = None, **settings: Any) -> tuple[Any, AgentLoop]:
    s = load_settings(**settings)
    loop = AgentLoop(s, generator=FakeGenerator(), judge=judge)
    return create_server(s, loop), loop


async def session(coro_fn: Any, server: Any) -> Any:
    async with Client(server) as client:
        return await coro_fn(client)


async def call(server: Any, tool: str, args: dict[str, Any]) -> Any:
    """One tool call on a fresh connection."""
    return await session(lambda c: c.call_tool(tool, args), server)


def text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if b.type == "text")


__all__ = ["QUESTIONS", "ScriptedJudge", "call", "make", "session", "text"]
