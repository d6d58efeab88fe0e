"""SkillLibrary: a cheap manifest of descriptions over several folders, bodies on demand.

Precedence: user folders come first, in the order given (like ``PATH``: the first folder that
defines an id wins), then the built-ins. Only valid skills take part, so a broken user copy of a
built-in is reported and the built-in stays available.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gems_mcp.config import Settings
from gems_mcp.errors import InvalidRequest, InvalidSkill
from gems_mcp.skills.models import SkillBody, SkillError, SkillInfo, SkillSource, UnknownReference, UnknownSkill
from gems_mcp.skills.parsing import (
    REFERENCES_DIR,
    SKILL_FILE,
    Entry,
    parse_body,
    scan_skill,
    sentence,
    skill_folders,
    watched_files,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scan:
    entries: dict[str, Entry]
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
        self._bodies: dict[str, tuple[Entry, SkillBody]] = {}
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
        entries: dict[str, Entry] = {}
        errors: list[SkillError] = []
        for root, source in self._roots():
            try:
                folders = skill_folders(root)
            except OSError as exc:
                errors.append(
                    SkillError(path=root, message=f"the skills folder cannot be listed ({exc.strerror or exc})")
                )
                log.warning("skipping skills folder: %s", errors[-1])
                continue
            for folder in folders:
                try:
                    entry = scan_skill(folder, source)
                except (InvalidSkill, OSError) as exc:
                    error = SkillError(path=folder / SKILL_FILE, message=sentence(exc))
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

    def _entry(self, skill_id: str) -> Entry:
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
        body = parse_body(entry)
        with self._lock:
            self.loads += 1
            self._bodies[skill_id] = (entry, body)
        return body

    def reference(self, skill_id: str, file: str) -> str:
        """The text of one of the skill's reference files, e.g. 'references/typography.md'."""
        entry = self._entry(skill_id)
        relative = PurePosixPath(file.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or Path(file).is_absolute():
            raise InvalidRequest(
                f"reference {file!r} is not allowed: a reference is a path inside the skill folder such as "
                f"'{REFERENCES_DIR}/notes.md', without '..' or a leading '/'"
            )
        name = relative.as_posix()
        if name not in entry.references:
            listed = ", ".join(entry.references) or "none"
            raise UnknownReference(f"skill {skill_id!r} has no reference {file!r}; its references: {listed}")
        path = entry.folder / name
        # the file may have been swapped for a link since the scan: check again where it leads
        if not path.resolve().is_relative_to(entry.folder.resolve()):
            raise InvalidSkill(f"reference {file!r} now points outside the skill folder and will not be read")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSkill(f"reference {file!r} is not UTF-8 text; only text references can be read") from exc

    def fingerprint(self) -> str:
        """A digest of the mtimes and sizes of every SKILL.md and reference file; stat calls only."""
        digest = hashlib.sha256()
        for root, _ in self._roots():
            for path in watched_files(root):
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
                problems.append(SkillError(path=entry.info.path, message=sentence(exc)))
        return problems


def default_builtin_dir() -> Path | None:
    """The built-in skills: inside the wheel (gems_mcp/builtin_skills), or the repository's skills/."""
    package = Path(__file__).resolve().parents[1]  # gems_mcp/
    for candidate in (package / "builtin_skills", package.parent / "skills"):
        if candidate.is_dir():
            return candidate
    return None
