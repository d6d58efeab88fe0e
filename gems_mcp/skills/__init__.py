"""Skill library: SKILL.md parsing, a cheap manifest of descriptions, bodies loaded on demand.

- models: SkillInfo (manifest entry), SkillBody, SkillDefaults (ImageParams, strict), errors
- parsing: reading SKILL.md headers and bodies and the rules every skill must follow
- library: SkillLibrary (user folders over built-ins, reload) and default_builtin_dir
- watcher: watch(), reloading the library on file events (watchfiles) while the server runs

Every module logs under the ``gems_mcp.skills`` logger (``log`` here), so one level set on it
quiets the whole library.
"""

from __future__ import annotations

import logging

from gems_mcp.errors import InvalidSkill
from gems_mcp.skills.library import SkillLibrary, default_builtin_dir
from gems_mcp.skills.models import (
    SkillBody,
    SkillDefaults,
    SkillError,
    SkillInfo,
    SkillSource,
    UnknownReference,
    UnknownSkill,
)
from gems_mcp.skills.parsing import (
    BYTES_PER_TOKEN,
    MAX_BODY_TOKENS,
    MAX_DESCRIPTION_CHARS,
    MAX_HEADER_BYTES,
    MAX_NAME_CHARS,
    REFERENCES_DIR,
    SKILL_FILE,
)
from gems_mcp.skills.watcher import watch

log = logging.getLogger(__name__)

__all__ = [
    "BYTES_PER_TOKEN",
    "MAX_BODY_TOKENS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_HEADER_BYTES",
    "MAX_NAME_CHARS",
    "REFERENCES_DIR",
    "SKILL_FILE",
    "InvalidSkill",
    "SkillBody",
    "SkillDefaults",
    "SkillError",
    "SkillInfo",
    "SkillLibrary",
    "SkillSource",
    "UnknownReference",
    "UnknownSkill",
    "default_builtin_dir",
    "log",
    "watch",
]
