"""Stage the Claude Desktop bundle (MCPB) in a folder, ready for `mcpb pack`.

    python scripts/mcpb/build.py dist/mcpb        (scripts/build_mcpb.sh runs it, then packs)

The folder gets manifest.json, a pyproject.toml that makes the host's uv install this version of
gems-mcp, server/main.py (the entry point), icon.png (the Claude Code plugin's, one icon for both) and
LICENSE. The manifest's tools and prompts come from the real server, listed in-process through the MCP
SDK's client, so they cannot drift from what the server offers.

    python scripts/mcpb/build.py --draw-icon plugins/gems-mcp/.claude-plugin/icon.png   (redraws the icon)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from PIL import Image, ImageDraw

from gems_mcp import __version__
from gems_mcp.config import Settings, load_settings
from gems_mcp.server import create_server

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ICON = ROOT / "plugins" / "gems-mcp" / ".claude-plugin" / "icon.png"

# The latest manifest version the MCPB CLI knows (LATEST_MANIFEST_VERSION in @anthropic-ai/mcpb 2.1);
# 0.4 is the first with the "uv" server type, which installs Python and the package for the user.
MANIFEST_VERSION = "0.4"

# What the install form asks for, by manifest key: (the Settings field it sets, type, title, default).
# Defaults are what the server does when the field is left as it is: "" is unset (the embedded model,
# the platform's data folder).
USER_CONFIG: dict[str, tuple[str, str, str, str]] = {
    "model": ("model", "string", "Model", ""),
    "judge": ("judge", "string", "Judge", "auto"),
    "home": ("home", "directory", "Data folder", ""),
}
FORM_TEXT = {
    "model": "A diffusers text-to-image pipeline: a Hugging Face hub id (stabilityai/sdxl-turbo, "
    "Tongyi-MAI/Z-Image-Turbo) or a local folder. Leave empty for the embedded shapes-world model, which runs "
    "offline on a CPU.",
    "judge": "Who checks each image against the checklist: auto (the model's exact judge when it has one), none "
    "(Claude answers the questions itself), vlm:<model>, detect:<model> or detect:<model>,vlm:<model>.",
    "home": "Where the trajectory memory, the lessons and every image are kept. Leave empty for the user data "
    "folder (gems-mcp doctor prints it; gems-mcp gallery shows its trajectories).",
}


def env_name(field: str) -> str:
    """The environment variable a Settings field is read from."""
    return f"GEMS_{field.upper()}"


def user_config() -> dict[str, dict[str, Any]]:
    fields = Settings.model_fields
    config = {}
    for key, (field, kind, title, default) in USER_CONFIG.items():
        assert field in fields, f"{field} is not a setting"
        config[key] = {"type": kind, "title": title, "description": FORM_TEXT[key], "required": False,
                       "default": default}
    return config


async def server_surface() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The built-in tools and prompts, as a client sees them (no model is loaded to list them)."""
    with tempfile.TemporaryDirectory() as home:
        # Explicit values win over the builder's own GEMS_* environment: the manifest lists what a fresh
        # install offers, built-in skills only.
        settings = load_settings(home=home, model=None, judge="auto", skills_path="")
        async with Client(create_server(settings)) as client:
            tools = [{"name": t.name, "description": _first_line(t.description)}
                     for t in (await client.list_tools()).tools]
            prompts = []
            for prompt in (await client.list_prompts()).prompts:
                names = [a.name for a in prompt.arguments or []]
                # MCPB prompt text takes ${arguments.<name>}; the server fills the template with it.
                rendered = await client.get_prompt(prompt.name, {n: f"${{arguments.{n}}}" for n in names})
                text = "\n\n".join(m.content.text for m in rendered.messages if m.content.type == "text")
                prompts.append({"name": prompt.name, "description": prompt.description or "", "arguments": names,
                                "text": text})
    return tools, prompts


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def manifest(tools: list[dict[str, str]], prompts: list[dict[str, Any]]) -> dict[str, Any]:
    registry = json.loads((ROOT / "server.json").read_text())
    env = {env_name(field): f"${{user_config.{key}}}" for key, (field, *_rest) in USER_CONFIG.items()}
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": "gems-mcp",
        "display_name": registry["title"],
        "version": __version__,
        "description": registry["description"],
        "long_description": (
            "Claude drives a local diffusion model in the GEMS loop: it plans the prompt and a yes/no checklist, "
            "lays objects out in boxes, generates several candidates at once, reads the judge's verdicts and "
            "where each object was found, and refines by repainting only the wrong regions, until every question "
            "passes. Trajectories, images and the lessons they leave are kept in a local folder. With no model "
            "set it runs an embedded shapes-world model offline on a CPU; set a diffusers pipeline for real images "
            "(a GPU is advised)."
        ),
        "author": {"name": "the gems-mcp authors"},
        "repository": {"type": "git", "url": "https://github.com/gems-mcp/gems-mcp"},
        "license": "MIT",
        "keywords": ["image-generation", "diffusion", "text-to-image", "agent", "gems"],
        "icon": "icon.png",
        "server": {
            "type": "uv",
            "entry_point": "server/main.py",
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--quiet", "--directory", "${__dirname}", "server/main.py"],
                "env": env,
            },
        },
        "tools": tools,
        # Skill folders the user adds (GEMS_SKILLS_PATH) become skill_<id> tools at run time.
        "tools_generated": True,
        "prompts": prompts,
        "prompts_generated": False,
        "compatibility": {"platforms": ["darwin", "win32", "linux"], "runtimes": {"python": ">=3.11"}},
        "user_config": user_config(),
    }


