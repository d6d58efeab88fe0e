"""`gems-mcp serve` as a real subprocess over stdio, the way Claude Code launches it."""

from __future__ import annotations

import os
import sys

import pytest
from mcp import Client, StdioServerParameters

from tests.tiny_pipeline import build_tiny_pipeline


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_server_lists_tools_generates_and_serves_the_image(tmp_path):
    model = build_tiny_pipeline(tmp_path / "tiny")
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "GEMS_MODEL": str(model), "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)

    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("generate", {"prompt": "a red circle", "steps": 2, "seed": 3})
        image = await client.read_resource(str(result.content[2].uri))
    assert {"generate", "refine", "critique", "recall_memory"} <= tools
    assert not result.is_error
    assert image.contents[0].mime_type == "image/png"
    assert (tmp_path / "home" / "memory.json").exists()
