"""Skill library: SKILL.md parsing, a cheap manifest of descriptions, bodies loaded on demand.

A skill is a folder ``<id>/SKILL.md`` in the Agent Skills format (YAML front matter with ``name``
and ``description``, then markdown instructions) or in the GEMS format (``# Skill: <Name>``,
``## Description``, ``## Instructions``). Scanning reads only the header of each file, so the
manifest (one MCP tool per skill) stays cheap however long the instructions are; a body is read
when :meth:`SkillLibrary.body` asks for it.

Precedence: user folders come first, in the order given (like ``PATH``: the first folder that
defines an id wins), then the built-ins. Only valid skills take part, so a broken user copy of a
built-in is reported and the built-in stays available.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio
import anyio.to_thread
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gems_mcp.config import Settings

__all__ = [
    "InvalidSkill",
    "SkillBody",
    "SkillDefaults",
    "SkillError",
    "SkillInfo",
    "SkillLibrary",
    "UnknownReference",
    "UnknownSkill",
    "default_builtin_dir",
    "watch",
]

log = logging.getLogger(__name__)

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

_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAME_RULE = f"lowercase letters, digits and single hyphens (not at either end), at most {MAX_NAME_CHARS} characters"
_BOM = b"\xef\xbb\xbf"
_GEMS_TITLE_RE = re.compile(r"^#\s+Skill:\s*(?P<name>.+?)\s*$")
_GEMS_SECTION_RE = re.compile(r"^##\s+(?P<title>.+?)\s*$")

SkillSource = Literal["builtin", "user"]


# ---------------------------------------------------------------- models


class SkillDefaults(BaseModel):
    """Generation parameters a skill suggests; None leaves the backend's default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    width: int | None = Field(default=None, ge=16, le=4096, multiple_of=8)
    height: int | None = Field(default=None, ge=16, le=4096, multiple_of=8)
    steps: int | None = Field(default=None, ge=1, le=500)
    guidance: float | None = Field(default=None, ge=0, le=50)
    negative_prompt: str | None = Field(default=None, max_length=2000)


class SkillInfo(BaseModel):
    """A manifest entry: what the router sees before choosing a skill."""

    id: str = Field(description="Folder name; the MCP tool is skill_<id>.")
    name: str = Field(description="Display name: the id, or the '# Skill:' title of a GEMS file.")
    description: str = Field(description="When to use the skill and when not.")
    source: SkillSource
    path: Path = Field(description="The skill's SKILL.md file.")


class SkillBody(BaseModel):
    """What calling a skill returns: instructions, extra checklist questions and defaults."""

    id: str
    instructions: str
    checklist: list[str] = Field(default_factory=list)
    defaults: SkillDefaults = Field(default_factory=SkillDefaults)
    examples: list[str] = Field(default_factory=list)
    references: list[str] = Field(
        default_factory=list, description="Files readable with reference(), relative to the skill folder."
    )


class SkillError(BaseModel):
    """One problem found while scanning: which file and what was wrong."""

    model_config = ConfigDict(frozen=True)

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSkill(ValueError):
    """A skill file that cannot be used; the message says what is wrong and what is allowed."""


class UnknownSkill(LookupError):
    """No skill has the requested id."""


class UnknownReference(LookupError):
    """The skill has no reference file of that name."""


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Header:
    """What a scan reads of a SKILL.md: the front matter (or GEMS description), not the body."""

    name: str | None
    description: Any
    meta: dict[str, Any]
    body_offset: int
    gems: bool


@dataclass(frozen=True)
class _Entry:
    """A valid scanned skill: its manifest entry and the files behind it; equal while unchanged."""

    info: SkillInfo
    folder: Path
    references: tuple[str, ...]
    stamp: tuple[tuple[str, int, int], ...]


def _read_header(path: Path) -> _Header:
    """The header of a SKILL.md, read line by line so the body is never decoded here."""
    with path.open("rb") as f:
        # editors on Windows may add a BOM; it is not part of the '---' line
        first = f.readline().removeprefix(_BOM)
        if first.strip() == b"---":
            return _read_front_matter(f, offset=f.tell())
        while first and not first.strip():
            first = f.readline()
        match = _GEMS_TITLE_RE.match(_decode(first))
        if match:
            return _read_gems_header(f, match.group("name"))
    raise InvalidSkill(
        "SKILL.md must start with YAML front matter between '---' lines or with a '# Skill: <Name>' heading"
    )


def _decode(line: bytes) -> str:
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
        yield _decode(raw), offset


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


