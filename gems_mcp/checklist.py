"""The decomposer's server side: a trajectory's fixed checklist from the model, the agent, a skill and a layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gems_mcp import inputs
from gems_mcp.boxes import center, relation_holds
from gems_mcp.checks import Check, Relation, RelationCheck, Target
from gems_mcp.critique.questions import PHRASES, Group, parse_group, prompt_questions, question_check
from gems_mcp.errors import InvalidRequest
from gems_mcp.generation.base import Generator
from gems_mcp.memory.lessons import classify_kind
from gems_mcp.types import Region, Requirement

if TYPE_CHECKING:
    from gems_mcp.skills import SkillBody

MAX_LAYOUT_RELATIONS = 3


def build_checklist(
    generator: Generator, prompt: str, requirements: list[str] | None, body: SkillBody | None, derive: bool = False,
    layout: list[Region] | None = None,
) -> tuple[list[Requirement], list[str]]:
    """The model's own questions about the prompt, the agent's (always kept), the skill's, and the relations a
    layout draws; and notes for the agent.

    Questions are read from the prompt, never from the intent (the user's words are stored as given). Every
    question gets a typed check where it is written in a form the checks read ("Are there exactly two dogs?",
    "Are the three green triangles to the left of the white square?"), so a judge that finds objects can
    answer it; the rest are the agent's (or a VLM's) to answer. With `derive` (a model judge) and no questions
    from anyone, typed questions are read from the prompt itself.
    """
    notes: list[str] = []
    own: list[Requirement] = list(generator.checklist(prompt) or [])
    questions = list(own)
    agent = [Requirement(id="", question=inputs.question(t), source="agent") for t in requirements or []]
    skill = [Requirement(id="", question=t, source="skill") for t in (body.checklist if body else [])]
    if own and skill:
        # The model's exact questions already cover what a skill's generic ones ask.
        notes.append(f"{generator.name} derives its checklist from the prompt, so the skill's questions were not added")
        skill = []
    for req in agent + skill:
        typed = question_check(req.question)
        if typed is not None:
            req.kind, req.check = typed
        same = next((q for q in questions if _same(q, req)), None)
        if same is not None:
            if req.source == "agent" and same.question.strip().lower() != req.question.strip().lower():
                notes.append(f"your question {inputs.quoted(req.question)} asks what {same.question!r} asks; kept once")
            continue
        questions.append(req)
    if not questions and derive:
        questions = prompt_questions(prompt)[: inputs.MAX_QUESTIONS]
        if questions:
            notes.append(
                f"{len(questions)} questions were derived from the prompt (objects, counts, colors, relations, "
                "quoted text; the prompt whole where it says more); pass requirements to generate to set your own"
            )
    for req in layout_questions(layout or []):
        if len(questions) < inputs.MAX_QUESTIONS and not any(_same(q, req) for q in questions):
            questions.append(req)
    if not questions:
        notes.append("no checklist: pass requirements (yes/no questions) to generate so rounds can be verified")
    if len(questions) > inputs.MAX_QUESTIONS:
        raise InvalidRequest(f"requirements: a checklist holds at most {inputs.MAX_QUESTIONS} questions, got {len(questions)}")
    for i, req in enumerate(questions, start=1):
        req.id = f"q{i}"
        if req.kind == "other":
            req.kind = classify_kind(req.question)
    return questions, notes


def _same(a: Requirement, b: Requirement) -> bool:
    """Two questions that test the same thing: the same words, or the same typed check (a relation either way)."""
    if a.question.strip().lower() == b.question.strip().lower():
        return True
    if a.check is None or b.check is None:
        return False
    if isinstance(a.check, RelationCheck) and isinstance(b.check, RelationCheck):
        # "Is the circle left of the square?" already asks what a layout of a red circle and a blue square draws.
        x, y = a.check, b.check
        return (_alike(x.a, y.a) and _alike(x.b, y.b)) or (_alike(x.a, y.b) and _alike(x.b, y.a))
    return a.check == b.check


def _alike(a: Target, b: Target) -> bool:
    return a.object == b.object and None in (a.color, b.color) or a == b


def layout_questions(layout: list[Region]) -> list[Requirement]:
    """The relations a layout draws, as typed questions: each group of like regions against each other group,
    where every box of one lies clearly left of (right of, above, below) every box of the other."""
    groups: dict[Target, list[Region]] = {}
    for region in layout:
        group = parse_group(region.prompt, need_article=False)
        if group is not None and group.count == 1:
            groups.setdefault(group.target(), []).append(region)
    found: list[Requirement] = []
    targets = list(groups)
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            relation = _relation(groups[a], groups[b])
            if relation is None or len(found) >= MAX_LAYOUT_RELATIONS:
                continue
            check: Check = RelationCheck(relation=relation, a=a, b=b, every=len(groups[a]) + len(groups[b]) > 2)
            text = _relation_question(a, len(groups[a]), relation, b, len(groups[b]))
            found.append(Requirement(id="", question=text, kind="position", source="layout", check=check))
    return found


def _relation(first: list[Region], second: list[Region]) -> Relation | None:
    relations: tuple[Relation, ...] = ("left", "right", "above", "below")
    for relation in relations:
        if all(relation_holds(relation, center(a.box), center(b.box)) for a in first for b in second):
            return relation
    return None


def _relation_question(a: Target, n_a: int, relation: str, b: Target, n_b: int) -> str:
    """'Are the three green triangles to the left of the white square?' from the layout's regions."""
    first = Group(a.object, n_a, a.color).describe()
    second = Group(b.object, n_b, b.color).describe()
    verb = "Are" if n_a > 1 else "Is"
    first = first if n_a > 1 else first.split(" ", 1)[1]
    second = second if n_b > 1 else second.split(" ", 1)[1]
    return f"{verb} the {first} {PHRASES[relation]} the {second}?"
