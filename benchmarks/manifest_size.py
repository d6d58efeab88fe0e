"""Bytes of tools/list with every built-in skill: the cost of the manifest in the agent's context.

Usage: python benchmarks/manifest_size.py
"""

from __future__ import annotations

import tempfile

import anyio
from mcp import Client

from gems_mcp.config import load_settings
from gems_mcp.server import create_server


async def main() -> None:
    settings = load_settings(home=tempfile.mkdtemp(prefix="gems-manifest-"))
    async with Client(create_server(settings)) as client:
        tools = (await client.list_tools()).tools
    skills = [t for t in tools if t.name.startswith("skill_")]
    loop_tools = [t for t in tools if not t.name.startswith("skill_")]
    total = sum(len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in tools)
    skill_bytes = sum(len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in skills)
    descriptions = sum(len((t.description or "").encode()) for t in skills)
    print(f"tools/list: {len(tools)} tools, {total} bytes of JSON")
    print(f"  loop tools ({len(loop_tools)}): {total - skill_bytes} bytes (budget 15000, kept by tests/test_agent_path.py)")
    print(f"  skill tools ({len(skills)}): {skill_bytes} bytes, of which descriptions {descriptions} bytes (target <= 6144)")
    for t in skills:
        print(f"    {t.name:<28}{len((t.description or '').encode()):>6} bytes")


if __name__ == "__main__":
    anyio.run(main)
