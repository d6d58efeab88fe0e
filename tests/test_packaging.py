"""server.json and pyproject stay in step with the package and its settings."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from gems_mcp import __version__
from gems_mcp.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_server_json_matches_the_package_version_and_every_setting():
    manifest = json.loads((ROOT / "server.json").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert manifest["$schema"].endswith("/2025-12-11/server.schema.json")
    assert manifest["name"].startswith("io.github.") and manifest["name"].endswith("/gems-mcp")
    assert len(manifest["description"]) <= 100
    assert manifest["version"] == project["version"] == __version__
    (package,) = manifest["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == project["name"]
    assert package["version"] == __version__
    assert package["runtimeHint"] == "uvx" and package["transport"] == {"type": "stdio"}
    declared = {e["name"]: e for e in package["environmentVariables"]}
    expected = {f"GEMS_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert set(declared) == set(expected), "run scripts/sync_server_json.py after adding a setting"
    for name, field in expected.items():
        entry = declared[name]
        assert entry["description"] == field.description
        if field.default_factory is None and field.default is not None:
            default = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
            assert entry["default"] == default, name


def test_console_script_points_at_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["gems-mcp"] == "gems_mcp:main"
    assert "mcp>=2.3,<2.4" in project["dependencies"]  # the minor version of the private uses (test_sdk_private)


def test_readme_names_the_registry_entry_of_server_json_and_the_license_is_mit():
    manifest = json.loads((ROOT / "server.json").read_text())
    readme = (ROOT / "README.md").read_text()
    # The MCP registry verifies a PyPI package by this line in its README (the PyPI description).
    assert f"<!-- mcp-name: {manifest['name']} -->" in readme
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and "LICENSE" in project["license-files"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the gems-mcp authors")


def test_the_gallery_pages_ship_inside_the_package():
    from importlib import resources

    static = resources.files("gems_mcp.gallery").joinpath("static")
    names = {entry.name for entry in static.iterdir()}
    assert {"index.html", "app.html", "render.js", "gallery.js", "app.js", "gallery.css"} <= names
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["gems_mcp"]  # hatch ships every file under gems_mcp/, html and js included
