"""SKILL.md on disk: headers read without the body, the checks every skill must pass, bodies.

A skill is a folder ``<id>/SKILL.md`` in the Agent Skills format (YAML front matter with ``name``
and ``description``, then markdown instructions) or in the GEMS format (``# Skill: <Name>``,
``## Description``, ``## Instructions``). Scanning reads only the header of each file; a body is
read by :func:`parse_body` when asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gems_mcp.errors import InvalidSkill
from gems_mcp.skills.models import SkillBody, SkillDefaults, SkillInfo, SkillSource

SKILL_FILE = "SKILL.md"
REFERENCES_DIR = "references"
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
MAX_BODY_TOKENS = 5000
BYTES_PER_TOKEN = 4
"""Token estimate for the body limit; UTF-8 bytes rather than characters, so scripts that
need more tokens per character (CJK) are not under-counted."""
MAX_HEADER_BYTES = 64 * 1024
"""A header longer than this is a file with an unclosed front matter, not a header."""
MAX_SKILL_FILE_BYTES = 256 * 1024
"""A SKILL.md larger than this is refused from its size alone, before a byte is parsed."""
MAX_QUOTED_CHARS = 40
"""Error messages quote at most this much of a value from a skill file."""

_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAME_RULE = f"lowercase letters, digits and single hyphens (not at either end), at most {MAX_NAME_CHARS} characters"
_BOM = b"\xef\xbb\xbf"
_GEMS_TITLE_RE = re.compile(r"^#\s+Skill:\s*(?P<name>.+?)\s*$")
_GEMS_SECTION_RE = re.compile(r"^##\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class _Header:
    """What a scan reads of a SKILL.md: the front matter (or GEMS description), not the body."""

    name: str | None
    description: Any
    meta: dict[str, Any]
    body_offset: int
    gems: bool


@dataclass(frozen=True)
class Entry:
    """A valid scanned skill: its manifest entry and the files behind it; equal while unchanged."""

    info: SkillInfo
    folder: Path
    references: tuple[str, ...]
    stamp: tuple[tuple[str, int, int], ...]


# ---------------------------------------------------------------- headers


def quote(value: Any) -> str:
    """A value from a skill file for an error message: its repr, cut to a short prefix."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


def _check_file_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_SKILL_FILE_BYTES:
        raise InvalidSkill(
            f"SKILL.md is {size // 1024} KB; at most {MAX_SKILL_FILE_BYTES // 1024} KB are read, "
            f"so move details into {REFERENCES_DIR}/ files"
        )


def _read_header(path: Path) -> _Header:
    """The header of a SKILL.md, read line by line so the body is never decoded here."""
    _check_file_size(path)
    with path.open("rb") as f:
        # editors on Windows may add a BOM; it is not part of the '---' line
        first = f.readline().removeprefix(_BOM)
        if first.strip() == b"---":
            return _read_front_matter(f, offset=f.tell())
        while first and not first.strip():
            first = f.readline()
        match = _GEMS_TITLE_RE.match(decode(first))
        if match:
            return _read_gems_header(f, match.group("name"))
    raise InvalidSkill(
        "SKILL.md must start with YAML front matter between '---' lines or with a '# Skill: <Name>' heading"
    )


