"""Case 1: a skill file cannot hang the scan, blow up memory or flood an error message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gems_mcp.skills import SkillLibrary
from gems_mcp.skills.parsing import MAX_QUOTED_CHARS, MAX_SKILL_FILE_BYTES

# 9 levels of 9 aliases each: 9**9 (387 million) strings once expanded; the file is about 400 bytes.
_BOMB = "\n".join(
    ["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
    + [f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]" for p, c in zip("abcdefgh", "bcdefghi")]
)


def _write(root: Path, folder: str, front: str, body: str = "Do the thing.\n") -> Path:
    skill = root / folder
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(f"---\n{front}\n---\n{body}", encoding="utf-8")
    return skill


def _scan(root: Path) -> SkillLibrary:
    started = time.perf_counter()
    library = SkillLibrary([root], None)
    assert time.perf_counter() - started < 5, "scanning must not hang"
    return library


@pytest.mark.parametrize("where", ["name", "defaults"])
def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path, where):
    front = _BOMB + ("\nname: *i\ndescription: x" if where == "name" else "\nname: bomb\ndescription: x\ndefaults: *i")
    _write(tmp_path, "bomb", front)
    library = _scan(tmp_path)
    assert "bomb" not in library.skills()
    [error] = library.errors
    assert "alias" in error.message or "anchor" in error.message
    assert len(error.message) < 300


def test_an_anchor_alone_is_refused_too(tmp_path):
    _write(tmp_path, "anchored", "name: &n anchored\ndescription: x")
    library = _scan(tmp_path)
    assert "anchored" not in library.skills()
    assert "anchor" in library.errors[0].message


def test_a_huge_skill_file_is_refused_by_its_size_before_it_is_read(tmp_path):
    _write(tmp_path, "huge", "name: huge\ndescription: x", body="word " * (MAX_SKILL_FILE_BYTES // 4))
    library = _scan(tmp_path)
    assert "huge" not in library.skills()
    assert f"{MAX_SKILL_FILE_BYTES // 1024} KB" in library.errors[0].message


def test_error_messages_quote_only_a_short_prefix_of_a_long_value(tmp_path):
    _write(tmp_path, "long-name", f"name: {'x' * 5000}\ndescription: x")
    _write(tmp_path, "long-default", "name: long-default\ndescription: x\ndefaults:\n  negative_prompt: " + "y" * 20)
    _write(tmp_path, "bad-default", "name: bad-default\ndescription: x\ndefaults:\n  width: " + "'" + "9" * 5000 + "'")
    library = _scan(tmp_path)
    messages = [e.message for e in library.errors]
    assert len(messages) == 2
    for message in messages:
        assert "x" * (MAX_QUOTED_CHARS + 1) not in message and "9" * (MAX_QUOTED_CHARS + 1) not in message
        assert len(message) < 400
    assert "long-default" in library.skills()


def test_the_built_in_skills_still_load(tmp_path):
    from gems_mcp.skills import default_builtin_dir

    library = SkillLibrary([], default_builtin_dir())
    assert library.errors == []
    assert len(library.skills()) >= 9