def pyproject() -> str:
    """The bundle's project: uv installs exactly this version of gems-mcp into the host-managed env."""
    return (
        "[project]\n"
        'name = "gems-mcp-bundle"\n'
        f'version = "{__version__}"\n'
        'description = "Claude Desktop bundle of gems-mcp: installs the package and starts its server."\n'
        'requires-python = ">=3.11"\n'
        f'dependencies = ["gems-mcp=={__version__}"]\n'
        "\n"
        "[tool.uv]\n"
        "package = false\n"
    )


def draw_icon(path: Path, size: int = 512) -> None:
    """The shapes world on a dark tile: a red circle left of a blue square, a yellow triangle above, a check."""
    scale = 4  # draw large, then downsample: smooth edges without an antialiasing API
    s = size * scale
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    u = s / 16
    draw.rounded_rectangle([0, 0, s - 1, s - 1], radius=3 * u, fill=(27, 31, 46, 255))
    draw.polygon([(8 * u, 2 * u), (10.6 * u, 6.4 * u), (5.4 * u, 6.4 * u)], fill=(242, 201, 76, 255))
    draw.ellipse([2 * u, 7.5 * u, 7 * u, 12.5 * u], fill=(226, 74, 74, 255))
    draw.rectangle([9 * u, 7.5 * u, 14 * u, 12.5 * u], fill=(66, 133, 244, 255))
    draw.ellipse([10.4 * u, 10.4 * u, 15.4 * u, 15.4 * u], fill=(46, 160, 90, 255), outline=(27, 31, 46, 255),
                 width=int(0.45 * u))
    draw.line([(11.6 * u, 12.9 * u), (12.6 * u, 13.9 * u), (14.3 * u, 11.8 * u)], fill=(255, 255, 255, 255),
              width=int(0.55 * u), joint="curve")
    image.resize((size, size), Image.Resampling.LANCZOS).save(path)


def stage(out: Path) -> dict[str, Any]:
    """Write the bundle's files into out (emptied first); returns the manifest."""
    if out.exists():
        shutil.rmtree(out)
    (out / "server").mkdir(parents=True)
    tools, prompts = anyio.run(server_surface)
    data = manifest(tools, prompts)
    (out / "manifest.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (out / "pyproject.toml").write_text(pyproject())
    shutil.copyfile(HERE / "main.py", out / "server" / "main.py")
    shutil.copyfile(ROOT / "LICENSE", out / "LICENSE")
    shutil.copyfile(ICON, out / "icon.png")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage the gems-mcp MCPB bundle in a folder (then: mcpb pack).")
    parser.add_argument("out", type=Path, help="folder to write (emptied first), e.g. dist/mcpb")
    parser.add_argument("--draw-icon", action="store_true", help="instead, draw the 512x512 icon PNG at OUT")
    args = parser.parse_args(argv)
    if args.draw_icon:
        draw_icon(args.out)
        return 0
    data = stage(args.out)
    print(f"{args.out}: manifest {data['manifest_version']}, gems-mcp {data['version']}, "
          f"{len(data['tools'])} tools, {len(data['prompts'])} prompt(s), asks for: {', '.join(data['user_config'])}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
