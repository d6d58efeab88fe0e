"""The one mapping of the error tree to MCP: a tool's isError result (the fact plus what the agent can do about it)
and a resource read's error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from gems_mcp.errors import GemsError, JudgeError, NotFound, NotJudged, TrajectoryFinished, UnknownTrajectory


def advise(exc: GemsError) -> str:
    """The error's fact, plus what the agent can do about it."""
    fact = str(exc).rstrip(".")
    if isinstance(exc, UnknownTrajectory):
        return f"{fact}. Call recall_memory() with no arguments to list recent trajectories, or generate to start one."
    if isinstance(exc, TrajectoryFinished):
        return f"{fact}. Call generate to start a new one."
    if isinstance(exc, NotJudged):
        return (f"{fact}. Call critique('{exc.trajectory_id}') first "
                "(with verdicts=[...] if you judge the image yourself).")
    if isinstance(exc, JudgeError):
        return (f"{fact}. The round and its images are kept: call critique again once GEMS_JUDGE is fixed, "
                "or answer the questions yourself with critique(..., verdicts=[...]).")
    return f"{fact}."


async def call(awaitable: Any) -> Any:
    """Await a loop operation, turning its errors into isError tool results with advice."""
    with tool_errors():
        return await awaitable


@contextmanager
def tool_errors() -> Iterator[None]:
    """The one mapping of the error tree to tool results: an isError result, the fact plus advice."""
    try:
        yield
    except GemsError as exc:
        raise ToolError(advise(exc)) from exc


@contextmanager
def resource_errors() -> Iterator[None]:
    """The one mapping of the error tree to resources/read errors: an id naming nothing is 'not found'."""
    try:
        yield
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except GemsError as exc:  # no rounds yet, a path outside a skill, an image file deleted by hand
        raise ResourceError(str(exc)) from exc
