"""The agent's own verdicts: checked against the checklist and merged over what a judge said."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gems_mcp import inputs
from gems_mcp.errors import InvalidRequest, TrajectoryFinished
from gems_mcp.rounds import in_order
from gems_mcp.types import Candidate, Requirement, Round, Trajectory, Verdict


class VerdictInput(BaseModel):
    """The agent's answer to one checklist question."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(description="Question id from the checklist, e.g. 'q1'.")
    passed: bool = Field(description="true when the image satisfies the question (yes), false otherwise.")
    note: str | None = Field(
        default=None, max_length=inputs.MAX_NOTE_CHARS, description="Optional: what is wrong or right."
    )


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
    raise InvalidRequest(f"image {inputs.quoted(image_id)} is not in round {rnd.index}; its images are {ids}")


def check_open(trajectory: Trajectory) -> None:
    """Verdicts decide the answer: once a trajectory is done they can no longer change."""
    if trajectory.status == "done":
        raise TrajectoryFinished(
            trajectory.id, f"is done ({trajectory.done_reason or 'closed'}); its verdicts can no longer change"
        )


def agent_verdicts(
    checklist: list[Requirement], answers: list[VerdictInput], chosen: Candidate
) -> tuple[list[Verdict], list[Verdict], list[str]]:
    """The verdicts that count, the agent's own answers (all kept), and notes for the agent.

    A question a server judge answered keeps the judge's verdict; the agent's answer to it is
    kept beside it in agent_verdicts. Questions no server judge answered count the agent's answer.
    """
    ids = [r.id for r in checklist]
    if not ids and answers:
        raise InvalidRequest("this trajectory has no checklist, so there is nothing to answer; pass verdicts=[]")
    seen: set[str] = set()
    for a in answers:
        if a.id not in ids:
            listed = ", ".join(ids[:30])
            raise InvalidRequest(f"{inputs.quoted(a.id)} is not a question of this checklist; ids are {listed}")
        if a.id in seen:
            raise InvalidRequest(f"question {a.id} is answered twice; give one verdict per question")
        seen.add(a.id)
    answered = {a.id: Verdict(requirement_id=a.id, passed=a.passed, note=a.note, judge="agent") for a in answers}
    previous = {v.requirement_id: v for v in chosen.verdicts or []}
    missing = [i for i in ids if i not in answered and i not in previous]
    if missing:
        raise InvalidRequest(f"give one verdict per question; missing: {', '.join(missing)}")
    judged = {i for i, v in previous.items() if v.judge != "agent"}
    counted = {**previous, **{i: v for i, v in answered.items() if i not in judged}}
    given = {**{v.requirement_id: v for v in chosen.agent_verdicts or []}, **answered}
    kept = [i for i in ids if i in judged and i in answered]
    count = [i for i in ids if i in answered and i not in judged]
    said = f"recorded your verdicts for image {chosen.image_id}"
    if count:
        said += f": they count for {', '.join(count)}"
    if kept:
        judge = previous[kept[0]].judge
        said += f"{';' if count else ':'} on {', '.join(kept)} the server judge ({judge}) answered, so its verdicts count and yours are kept beside them"
    notes = [said]
    return in_order(checklist, list(counted.values())), in_order(checklist, list(given.values())), notes