def decode(line: bytes) -> str:
    """UTF-8 text of a skill file, or InvalidSkill."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSkill(f"SKILL.md is not valid UTF-8 text ({exc.reason}); save it as UTF-8") from exc


def _header_lines(f: Any, offset: int) -> Iterator[tuple[str, int]]:
    """Decoded lines with the byte offset just past each, up to MAX_HEADER_BYTES."""
    for raw in iter(f.readline, b""):
        offset += len(raw)
        if offset > MAX_HEADER_BYTES:
            break
        yield decode(raw), offset


def _read_front_matter(f: Any, offset: int) -> _Header:
    lines: list[str] = []
    for line, end in _header_lines(f, offset):
        if line.strip() == "---":
            meta = _load_yaml("".join(lines))
            return _Header(meta.get("name"), meta.get("description"), meta, end, gems=False)
        lines.append(line)
    raise InvalidSkill(
        f"the front matter opened with '---' has no closing '---' line within {MAX_HEADER_BYTES // 1024} KB"
    )


class _PlainLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type information
    """SafeLoader without anchors and aliases: a few hundred bytes of aliases expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise InvalidSkill(
                f"the front matter uses a YAML anchor or alias (&/*) at line {mark.line + 2}; "
                "skill files must spell every value out"
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> dict[str, Any]:
    try:
        meta = yaml.load(text, Loader=_PlainLoader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        problem = str(getattr(exc, "problem", None) or "unreadable")[:120]
        raise InvalidSkill(f"the front matter is not valid YAML{line}: {problem}") from exc
    if not isinstance(meta, dict):
        raise InvalidSkill("the front matter must be a YAML mapping with at least 'name' and 'description'")
    return meta


def _read_gems_header(f: Any, name: str) -> _Header:
    """A GEMS-format header: everything up to the '## Instructions' heading."""
    section: str | None = None
    description: list[str] = []
    for line, end in _header_lines(f, f.tell()):
        heading = _GEMS_SECTION_RE.match(line)
        if heading:
            section = heading.group("title").strip().lower()
            if section == "instructions":
                text = "".join(description).strip()
                return _Header(name, text or None, {}, end, gems=True)
        elif section == "description":
            description.append(line)
    raise InvalidSkill("a '# Skill:' file needs a '## Description' section and then an '## Instructions' section")


# ---------------------------------------------------------------- checks


def _skill_id(folder: Path, gems: bool) -> str:
    # GEMS folders may be named like 'Text_Rendering'; tool names want one spelling
    return re.sub(r"[\s_]+", "-", folder.name.strip()).lower() if gems else folder.name


def _check_name(header: _Header, folder: Path) -> str:
    """The skill id, after checking the name (and the folder it must match)."""
    skill_id = _skill_id(folder, header.gems)
    if header.gems:
        if not _NAME_RE.fullmatch(skill_id) or len(skill_id) > MAX_NAME_CHARS:
            raise InvalidSkill(f"the folder name {quote(folder.name)} cannot be a skill id: use {_NAME_RULE}")
        return skill_id
    name = header.name
    if name is None:
        raise InvalidSkill("the front matter has no 'name'; add 'name: <folder name>'")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise InvalidSkill(f"the name {quote(name)} is not allowed: use {_NAME_RULE}")
    if name != folder.name:
        raise InvalidSkill(f"the name {quote(name)} must equal the folder name {quote(folder.name)}")
    return name


def _check_description(description: Any) -> str:
    if not isinstance(description, str) or not description.strip():
        raise InvalidSkill("the skill has no 'description'; say in one or two sentences when to use it and when not")
    text = description.strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise InvalidSkill(f"the description has {len(text)} characters; at most {MAX_DESCRIPTION_CHARS} are allowed")
    return text


def _check_body_size(n_bytes: int) -> None:
    tokens = n_bytes // BYTES_PER_TOKEN
    if tokens > MAX_BODY_TOKENS:
        raise InvalidSkill(
            f"the instructions are about {tokens} tokens ({n_bytes} bytes); keep them under "
            f"{MAX_BODY_TOKENS} tokens and move details into {REFERENCES_DIR}/ files"
        )


def _check_strings(meta: dict[str, Any], key: str, question: bool = False) -> list[str]:
    value = meta.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidSkill(f"'{key}' must be a list of non-empty strings")
    items = [v.strip() for v in value]
    if question:
        bad = next((v for v in items if not v.endswith("?")), None)
        if bad is not None:
            raise InvalidSkill(f"checklist item {quote(bad)} must be a yes/no question ending with '?'")
    return items


def _check_defaults(meta: dict[str, Any]) -> SkillDefaults:
    value = meta.get("defaults") or {}
    allowed = ", ".join(SkillDefaults.model_fields)
    if not isinstance(value, dict):
        raise InvalidSkill(f"'defaults' must be a mapping of {allowed}")
    try:
        return SkillDefaults.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidSkill(
            f"defaults.{where[:MAX_QUOTED_CHARS]} = {quote(first.get('input'))} is not allowed "
            f"({first['msg'].lower()[:120]}); "
            "defaults take width and height (multiples of 8), steps (integer), guidance (number) "
            "and negative_prompt (text)"
        ) from exc


def _check_meta(meta: dict[str, Any]) -> tuple[list[str], SkillDefaults, list[str]]:
    """Our optional front-matter keys, validated: checklist, defaults, examples."""
    return _check_strings(meta, "checklist", question=True), _check_defaults(meta), _check_strings(meta, "examples")


# ---------------------------------------------------------------- files


def _list_references(folder: Path) -> tuple[str, ...]:
    """Files under references/, relative to the skill folder; any that resolves outside is an error."""
    root = folder / REFERENCES_DIR
    if not root.is_dir():
        return ()
    inside = folder.resolve()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(filenames) + sorted(d for d in dirnames if (Path(dirpath) / d).is_symlink()):
            path = Path(dirpath) / name
            if not path.resolve().is_relative_to(inside):
                raise InvalidSkill(
                    f"the reference {path.relative_to(folder).as_posix()!r} points outside the skill folder; "
                    "reference files must live inside it"
                )
            if path.is_file():
                found.append(path.relative_to(folder).as_posix())
    return tuple(sorted(found))


def _stamp(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        stamps.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def scan_skill(folder: Path, source: SkillSource) -> Entry:
    """One skill folder to a manifest entry, reading only the SKILL.md header."""
    path = folder / SKILL_FILE
    header = _read_header(path)
    skill_id = _check_name(header, folder)
    description = _check_description(header.description)
    _check_meta(header.meta)
    _check_body_size(path.stat().st_size - header.body_offset)
    references = _list_references(folder)
    info = SkillInfo(
        id=skill_id,
        name=header.name if header.gems and header.name else skill_id,
        description=description,
        source=source,
        path=path,
    )
    return Entry(info, folder, references, _stamp([path, *(folder / r for r in references)]))


def parse_body(entry: Entry) -> SkillBody:
    """The whole skill, read from disk; the one place a body is loaded."""
    path = entry.info.path
    header = _read_header(path)
    checklist, defaults, examples = _check_meta(header.meta)
    raw = path.read_bytes()[header.body_offset :]
    _check_body_size(len(raw))
    instructions = decode(raw).strip()
    if not instructions:
        raise InvalidSkill("the skill has no instructions after its header")
    return SkillBody(
        id=entry.info.id,
        instructions=instructions,
        checklist=checklist,
        defaults=defaults,
        examples=examples,
        references=list(entry.references),
    )


def _candidate_folders(root: Path) -> list[Path]:
    """Root itself when it is one skill, else its visible subfolders, with or without a SKILL.md."""
    if (root / SKILL_FILE).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def skill_folders(root: Path) -> list[Path]:
    """The skill folders under root, or root itself when it is one skill."""
    return [p for p in _candidate_folders(root) if (p / SKILL_FILE).is_file()]


def watched_files(root: Path) -> Iterator[Path]:
    """The files whose changes matter: each SKILL.md and everything under references/."""
    if not root.is_dir():
        return
    try:
        folders = _candidate_folders(root)
    except OSError:
        return
    for folder in folders:
        # the folder's own mtime changes when a SKILL.md or references/ appears in it
        yield folder
        yield folder / SKILL_FILE
        references = folder / REFERENCES_DIR
        if references.is_dir():
            for dirpath, _, filenames in os.walk(references):
                for name in sorted(filenames):
                    yield Path(dirpath) / name


def sentence(exc: BaseException) -> str:
    """A scan problem as one sentence for SkillError.message."""
    if isinstance(exc, OSError):
        return f"the skill could not be read ({exc.strerror or exc})"
    return str(exc)
