"""Typed, machine-checkable forms of checklist questions, and how to decide them from detections.

A checklist writer (the shapes world's parser, or a prompt parser for real models) attaches a Check
to a Requirement; any judge that finds objects with boxes (the exact judge, a detector) decides it
with `answer`. Neither side knows the other.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gems_mcp.boxes import Box, center, fmt, relation_holds

Relation = Literal["left", "right", "above", "below"]


class Target(BaseModel):
    """Which objects a check counts: an object noun and, optionally, its color."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    # 'shape' is how trajectories stored before the typed checks spelled it
    object: str = Field(validation_alias=AliasChoices("object", "shape"))
    color: str | None = None

    def describe(self) -> str:
        return f"{self.color} {self.object}" if self.color else self.object


class CountedTarget(Target):
    n: int = Field(ge=0)


class AtLeast(Target):
    type: Literal["at_least"] = "at_least"
    n: int = Field(default=1, ge=1)


class Exactly(Target):
    type: Literal["exactly"] = "exactly"
    n: int = Field(ge=0)


class RelationCheck(BaseModel):
    """Some object matching `a` stands `relation` of some object matching `b` (with `every`: each of them of each)."""

    type: Literal["relation"] = "relation"
    relation: Relation
    a: Target
    b: Target
    every: bool = False


class Only(BaseModel):
    """Exactly these groups and nothing else."""

    type: Literal["only"] = "only"
    groups: list[CountedTarget]


Check = Annotated[AtLeast | Exactly | RelationCheck | Only, Field(discriminator="type")]


class Detection(BaseModel):
    """One object a judge found: what it is, its color when known, and where (0..1 box)."""

    object: str
    color: str | None = None
    box: Box
    score: float | None = Field(default=None, description="Detector confidence; None for exact judges.")

    def matches(self, target: Target) -> bool:
        return self.object == target.object and target.color in (None, self.color)

    def describe(self) -> str:
        name = f"{self.color} {self.object}" if self.color else self.object
        return f"{name} at {fmt(self.box)}"


def answer(check: AtLeast | Exactly | RelationCheck | Only, found: list[Detection]) -> bool:
    """Whether a typed check holds for the detections."""
    if isinstance(check, AtLeast | Exactly):
        n = sum(d.matches(check) for d in found)
        return n >= check.n if isinstance(check, AtLeast) else n == check.n
    if isinstance(check, RelationCheck):
        firsts = [d for d in found if d.matches(check.a)]
        seconds = [d for d in found if d.matches(check.b)]
        if check.every:
            pairs = [(a, b) for a in firsts for b in seconds if a is not b]
            return bool(pairs) and all(relation_holds(check.relation, center(a.box), center(b.box)) for a, b in pairs)
        return any(
            relation_holds(check.relation, center(a.box), center(b.box)) for a in firsts for b in seconds if a is not b
        )
    exact = all(sum(d.matches(g) for d in found) == g.n for g in check.groups)
    return exact and len(found) == sum(g.n for g in check.groups)