def _load_yaml(text: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise InvalidSkill(f"the front matter is not valid YAML{line}: {getattr(exc, 'problem', exc)}") from exc
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


def _skill_id(folder: Path, gems: bool) -> str:
    # GEMS folders may be named like 'Text_Rendering'; tool names want one spelling
    return re.sub(r"[\s_]+", "-", folder.name.strip()).lower() if gems else folder.name


def _check_name(header: _Header, folder: Path) -> str:
    """The skill id, after checking the name (and the folder it must match)."""
    skill_id = _skill_id(folder, header.gems)
    if header.gems:
        if not _NAME_RE.fullmatch(skill_id) or len(skill_id) > MAX_NAME_CHARS:
            raise InvalidSkill(f"the folder name {folder.name!r} cannot be a skill id: use {_NAME_RULE}")
        return skill_id
    name = header.name
    if name is None:
        raise InvalidSkill("the front matter has no 'name'; add 'name: <folder name>'")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise InvalidSkill(f"the name {name!r} is not allowed: use {_NAME_RULE}")
    if name != folder.name:
        raise InvalidSkill(f"the name {name!r} must equal the folder name {folder.name!r}")
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
            raise InvalidSkill(f"checklist item {bad!r} must be a yes/no question ending with '?'")
    return items


def _check_defaults(meta: dict[str, Any]) -> SkillDefaults:
    value = meta.get("defaults") or {}
    if not isinstance(value, dict):
        raise InvalidSkill("'defaults' must be a mapping of width, height, steps, guidance, negative_prompt")
    try:
        return SkillDefaults.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidSkill(
            f"defaults.{where} = {first.get('input')!r} is not allowed ({first['msg'].lower()}); "
            "defaults take width and height (multiples of 8), steps (integer), guidance (number) "
            "and negative_prompt (text)"
        ) from exc


def _check_meta(meta: dict[str, Any]) -> tuple[list[str], SkillDefaults, list[str]]:
    """Our optional front-matter keys, validated: checklist, defaults, examples."""
    return _check_strings(meta, "checklist", question=True), _check_defaults(meta), _check_strings(meta, "examples")


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


def _scan_skill(folder: Path, source: SkillSource) -> _Entry:
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
    return _Entry(info, folder, references, _stamp([path, *(folder / r for r in references)]))


def _parse_body(entry: _Entry) -> SkillBody:
    """The whole skill, read from disk; the one place a body is loaded."""
    path = entry.info.path
    header = _read_header(path)
    checklist, defaults, examples = _check_meta(header.meta)
    raw = path.read_bytes()[header.body_offset :]
    _check_body_size(len(raw))
    instructions = _decode(raw).strip()
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


def _skill_folders(root: Path) -> list[Path]:
    """The skill folders under root, or root itself when it is one skill."""
    return [p for p in _candidate_folders(root) if (p / SKILL_FILE).is_file()]


# ---------------------------------------------------------------- library


@dataclass(frozen=True)
class _Scan:
    entries: dict[str, _Entry]
    errors: list[SkillError]
    fingerprint: str


class SkillLibrary:
    """Skills from user folders (first wins) over built-ins; bodies read on demand and cached."""

    def __init__(self, user_dirs: list[Path], builtin_dir: Path | None = None) -> None:
        self.user_dirs = [Path(d) for d in user_dirs]
        self.builtin_dir = builtin_dir
        self.loads = 0
        """How many bodies were read from disk; scanning never adds to it."""
        self._lock = threading.Lock()
        # keyed by id, valid while the scanned entry is unchanged: a reload never serves a stale body
        self._bodies: dict[str, tuple[_Entry, SkillBody]] = {}
        self._scan = self._rescan()

    @classmethod
    def from_settings(cls, settings: Settings) -> SkillLibrary:
        """The library the server and the CLI use: Settings.skill_dirs over the built-ins."""
        return cls(settings.skill_dirs, default_builtin_dir())

    def _roots(self) -> list[tuple[Path, SkillSource]]:
        roots: list[tuple[Path, SkillSource]] = [(d, "user") for d in self.user_dirs]
        if self.builtin_dir is not None:
            roots.append((self.builtin_dir, "builtin"))
        return roots

    def _rescan(self) -> _Scan:
        fingerprint = self.fingerprint()
        entries: dict[str, _Entry] = {}
        errors: list[SkillError] = []
        for root, source in self._roots():
            try:
                folders = _skill_folders(root)
            except OSError as exc:
                errors.append(
                    SkillError(path=root, message=f"the skills folder cannot be listed ({exc.strerror or exc})")
                )
                log.warning("skipping skills folder: %s", errors[-1])
                continue
            for folder in folders:
                try:
                    entry = _scan_skill(folder, source)
                except (InvalidSkill, OSError) as exc:
                    error = SkillError(path=folder / SKILL_FILE, message=_sentence(exc))
                    errors.append(error)
                    log.warning("skipping skill: %s", error)
                    continue
                if entry.info.id in entries:
                    log.info("skill %s at %s is shadowed by %s", entry.info.id, folder, entries[entry.info.id].folder)
                    continue
                entries[entry.info.id] = entry
        return _Scan(dict(sorted(entries.items())), errors, fingerprint)

    def skills(self) -> dict[str, SkillInfo]:
        """The manifest: every valid skill by id, sorted by id."""
        return {skill_id: entry.info for skill_id, entry in self._scan.entries.items()}

    @property
    def errors(self) -> list[SkillError]:
        """Problems found by the last scan; those skills were skipped."""
        return list(self._scan.errors)

    def _entry(self, skill_id: str) -> _Entry:
        entry = self._scan.entries.get(skill_id)
        if entry is None:
            known = ", ".join(self._scan.entries) or "none"
            raise UnknownSkill(f"there is no skill {skill_id!r}; known skills: {known}")
        return entry

    def body(self, skill_id: str) -> SkillBody:
        """The skill's instructions, checklist, defaults and references, read on first use."""
        entry = self._entry(skill_id)
        with self._lock:
            cached = self._bodies.get(skill_id)
        if cached is not None and cached[0] == entry:
            return cached[1]
        body = _parse_body(entry)
        with self._lock:
            self.loads += 1
            self._bodies[skill_id] = (entry, body)
        return body

    def reference(self, skill_id: str, file: str) -> str:
        """The text of one of the skill's reference files, e.g. 'references/typography.md'."""
        entry = self._entry(skill_id)
        relative = PurePosixPath(file.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or Path(file).is_absolute():
            raise ValueError(
                f"reference {file!r} is not allowed: give a path inside the skill folder such as "
                f"'{REFERENCES_DIR}/notes.md', without '..' or a leading '/'"
            )
        name = relative.as_posix()
        if name not in entry.references:
            listed = ", ".join(entry.references) or "none"
            raise UnknownReference(f"skill {skill_id!r} has no reference {file!r}; its references: {listed}")
        path = entry.folder / name
        # the file may have been swapped for a link since the scan: check again where it leads
        if not path.resolve().is_relative_to(entry.folder.resolve()):
            raise ValueError(f"reference {file!r} now points outside the skill folder and will not be read")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSkill(f"reference {file!r} is not UTF-8 text; only text references can be read") from exc

    def fingerprint(self) -> str:
        """A digest of the mtimes and sizes of every SKILL.md and reference file; stat calls only."""
        digest = hashlib.sha256()
        for root, _ in self._roots():
            for path in _watched_files(root):
                try:
                    st = path.stat()
                except OSError:
                    continue
                digest.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
        return digest.hexdigest()

    def reload(self) -> bool:
        """Rescan when files changed; True when the manifest or an active skill's files changed."""
        if self.fingerprint() == self._scan.fingerprint:
            return False
        old = self._scan
        new = self._rescan()
        self._scan = new
        changed = {
            skill_id
            for skill_id in old.entries.keys() | new.entries.keys()
            if old.entries.get(skill_id) != new.entries.get(skill_id)
        }
        if changed:
            log.info("skills changed: %s", ", ".join(sorted(changed)))
        return bool(changed)

    def check(self) -> list[SkillError]:
        """Every problem: scan errors plus bodies that fail to load (reads every body)."""
        problems = self.errors
        for skill_id, entry in self._scan.entries.items():
            try:
                self.body(skill_id)
            except (InvalidSkill, OSError) as exc:
                problems.append(SkillError(path=entry.info.path, message=_sentence(exc)))
        return problems


def _watched_files(root: Path) -> Iterator[Path]:
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


def _sentence(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"the skill could not be read ({exc.strerror or exc})"
    return str(exc)


def default_builtin_dir() -> Path | None:
    """The built-in skills: inside the wheel, or the repository's skills/ in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "builtin_skills", package.parent / "skills"):
        if candidate.is_dir():
            return candidate
    return None


async def watch(library: SkillLibrary, on_change: Callable[[], Awaitable[None]], interval: float = 1.0) -> None:
    """Poll the library forever; await on_change() after each reload that changed the skills."""
    while True:
        await anyio.sleep(interval)
        try:
            changed = await anyio.to_thread.run_sync(library.reload)
        except Exception:
            # a transient disk error must not stop watching for the rest of the session
            log.exception("reloading skills failed")
            continue
        if not changed:
            continue
        try:
            await on_change()
        except Exception:
            log.exception("skills changed, but notifying the client failed")
