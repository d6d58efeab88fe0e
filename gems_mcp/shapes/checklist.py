"""The shapes world's decomposer: a prompt's yes/no questions, each with a typed check."""

from __future__ import annotations

from typing import cast

from gems_mcp.checks import AtLeast, Check, CountedTarget, Exactly, Only, Relation, RelationCheck, Target
from gems_mcp.shapes.world import RELATION_PHRASES, Group, parse
from gems_mcp.types import Requirement, RequirementKind


def _target(group: Group) -> Target:
    return Target(object=group.shape, color=group.color)


def checklist(prompt: str) -> list[Requirement]:
    """GEMS-style yes/no questions for a prompt, each with a machine-checkable `check`."""
    spec = parse(prompt)
    questions: list[tuple[str, RequirementKind, Check]] = []
    for shape in dict.fromkeys(g.shape for g in spec.groups):
        if any(g.color for g in spec.groups if g.shape == shape):
            questions.append((f"Is there a {shape}?", "object", AtLeast(object=shape, n=1)))
    for group in spec.groups:
        questions.append(_group_question(group, several=len(spec.groups) > 1))
    if spec.relation:
        a, b = spec.groups
        text = f"Is the {a.describe(False)} {RELATION_PHRASES[spec.relation]} the {b.describe(False)}?"
        questions.append((text, "position", RelationCheck(relation=cast(Relation, spec.relation), a=_target(a), b=_target(b))))
    strict = Only(groups=[CountedTarget(object=g.shape, color=g.color, n=g.count) for g in spec.groups])
    questions.append((f"Are there exactly {_listed(spec.groups)}, and nothing else?", "count", strict))
    return [
        Requirement(id=f"q{i}", question=q, kind=kind, source="prompt", check=check)
        for i, (q, kind, check) in enumerate(questions, start=1)
    ]


def _listed(groups: tuple[Group, ...]) -> str:
    """'1 red circle and 1 blue square': what the 'nothing else' question counts, so it says what it tests."""
    parts = [f"{g.count} {g.color + ' ' if g.color else ''}{g.shape}{'s' if g.count > 1 else ''}" for g in groups]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _group_question(group: Group, several: bool) -> tuple[str, RequirementKind, Check]:
    if group.count > 1:
        return (f"Are there exactly {group.describe()}?", "count", Exactly(object=group.shape, color=group.color, n=group.count))
    kind: RequirementKind = "object" if group.color is None else ("attribute" if several else "color")
    return (f"Is there {group.describe()}?", kind, AtLeast(object=group.shape, color=group.color, n=1))
