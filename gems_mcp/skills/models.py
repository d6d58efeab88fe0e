"""What the skill library hands out: manifest entries, bodies, defaults, and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from gems_mcp.errors import InvalidSkill, UnknownReference, UnknownSkill
from gems_mcp.types import ImageParams

__all__ = [
    "InvalidSkill",
    "SkillBody",
    "SkillDefaults",
    "SkillError",
    "SkillInfo",
    "SkillSource",
    "UnknownReference",
    "UnknownSkill",
]

SkillSource = Literal["builtin", "user"]

# name -> (least, most, step): what a skill file may suggest, whatever the model; the backend
# checks the value again against its own limits when the skill is used.
_NUMBER_LIMITS: dict[str, tuple[float, float, int | None]] = {
    "width": (16, 4096, 8),
    "height": (16, 4096, 8),
    "steps": (1, 500, None),
    "guidance": (0, 50, None),
}
MAX_NEGATIVE_PROMPT_CHARS = 2000


class SkillDefaults(ImageParams):
    """Generation parameters a skill suggests; None leaves the backend's default.

    The fields are ImageParams' own; a skill file is held to exact types (no '512' for 512)
    and to the bounds above.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator(*_NUMBER_LIMITS)
    @classmethod
    def _in_range(cls, value: float | None, info: Any) -> float | None:
        if value is None:
            return None
        least, most, step = _NUMBER_LIMITS[info.field_name]
        if not least <= value <= most or (step is not None and value % step):
            every = f"a multiple of {step} " if step is not None else ""
            raise PydanticCustomError("out_of_range", f"must be {every}from {least:g} to {most:g}")
        return value

    @field_validator("negative_prompt")
    @classmethod
    def _short_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_NEGATIVE_PROMPT_CHARS:
            raise PydanticCustomError("too_long", f"must have at most {MAX_NEGATIVE_PROMPT_CHARS} characters")
        return value


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
