"""Skills over MCP: the tool list is the manifest, bodies load on call, changes on disk are announced."""

from __future__ import annotations

import json
import textwrap
import time

import anyio
import pytest
from mcp import Client

from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server
from gems_mcp.skills import SkillLibrary, default_builtin_dir
from tests.fakes import FakeGenerator

pytestmark = pytest.mark.anyio


def write_skill(root, skill_id, description, body="Say exactly what you want.", checklist=("Is it right?",)):
    folder = root / skill_id
    folder.mkdir(parents=True, exist_ok=True)
    items = "\n".join(f"  - {json.dumps(q)}" for q in checklist)
    (folder / "SKILL.md").write_text(
        textwrap.dedent(
            f"""\
            ---
            name: {skill_id}
            description: {description}
            checklist:
            """
        )
        + items
        + "\ndefaults:\n  steps: 7\n---\n"
        + body
        + "\n"
    )


def make(user_dir=None):
    settings = load_settings(skills_path=str(user_dir) if user_dir else "")
    skills = SkillLibrary(settings.skill_dirs, default_builtin_dir())
    loop = AgentLoop(settings, generator=FakeGenerator(), skills=skills)
    return create_server(settings, loop), skills


async def test_tool_list_carries_descriptions_but_no_bodies_until_a_skill_is_called():
    server, skills = make()
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        loads_after_list = skills.loads
        result = await client.call_tool("skill_text-rendering", {"prompt": 'a cafe sign saying "OPEN"'})
    info = skills.skills()
    for skill_id, skill in info.items():
        assert tools[f"skill_{skill_id}"].description == skill.description
    assert loads_after_list == 0
    body = skills.body("text-rendering")
    assert body.instructions.strip()[:60] not in json.dumps([t.description for t in tools.values()])
    text = result.content[0].text
    assert body.instructions.strip()[:60] in text
    assert all(q in text for q in body.checklist)


async def test_manifest_of_built_in_skills_stays_small():
    server, skills = make()
    async with Client(server) as client:
        tools = await client.list_tools()
    descriptions = sum(len(s.description.encode()) for s in skills.skills().values())
    assert descriptions <= 6 * 1024
    assert len(tools.model_dump_json(by_alias=True)) < 40_000


async def test_a_skill_added_on_disk_becomes_a_tool_and_list_changed_is_sent(tmp_path):
    user = tmp_path / "skills"
    write_skill(user, "watercolor", "Use for watercolor paintings; not for photos.")
    server, _ = make(user)
    notifications: list[str] = []

    async def on_message(message):
        method = getattr(getattr(message, "root", message), "method", None)
        if method:
            notifications.append(method)

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        write_skill(user, "pixel-art", "Use for pixel art sprites; not for photos.")
        deadline = time.monotonic() + 10
        while "notifications/tools/list_changed" not in notifications and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        after = {t.name for t in (await client.list_tools()).tools}
    assert "skill_watercolor" in before and "skill_pixel-art" not in before
    assert "notifications/tools/list_changed" in notifications
    assert "skill_pixel-art" in after


async def test_generate_with_a_user_skill_uses_its_questions_and_defaults(tmp_path):
    user = tmp_path / "skills"
    write_skill(user, "text-rendering", "My own text skill.", checklist=("Is the text legible?",))
    server, _ = make(user)
    async with Client(server) as client:
        result = await client.call_tool(
            "generate", {"prompt": "a sign", "skill": "text-rendering", "requirements": ["Is there a sign?"]}
        )
    text = result.content[0].text
    assert not result.is_error
    assert "? q2 Is the text legible?" in text
    assert "7 steps" in text


async def test_a_reference_file_is_read_at_the_uri_the_skill_tool_gives():
    server, _ = make()
    async with Client(server) as client:
        called = await client.call_tool("skill_text-rendering", {"prompt": "a shop sign"})
        text = called.content[0].text
        listed = text.split("## References")[1].splitlines()[1].removeprefix("- ")
        resource = await client.read_resource(f"skill://text-rendering/{listed}")
    assert listed == "references/typography.md"
    assert resource.contents[0].text.startswith("# Typography")
