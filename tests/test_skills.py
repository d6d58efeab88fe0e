"""The skill library: manifest from headers only, bodies on demand, overrides, errors, reload, CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio
import pytest

from gems_mcp.commands.skills import add_skills_command
from gems_mcp.errors import InvalidRequest
from gems_mcp.skills import (
    MAX_DESCRIPTION_CHARS,
    InvalidSkill,
    SkillLibrary,
    UnknownReference,
    UnknownSkill,
    default_builtin_dir,
    watch,
)

BUILTINS = {
    "aesthetic-drawing",
    "consistent-style",
    "creative-drawing",
    "logo-icon",
    "poster-design",
    "product-photography",
    "shapes-world",
    "spatial-layout",
    "text-rendering",
}


def write_skill(
    root: Path,
    folder: str,
    *,
    name: str | None = None,
    description: str = "Use when testing.",
    body: str = "# Steps\n\nDo the thing.\n",
    extra: str = "",
) -> Path:
    """A SKILL.md in root/folder with front matter; name defaults to the folder name."""
    skill = root / folder
    skill.mkdir(parents=True, exist_ok=True)
    name_line = "" if name == "" else f"name: {name if name is not None else folder}\n"
    text = f"---\n{name_line}description: {description!r}\n{extra}---\n{body}"
    (skill / "SKILL.md").write_text(text, encoding="utf-8")
    return skill


def builtin_library() -> SkillLibrary:
    builtin = default_builtin_dir()
    assert builtin is not None, "the repository's skills/ folder should be found"
    return SkillLibrary([], builtin)


# ---------------------------------------------------------------- built-ins


def test_builtin_skills_all_load_without_errors():
    library = builtin_library()

    assert library.errors == []
    assert set(library.skills()) == BUILTINS
    assert library.check() == []
    for skill_id, info in library.skills().items():
        body = library.body(skill_id)
        assert info.source == "builtin"
        assert len(body.instructions) > 500, f"{skill_id} needs real instructions"
        assert 2 <= len(body.checklist) <= 4
        for reference in body.references:
            assert library.reference(skill_id, reference).strip()


def test_builtin_descriptions_fit_the_manifest_budget():
    total = sum(len(info.description.encode()) for info in builtin_library().skills().values())
    assert total <= 6 * 1024


def test_shapes_world_skill_names_every_color_of_the_embedded_world():
    world = pytest.importorskip("gems_mcp.shapes.world")
    info = builtin_library().skills()["shapes-world"]
    instructions = builtin_library().body("shapes-world").instructions

    for word in (*world.COLORS, *world.SHAPES):
        assert word in info.description
        assert f"`{word}`" in instructions


# ---------------------------------------------------------------- on-demand bodies


def test_scanning_lists_skills_without_loading_their_bodies(tmp_path):
    write_skill(tmp_path, "alpha", body="Alpha instructions.\n")
    library = SkillLibrary([tmp_path])

    assert library.skills()["alpha"].description == "Use when testing."
    assert library.loads == 0
    assert library.body("alpha").instructions == "Alpha instructions."
    assert library.body("alpha").instructions == "Alpha instructions."
    assert library.loads == 1


def test_scanning_never_decodes_the_body(tmp_path):
    skill = write_skill(tmp_path, "alpha")
    with (skill / "SKILL.md").open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n")
    library = SkillLibrary([tmp_path])

    assert "alpha" in library.skills() and library.errors == []
    with pytest.raises(InvalidSkill, match="UTF-8"):
        library.body("alpha")
    assert [p.path for p in library.check()] == [skill / "SKILL.md"]


def test_body_carries_checklist_defaults_examples_and_references(tmp_path):
    extra = (
        "checklist:\n  - Is the text legible?\n"
        "defaults:\n  width: 768\n  height: 512\n  guidance: 7\n  negative_prompt: blurry\n"
        'examples:\n  - a sign that reads "OPEN"\n'
    )
    skill = write_skill(tmp_path, "alpha", extra=extra)
    (skill / "references").mkdir()
    (skill / "references" / "notes.md").write_text("serif vs sans", encoding="utf-8")

    body = SkillLibrary([tmp_path]).body("alpha")

    assert body.checklist == ["Is the text legible?"]
    assert (body.defaults.width, body.defaults.height, body.defaults.guidance) == (768, 512, 7.0)
    assert body.defaults.steps is None and body.defaults.negative_prompt == "blurry"
    assert body.examples == ['a sign that reads "OPEN"']
    assert body.references == ["references/notes.md"]


def test_unknown_skill_error_names_the_known_ids(tmp_path):
    write_skill(tmp_path, "alpha")
    with pytest.raises(UnknownSkill, match="known skills: alpha"):
        SkillLibrary([tmp_path]).body("beta")


def test_skill_defaults_are_the_shared_image_params_and_errors_hang_on_the_one_tree():
    from gems_mcp import errors
    from gems_mcp.skills import SkillDefaults
    from gems_mcp.types import ImageParams

    assert issubclass(SkillDefaults, ImageParams)
    assert set(SkillDefaults.model_fields) == set(ImageParams.model_fields)
    assert InvalidSkill is errors.InvalidSkill
    assert issubclass(UnknownSkill, errors.NotFound) and issubclass(UnknownReference, errors.NotFound)


# ---------------------------------------------------------------- precedence


def test_user_skill_overrides_builtin_with_the_same_id(tmp_path):
    write_skill(tmp_path / "builtin", "alpha", description="Built-in.", body="Built-in body.\n")
    write_skill(tmp_path / "user", "alpha", description="Mine.", body="My body.\n")
    library = SkillLibrary([tmp_path / "user"], tmp_path / "builtin")

    info = library.skills()["alpha"]
    assert (info.source, info.description) == ("user", "Mine.")
    assert library.body("alpha").instructions == "My body."


def test_earlier_user_folder_wins_over_later_one(tmp_path):
    write_skill(tmp_path / "first", "alpha", description="First.")
    write_skill(tmp_path / "second", "alpha", description="Second.")
    library = SkillLibrary([tmp_path / "first", tmp_path / "second"])

    assert library.skills()["alpha"].description == "First."


def test_broken_user_copy_leaves_the_builtin_in_place(tmp_path):
    write_skill(tmp_path / "builtin", "alpha", description="Built-in.")
    write_skill(tmp_path / "user", "alpha", name="other")
    library = SkillLibrary([tmp_path / "user"], tmp_path / "builtin")

    assert library.skills()["alpha"].source == "builtin"
    assert [e.path for e in library.errors] == [tmp_path / "user" / "alpha" / "SKILL.md"]


def test_missing_user_folder_is_reported_not_fatal(tmp_path):
    write_skill(tmp_path / "builtin", "alpha")
    library = SkillLibrary([tmp_path / "nowhere"], tmp_path / "builtin")

    assert set(library.skills()) == {"alpha"}
    assert "cannot be listed" in library.errors[0].message


# ---------------------------------------------------------------- malformed skills


def _bad_yaml(root: Path) -> None:
    skill = root / "bad"
    skill.mkdir()
    (skill / "SKILL.md").write_text("---\nname: bad\ndescription: [unclosed\n---\nbody\n")


def _escaping_reference(root: Path) -> None:
    skill = write_skill(root, "bad")
    (skill / "references").mkdir()
    secret = root.parent / "secret.txt"
    secret.write_text("do not read")
    (skill / "references" / "notes.md").symlink_to(secret)


def _no_header(root: Path) -> None:
    (root / "bad").mkdir()
    (root / "bad" / "SKILL.md").write_text("Just some text.\n")


MALFORMED = {
    "bad yaml": (_bad_yaml, "not valid YAML"),
    "missing name": (lambda root: write_skill(root, "bad", name=""), "has no 'name'"),
    "name with ../": (lambda root: write_skill(root, "bad", name="../x"), "is not allowed"),
    "name != folder": (lambda root: write_skill(root, "bad", name="other"), "must equal the folder name"),
    "oversize description": (
        lambda root: write_skill(root, "bad", description="x" * (MAX_DESCRIPTION_CHARS + 1)),
        f"at most {MAX_DESCRIPTION_CHARS}",
    ),
    "missing description": (lambda root: write_skill(root, "bad", description=""), "no 'description'"),
    "bad defaults": (lambda root: write_skill(root, "bad", extra="defaults:\n  width: '512'\n"), "defaults.width"),
    "unknown default": (lambda root: write_skill(root, "bad", extra="defaults:\n  seed: 3\n"), "defaults.seed"),
    "default out of range": (
        lambda root: write_skill(root, "bad", extra="defaults:\n  width: 100\n"),
        "defaults.width = 100 is not allowed (must be a multiple of 8 from 16 to 4096)",
    ),
    "defaults not a mapping": (
        lambda root: write_skill(root, "bad", extra="defaults: 512\n"),
        "'defaults' must be a mapping of width, height, steps, guidance, negative_prompt",
    ),
    "checklist not questions": (
        lambda root: write_skill(root, "bad", extra="checklist:\n  - text is legible\n"),
        "ending with '?'",
    ),
    "oversize body": (lambda root: write_skill(root, "bad", body="word " * 5000), "under 5000 tokens"),
    "escaping reference": (_escaping_reference, "outside the skill folder"),
    "no header": (_no_header, "must start with YAML front matter"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_skill_is_reported_and_skipped_while_the_rest_load(tmp_path, case, caplog):
    root = tmp_path / "skills"
    root.mkdir()
    write_skill(root, "good")
    make, message = MALFORMED[case]
    make(root)

    library = SkillLibrary([root])

    assert set(library.skills()) == {"good"}
    assert [e.path for e in library.errors] == [root / "bad" / "SKILL.md"]
    assert message in library.errors[0].message
    assert f"skipping skill: {root / 'bad' / 'SKILL.md'}" in caplog.text


# ---------------------------------------------------------------- GEMS format


def test_gems_style_skill_loads_with_the_folder_as_id(tmp_path):
    skill = tmp_path / "Text_Rendering"
    skill.mkdir()
    (skill / "SKILL.md").write_text(
        "# Skill: Text Rendering\n\n## Description\nUse when the image contains text.\n\n"
        "## Instructions\n1. Quote the text.\n2. Name the surface.\n",
        encoding="utf-8",
    )
    library = SkillLibrary([tmp_path])

    info = library.skills()["text-rendering"]
    assert (info.name, info.description) == ("Text Rendering", "Use when the image contains text.")
    assert library.body("text-rendering").instructions == "1. Quote the text.\n2. Name the surface."
    assert library.errors == []


# ---------------------------------------------------------------- references


def test_reference_reads_only_files_inside_the_skill_folder(tmp_path):
    skill = write_skill(tmp_path, "alpha")
    (skill / "references").mkdir()
    (skill / "references" / "notes.md").write_text("kerning tips", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("do not read")
    library = SkillLibrary([tmp_path])

    assert library.reference("alpha", "references/notes.md") == "kerning tips"
    for bad in ("/etc/passwd", "../secret.txt", "references/../../secret.txt"):
        with pytest.raises(InvalidRequest, match="not allowed"):
            library.reference("alpha", bad)
    with pytest.raises(UnknownReference, match="references/notes.md"):
        library.reference("alpha", "SKILL.md")


# ---------------------------------------------------------------- reload and watch


def test_reload_picks_up_new_changed_and_removed_skills(tmp_path):
    write_skill(tmp_path, "alpha", body="Old body.\n")
    library = SkillLibrary([tmp_path])
    assert library.body("alpha").instructions == "Old body."
    assert library.reload() is False

    write_skill(tmp_path, "beta")
    assert library.reload() is True
    assert set(library.skills()) == {"alpha", "beta"}

    write_skill(tmp_path, "alpha", description="Use when testing changes.", body="New body.\n")
    assert library.reload() is True
    assert library.skills()["alpha"].description == "Use when testing changes."
    assert library.body("alpha").instructions == "New body."

    (tmp_path / "beta" / "SKILL.md").unlink()
    assert library.reload() is True
    assert set(library.skills()) == {"alpha"}
    assert library.reload() is False


def test_reload_notices_a_new_reference_file(tmp_path):
    skill = write_skill(tmp_path, "alpha")
    library = SkillLibrary([tmp_path])
    (skill / "references").mkdir()
    (skill / "references" / "notes.md").write_text("new notes")

    assert library.reload() is True
    assert library.body("alpha").references == ["references/notes.md"]


@pytest.mark.anyio
async def test_watch_calls_on_change_when_a_skill_appears(tmp_path):
    library = SkillLibrary([tmp_path])
    calls: list[set[str]] = []
    changed = anyio.Event()

    async def on_change() -> None:
        calls.append(set(library.skills()))
        changed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, library, on_change, 0.01)
        await anyio.sleep(0.05)
        write_skill(tmp_path, "alpha")
        with anyio.fail_after(5):
            await changed.wait()
        tg.cancel_scope.cancel()
    assert calls == [{"alpha"}]


@pytest.mark.anyio
async def test_watch_notices_a_skill_folder_created_after_start(tmp_path):
    folder = tmp_path / "later"
    library = SkillLibrary([folder])
    changed = anyio.Event()

    async def on_change() -> None:
        changed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, library, on_change, 0.05)
        await anyio.sleep(0.1)
        write_skill(folder, "beta")
        with anyio.fail_after(5):
            await changed.wait()
        tg.cancel_scope.cancel()
    assert "beta" in library.skills()


# ---------------------------------------------------------------- CLI


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gems-mcp")
    add_skills_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_list_shows_builtins_and_user_skills(tmp_path, monkeypatch, capsys):
    write_skill(tmp_path, "my-skill", description="Use for my own tests.")
    monkeypatch.setenv("GEMS_SKILLS_PATH", str(tmp_path))

    assert run_cli("skills", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    ids = {line.split()[0] for line in lines}
    assert ids == BUILTINS | {"my-skill"}
    assert any(line.split()[:2] == ["my-skill", "user"] and "Use for my own tests." in line for line in lines)


def test_cli_show_prints_body_checklist_and_defaults(capsys):
    assert run_cli("skills", "show", "poster-design") == 0
    out = capsys.readouterr().out
    assert "# Poster design" in out
    assert "checklist:" in out and "height: 1024" in out

    assert run_cli("skills", "show", "no-such-skill") == 2  # bad usage: see gems_mcp.cli
    assert "known skills:" in capsys.readouterr().err


def test_cli_check_exits_1_on_a_broken_folder(tmp_path, capsys):
    write_skill(tmp_path, "good")
    write_skill(tmp_path, "bad", name="../x")

    assert run_cli("skills", "check", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad' / 'SKILL.md'}: the name '../x' is not allowed" in out


def test_cli_check_passes_on_a_good_folder_and_a_single_skill(tmp_path):
    skill = write_skill(tmp_path, "good")

    assert run_cli("skills", "check", str(tmp_path)) == 0
    assert run_cli("skills", "check", str(skill)) == 0


def test_cli_check_of_the_configured_library_passes():
    assert run_cli("skills", "check") == 0


def test_skills_path_setting_feeds_the_library(tmp_path, monkeypatch):
    from gems_mcp.config import load_settings

    write_skill(tmp_path / "one", "alpha")
    write_skill(tmp_path / "two", "beta")
    monkeypatch.setenv("GEMS_SKILLS_PATH", os.pathsep.join([str(tmp_path / "one"), str(tmp_path / "two")]))

    library = SkillLibrary.from_settings(load_settings())
    assert {"alpha", "beta"} <= set(library.skills())
    assert library.skills()["alpha"].source == "user"
