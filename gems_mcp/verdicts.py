"""The agent's own verdicts: checked against the checklist and merged over what a judge said."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gems_mcp.errors import InvalidRequest
from gems_mcp.rounds import in_order
from gems_mcp.types import Candidate, Requirement, Round, Verdict


class VerdictInput(BaseModel):
    """The agent's answer to one checklist question."""

    id: str = Field(description="Question id from the checklist, e.g. 'q1'.")
    passed: bool = Field(description="true when the image satisfies the question (yes), false otherwise.")
    note: str | None = Field(default=None, max_length=500, description="Optional: what is wrong or right.")


def candidate(rnd: Round, image_id: str | None) -> Candidate:
    if image_id is None:
        if len(rnd.candidates) == 1 or rnd.judged:
            return rnd.best_candidate()
        ids = ", ".join(c.image_id for c in rnd.candidates)
        raise InvalidRequest(f"round {rnd.index} has {len(rnd.candidates)} images; name one with image_id ({ids})")
    for c in rnd.candidates:
        if c.image_id == image_id:
            return c
    ids = ", ".join(c.image_id for c in rnd.candidates)
    raise InvalidRequest(f"image {image_id} is not in round {rnd.index}; its images are {ids}")


def agent_verdicts(
    checklist: list[Requirement], answers: list[VerdictInput], existing: list[Verdict] | None
) -> list[Verdict]:
    """The agent's answers, one per question, merged over what a judge said before."""
    ids = [r.id for r in checklist]
    if not ids and answers:
        raise InvalidRequest("this trajectory has no checklist, so there is nothing to answer; pass verdicts=[]")
    seen: set[str] = set()
    for a in answers:
        if a.id not in ids:
            raise InvalidRequest(f"'{a.id}' is not a question of this checklist; ids are {', '.join(ids)}")
        if a.id in seen:
            raise InvalidRequest(f"question {a.id} is answered twice; give one verdict per question")
        seen.add(a.id)
    answered = {a.id: Verdict(requirement_id=a.id, passed=a.passed, note=a.note, judge="agent") for a in answers}
    previous = {v.requirement_id: v for v in existing or []}
    missing = [i for i in ids if i not in answered and i not in previous]
    if missing:
        raise InvalidRequest(f"give one verdict per question; missing: {', '.join(missing)}")
    return in_order(checklist, list({**previous, **answered}.values()))
