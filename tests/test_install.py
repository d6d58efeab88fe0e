"""The install paths stay in step with the package: the Claude Code marketplace and plugin, the Claude
Desktop bundle's manifest, and the README's one-click links (no npm here: scripts/check_install.sh runs the
real CLIs)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
import tomllib
import typing
import urllib.parse
from pathlib import Path

import pytest
import yaml
from mcp import Client, StdioServerParameters
from PIL import Image

from gems_mcp import __version__
from gems_mcp.config import Settings, load_settings
from gems_mcp.loop import RefineMode
from gems_mcp.server import create_server

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "gems-mcp"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def front_matter(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.DOTALL)
    assert match, f"{path} has no front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


def setting_env_names() -> set[str]:
    return {f"GEMS_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def build():
    """scripts/mcpb/build.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("mcpb_build", ROOT / "scripts" / "mcpb" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def staged(build, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "mcpb"
    return out, build.stage(out)


async def server_tool_names() -> list[str]:
    async with Client(create_server(load_settings())) as client:
        return [t.name for t in (await client.list_tools()).tools]


# -- Claude Code: marketplace and plugin ---------------------------------------------------------


def test_the_marketplace_lists_the_plugin_folder_at_the_package_version():
    market = read_json(ROOT / ".claude-plugin" / "marketplace.json")
    assert market["owner"]["name"] and market["name"] == "gems-mcp"
    (entry,) = market["plugins"]
    plugin = read_json(PLUGIN / ".claude-plugin" / "plugin.json")
    assert (ROOT / entry["source"]).resolve() == PLUGIN
    assert entry["name"] == plugin["name"] == "gems-mcp"
    assert entry["version"] == plugin["version"] == market["metadata"]["version"] == PROJECT["version"] == __version__
    assert entry["description"] == plugin["description"]


def test_the_plugin_server_runs_uvx_gems_mcp_serve_with_settings_passed_from_the_environment(monkeypatch):
    (name, server), = read_json(PLUGIN / ".mcp.json")["mcpServers"].items()
    assert name == "gems"
    assert server["command"] == "uvx" and server["args"] == [PROJECT["name"], "serve"]
    assert {"GEMS_MODEL", "GEMS_JUDGE", "GEMS_HOME"} <= set(server["env"]) <= setting_env_names()
    defaults = {}
    for variable, value in server["env"].items():
        # ${GEMS_X:-default}: the user's own variable wins; without it, the default.
        match = re.fullmatch(r"\$\{(\w+):-(.*)\}", value)
        assert match and match.group(1) == variable, f"{variable} must pass ${{{variable}:-...}} through"
        defaults[variable] = match.group(2)
    assert_defaults_mean_unset(monkeypatch, defaults)


def assert_defaults_mean_unset(monkeypatch, defaults: dict[str, str]) -> None:
    """A client that fills these defaults in gets the server it would get with the variables unset."""
    for variable in defaults:
        monkeypatch.delenv(variable, raising=False)
    unset = load_settings()
    for variable, value in defaults.items():
        monkeypatch.setenv(variable, value)
    assert load_settings() == unset


def test_each_plugin_skill_is_named_after_its_folder_and_says_when_to_use_it():
    skills = sorted(p for p in (PLUGIN / "skills").iterdir() if p.is_dir())
    assert {p.name for p in skills} >= {"image-loop", "fix-failures", "read-critique"}
    for folder in skills:
        meta, body = front_matter(folder / "SKILL.md")
        assert meta["name"] == folder.name
        assert meta["description"].startswith("Use ") and len(meta["description"]) <= 1024
        assert len(body.split()) > 150, f"{folder.name} teaches too little"


@pytest.mark.anyio
async def test_the_skills_and_command_name_only_tools_and_modes_the_server_has():
    tools = set(await server_tool_names())
    modes = set(typing.get_args(RefineMode))
    texts = [p.read_text() for p in [*PLUGIN.glob("skills/*/SKILL.md"), *PLUGIN.glob("commands/*.md")]]
    called = {m for text in texts for m in re.findall(r"`([a-z_]+)\(", text)}
    assert called and called <= tools, f"not tools of the server: {called - tools}"
    named = {m for text in texts for m in re.findall(r"`(generate|refine|critique|recall_memory|close_trajectory)`", text)}
    assert named <= tools
    used_modes = {m for text in texts for m in re.findall(r'mode="(\w+)"', text)}
    assert used_modes and used_modes <= modes, f"not refine modes: {used_modes - modes}"


def test_the_command_runs_the_loop_on_the_request_it_is_given():
    (command,) = PLUGIN.glob("commands/*.md")
    meta, body = front_matter(command)
    assert meta["description"] and meta["argument-hint"]
    assert "$ARGUMENTS" in body
    for step in ("generate", "refine", "requirements", "layout"):
        assert step in body


# -- Claude Desktop: the MCPB manifest -----------------------------------------------------------


@pytest.mark.anyio
async def test_the_manifest_lists_exactly_the_tools_and_prompts_the_server_offers(staged):
    _, manifest = staged
    assert [t["name"] for t in manifest["tools"]] == await server_tool_names()
    assert all(t["description"] for t in manifest["tools"])
    (prompt,) = manifest["prompts"]
    assert prompt["name"] == "gems_loop" and prompt["arguments"] == ["request"]
    assert "${arguments.request}" in prompt["text"] and "refine" in prompt["text"]


def test_the_manifest_is_the_current_version_with_a_uv_server_that_installs_this_package(staged):
    out, manifest = staged
    assert manifest["manifest_version"] == "0.4"
    assert manifest["name"] == PROJECT["name"] and manifest["version"] == PROJECT["version"] == __version__
    server = manifest["server"]
    assert server["type"] == "uv" and (out / server["entry_point"]).is_file()
    assert server["mcp_config"]["command"] == "uv" and server["entry_point"] in server["mcp_config"]["args"]
    bundle_project = tomllib.loads((out / "pyproject.toml").read_text())["project"]
    assert bundle_project["dependencies"] == [f"{PROJECT['name']}=={__version__}"]
    assert bundle_project["requires-python"] == PROJECT["requires-python"]
    # One icon for both installs: the plugin's, 512x512 as Claude Desktop and the plugin directory ask.
    assert (out / manifest["icon"]).read_bytes() == (PLUGIN / ".claude-plugin" / "icon.png").read_bytes()
    with Image.open(out / manifest["icon"]) as icon:
        assert icon.format == "PNG" and icon.size == (512, 512)


def test_the_manifest_asks_for_the_model_judge_and_data_folder_as_real_settings(staged):
    _, manifest = staged
    asks, env = manifest["user_config"], manifest["server"]["mcp_config"]["env"]
    assert {"model", "judge", "home"} <= set(asks)
    assert env["GEMS_MODEL"] == "${user_config.model}"
    assert set(env) <= setting_env_names()
    used = {re.fullmatch(r"\$\{user_config\.(\w+)\}", value).group(1) for value in env.values()}
    assert used == set(asks), "every question in the form sets a variable, and only those"
    assert asks["home"]["type"] == "directory"
    for entry in asks.values():
        assert entry["title"] and entry["description"] and entry["required"] is False


def test_the_forms_defaults_give_the_same_settings_as_leaving_the_variables_unset(staged, monkeypatch):
    _, manifest = staged
    asks = manifest["user_config"]
    defaults = {variable: str(asks[value.removeprefix("${user_config.").removesuffix("}")]["default"])
                for variable, value in manifest["server"]["mcp_config"]["env"].items()}
    assert_defaults_mean_unset(monkeypatch, defaults)


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_bundle_entry_point_serves_with_the_settings_a_host_substitutes(staged, tmp_path):
    out, manifest = staged
    config = manifest["server"]["mcp_config"]
    home = tmp_path / "chosen-home"
    # What an MCPB host passes: the folder the user picked, the judge's default, and a placeholder it had
    # no value for (left as written, as the MCPB library does without a default).
    filled = {"${user_config.home}": str(home), "${user_config.judge}": "auto"}
    env = {k: filled.get(v, v) for k, v in config["env"].items()}
    assert env["GEMS_MODEL"] == "${user_config.model}"
    params = StdioServerParameters(
        command=sys.executable, args=[str(out / manifest["server"]["entry_point"])], cwd=str(out),
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        recent = await client.call_tool("recall_memory", {})
    assert tools == [t["name"] for t in manifest["tools"]]
    assert not recent.is_error
    assert (home / "memory.json").exists()


def test_an_empty_gems_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("GEMS_HOME", "GEMS_MODEL", "GEMS_JUDGE", "GEMS_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    unset = load_settings()
    for name in ("GEMS_HOME", "GEMS_MODEL", "GEMS_JUDGE", "GEMS_RETENTION_DAYS"):
        monkeypatch.setenv(name, "")
    empty = load_settings()
    assert empty == unset
    assert empty.home != Path("") and empty.home.is_absolute()


# -- VS Code and Cursor one-click links ----------------------------------------------------------


def plugin_command() -> tuple[str, list[str]]:
    server = read_json(PLUGIN / ".mcp.json")["mcpServers"]["gems"]
    return server["command"], server["args"]


def test_the_readme_vscode_links_install_the_same_server_as_the_plugin():
    readme = (ROOT / "README.md").read_text()
    command, args = plugin_command()
    links = re.findall(r"\((https://insiders\.vscode\.dev/redirect\?url=[^)\s]+)\)", readme)
    assert len(links) == 2
    schemes = set()
    for link in links:
        inner = urllib.parse.unquote(link.split("url=", 1)[1])
        scheme, _, query = inner.partition(":mcp/install?")
        schemes.add(scheme)
        # VS Code's documented form: vscode:mcp/install?<encodeURIComponent(JSON of the --add-mcp object)>
        config = json.loads(urllib.parse.unquote(query))
        assert config == {"name": "gems", "command": command, "args": args}
        assert f"`{inner}`" in readme or scheme == "vscode-insiders"
    assert schemes == {"vscode", "vscode-insiders"}
    assert f"code --add-mcp '{json.dumps(config, separators=(',', ':'))}'" in readme


def test_the_readme_cursor_links_install_the_same_server_as_the_plugin():
    readme = (ROOT / "README.md").read_text()
    command, args = plugin_command()
    (deeplink,) = re.findall(r"cursor://anysphere\.cursor-deeplink/mcp/install\?[^`\s)]+", readme)
    (web,) = re.findall(r"https://cursor\.com/install-mcp\?[^)\s]+", readme)
    for link in (deeplink, web):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        assert query["name"] == ["gems"]
        # Cursor's documented form: name=<name>&config=<base64 of the server's JSON config>
        assert json.loads(base64.b64decode(query["config"][0])) == {"command": command, "args": args}
