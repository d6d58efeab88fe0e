"""The decomposer's server side: a trajectory's fixed checklist from the model, the agent and a skill."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gems_mcp import inputs
from gems_mcp.critique.questions import prompt_questions, question_check
from gems_mcp.errors import InvalidRequest
from gems_mcp.generation.base import Generator
from gems_mcp.memory.lessons import classify_kind
from gems_mcp.types import Requirement

if TYPE_CHECKING:
    from gems_mcp.skills import SkillBody


def build_checklist(
    generator: Generator, intent: str, requirements: list[str] | None, body: SkillBody | None, derive: bool = False
) -> tuple[list[Requirement], list[str]]:
    """The backend's own questions when it knows its world, else the agent's and the skill's; and notes.

    With `derive` (a model judge is configured), questions given in the derived forms get typed checks,
    and with no questions from anyone, typed questions are read from the prompt itself (objects, counts,
    colors, relations, quoted text) so the judge has checks.
    """
    notes: list[str] = []
    questions: list[Requirement] = list(generator.checklist(intent) or [])
    if questions:
        # The backend's questions are exact and checked by its judge; questions in other words
        # would stay unanswerable, so they are left out and the agent is told.
        left_out = [name for name, given in (("requirements", requirements), ("skill questions", body and body.checklist)) if given]
        if left_out:
            notes.append(f"{generator.name} derives its checklist from the prompt; your {' and '.join(left_out)} were not added")
    else:
        questions += [Requirement(id="", question=inputs.question(t), source="agent") for t in requirements or []]
        questions += [Requirement(id="", question=t, source="skill") for t in (body.checklist if body else [])]
        for req in questions if derive else []:
            # "Are there exactly two dogs?" from the agent is as checkable as the same question derived.
            typed = question_check(req.question)
            if typed is not None:
                req.kind, req.check = typed
        if not questions and derive:
            questions = prompt_questions(intent)[: inputs.MAX_QUESTIONS]
            if questions:
                notes.append(
                    f"{len(questions)} questions were derived from the prompt (objects, counts, colors, relations, "
                    "quoted text; the prompt whole where it says more); pass requirements to generate to set your own"
                )
    if not questions:
        notes.append("no checklist: pass requirements (yes/no questions) to generate so rounds can be verified")
    if len(questions) > inputs.MAX_QUESTIONS:
        raise InvalidRequest(f"a checklist holds at most {inputs.MAX_QUESTIONS} questions, got {len(questions)}")
    for i, req in enumerate(questions, start=1):
        req.id = f"q{i}"
        if req.kind == "other":
            req.kind = classify_kind(req.question)
    return questions, notes
