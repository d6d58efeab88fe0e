"""What the tools say: pure functions from trajectories to text and structured results, no MCP.

Every phrase about a trajectory's status lives here once (status_text, DONE_WHY, answer_text); what an
agent reads before its first call lives in guide.
"""

from __future__ import annotations

import json
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from gems_mcp import boxes, uris
from gems_mcp.errors import InvalidRequest
from gems_mcp.images import ImageStore, contact_sheet
from gems_mcp.types import Candidate, Round, Trajectory

DONE_WHY = {"all_passed": "every question passes", "budget_spent": "round budget spent", "closed": "closed"}


class CritiqueResult(BaseModel):
    """Structured result of critique."""

    trajectory_id: str
    round: int
    status: str
    checklist: list[dict[str, Any]] = Field(
        description="Questions, who answers each (answered_by: 'judge', or 'agent' for those marked 'for you'), and "
        "their answers for each image of the round.")
    images: list[str] = Field(description="Image ids of the round; read gems://images/{id} for the full PNG.")
    detections: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="Per image id: objects the server judge found, each with its box [x0, y0, x1, y1] in 0..1.",
    )
    best_round: int | None
    message: str


class RecallResult(BaseModel):
    """Structured result of recall_memory."""

    view: dict[str, Any] | None = Field(default=None, description="The trajectory's compressed global view.")
    lessons: list[dict[str, Any]] | None = Field(default=None, description="Lessons from similar finished tasks.")
    recent: list[dict[str, Any]] | None = Field(default=None, description="Recent trajectories, newest first.")


def status_text(trajectory: Trajectory) -> str:
    """'active' or 'done (all_passed)': the status as programs read it."""
    return trajectory.status if trajectory.status == "active" else f"done ({trajectory.done_reason})"


def answer_text(trajectory: Trajectory) -> str:
    """'answer: image <id> (round 2, 6/6)': the image to show, the one rule every surface names it by."""
    best = trajectory.best_round()
    if best is None:
        return "answer: none yet (no judged round)"
    image = best.best_candidate().image_id
    return f"answer: image {image} (round {best.index}, {best.passed}/{len(trajectory.checklist)})"


def for_agent(trajectory: Trajectory, rnd: Round) -> list[str]:
    """Ids of the questions no server judge answered on the round's best image: the agent answers them."""
    return rnd.unanswered(trajectory.checklist) if rnd.judged else []


def status_line(trajectory: Trajectory) -> str:
    """The last line of every round result: done or active, the answer, and what to do next."""
    if trajectory.status == "done":
        return f"status: DONE ({DONE_WHY[trajectory.done_reason or 'closed']}); {answer_text(trajectory)}."
    left = trajectory.max_rounds - len(trajectory.rounds)
    waiting = for_agent(trajectory, trajectory.rounds[-1]) if trajectory.rounds else []
    if waiting:
        then = "refine if any question fails" if left else "no rounds are left, so that ends it (or close_trajectory)"
        step = (f"Answer {', '.join(waiting)} (marked 'for you') with critique('{trajectory.id}', "
                f"verdicts=[{{id, passed, note}}]); {then}.")
    else:
        step = "Call refine to try again."
    return f"status: active, {left} round(s) left; {answer_text(trajectory)}. {step}"


def score(trajectory: Trajectory, candidate: Candidate) -> str:
    return f"{candidate.passed}/{len(trajectory.checklist)} passed"


def candidate_labels(trajectory: Trajectory, rnd: Round) -> list[str]:
    """Contact-sheet labels: the candidate's number, and its score once it has verdicts."""
    return [
        f"{i}: {score(trajectory, c)}" if c.verdicts is not None else str(i) for i, c in enumerate(rnd.candidates, start=1)
    ]


def round_summary(trajectory: Trajectory, rnd: Round, notes: list[str] | None = None) -> str:
    """The short text every image result starts with."""
    lines = [
        f"trajectory {trajectory.id} · round {rnd.index}/{trajectory.max_rounds} · mode {rnd.mode} · model {trajectory.model}",
        f"prompt: {rnd.prompt}",
    ]
    lines += _regions_lines(rnd)
    for i, c in enumerate(rnd.candidates, start=1):
        scored = f" · {score(trajectory, c)}" if c.verdicts is not None else ""
        lines.append(f"image {i}: {c.image_id} (seed {c.seed}){scored}")
    lines += _verdict_lines(trajectory, rnd)
    p = rnd.params
    extras = [f"guidance {p.guidance:g}" if p.guidance is not None else "", f"strength {p.strength:g}" if p.strength else ""]
    lines.append(f"params: {p.width}x{p.height}, {p.steps} steps" + "".join(f", {e}" for e in extras if e))
    lines.append("timings: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in rnd.timings.items()))
    lines.append(status_line(trajectory))
    lines.extend(f"note: {n}" for n in notes or [])
    return "\n".join(lines)


def _regions_lines(rnd: Round) -> list[str]:
    lines = []
    if rnd.layout:
        lines.append("layout: " + "; ".join(f"{r.prompt} {boxes.fmt(r.box)}" for r in rnd.layout))
    if rnd.edits:
        lines.append("edits: " + "; ".join(f"{r.prompt or '(erase)'} {boxes.fmt(r.box)}" for r in rnd.edits))
    return lines


def _verdict_lines(trajectory: Trajectory, rnd: Round) -> list[str]:
    best = rnd.best_candidate() if rnd.judged else None
    answers = {v.requirement_id: v for v in best.verdicts or []} if best else {}
    lines = []
    waiting = set(for_agent(trajectory, rnd))
    if best:
        lines.append(f"verdicts for {best.image_id}:")
    elif trajectory.checklist:
        lines.append("checklist (not verified yet: call critique, and answer it yourself if no judge runs):")
    for req in trajectory.checklist:
        v = answers.get(req.id)
        mark = "?" if v is None else ("✓" if v.passed else "✗")
        # The judge's 'found: ...' note repeats on every question; the detections line says it once.
        note = f" ({v.note})" if v is not None and v.note and not (best and best.detections is not None) else ""
        if req.id in waiting:
            note = " (for you: no server judge reads this question; answer it with critique verdicts)"
        lines.append(f"  {mark} {req.id} {req.question}{note}")
    if best and best.detections is not None:
        found = "; ".join(d.describe() for d in best.detections) or "nothing"
        lines.append(f"found (boxes [x0, y0, x1, y1], 0..1): {found}")
    return lines


def critique_result(trajectory: Trajectory, rnd: Round, notes: list[str]) -> CritiqueResult:
    rows = []
    for req in trajectory.checklist:
        answers = {}
        for c in rnd.candidates:
            v = next((v for v in c.verdicts or [] if v.requirement_id == req.id), None)
            answer: dict[str, Any] | None = None if v is None else {"passed": v.passed, "note": v.note, "judge": v.judge}
            if answer is not None and v is not None and v.probability is not None:
                answer["probability"] = v.probability  # P(yes) from a VLM judge
            answers[c.image_id] = answer
        judged = any(a is not None and a["judge"] != "agent" for a in answers.values())
        who = "judge" if judged else "agent"
        rows.append({"id": req.id, "question": req.question, "kind": req.kind, "answered_by": who, "answers": answers})
    best = trajectory.best_round()
    if rnd.judged:
        message = status_line(trajectory)
    else:
        message = _answer_yourself(trajectory)
    if notes:
        message = "; ".join(notes) + ". " + message
    detections = {
        c.image_id: [d.model_dump(mode="json") for d in c.detections] for c in rnd.candidates if c.detections is not None
    }
    return CritiqueResult(
        trajectory_id=trajectory.id,
        round=rnd.index,
        status=status_text(trajectory),
        checklist=rows,
        images=[c.image_id for c in rnd.candidates],
        detections=detections,
        best_round=best.index if best else None,
        message=message,
    )


def critique_text(trajectory: Trajectory, rnd: Round, result: CritiqueResult, notes: list[str]) -> str:
    """The round's summary (which ends with the status line and the notes); for an unjudged round, how to answer."""
    summary = round_summary(trajectory, rnd, notes)
    return summary if rnd.judged else summary + "\n" + _answer_yourself(trajectory)


def _answer_yourself(trajectory: Trajectory) -> str:
    return (
        "No server judge checked this round: look at the images (read gems://images/<id>) and call "
        f"critique('{trajectory.id}', verdicts=[{{id, passed, note}}, ...]) with one answer per question."
    )


def summary_row(trajectory: Trajectory) -> dict[str, Any]:
    """One line's facts about a trajectory, for the recent list."""
    best = trajectory.best_round()
    return {
        "id": trajectory.id,
        "intent": trajectory.intent[:120],
        "rounds": len(trajectory.rounds),
        "best": f"round {best.index}: {best.passed}/{len(trajectory.checklist)}" if best else None,
        "answer": answer_text(trajectory),
        "status": status_text(trajectory),
        "uri": uris.trajectory(trajectory.id),
    }


def recall_result(view: Any, lessons: Any, recent: list[Trajectory] | None) -> RecallResult:
    return RecallResult(
        view=view.model_dump(mode="json") if view else None,
        lessons=[h.model_dump(mode="json") for h in lessons] if lessons is not None else None,
        recent=[summary_row(t) for t in recent] if recent is not None else None,
    )


def recall_text(view: Any, lessons: Any, recent: list[Trajectory] | None) -> str:
    """recall_memory as text: the view, the lessons with their scores, or the recent trajectories."""
    parts: list[str] = []
    if view is not None:
        parts.append(view.to_text())
    if lessons is not None:
        if not lessons:
            parts.append("No lessons from earlier tasks resemble this prompt.")
        for hit in lessons:
            lesson = hit.lesson
            parts.append(f"Lesson ({lesson.kind}, score {hit.score:.2f}) from '{lesson.intent[:80]}': {lesson.text}")
    if recent is not None:
        if not recent:
            parts.append("No trajectories yet; call generate to start one.")
        for row in map(summary_row, recent):
            parts.append(f"{row['id']} · {row['status']} · {row['rounds']} round(s) · best {row['best']} · {row['intent']}")
    return "\n".join(parts)


def close_text(trajectory: Trajectory) -> str:
    return f"Trajectory {trajectory.id} is done ({trajectory.done_reason}); {answer_text(trajectory)}."


def trajectory_sheet(trajectory: Trajectory, images: ImageStore) -> Image.Image:
    """A contact sheet of every round's best image, labelled with round and score."""
    if not trajectory.rounds:
        raise InvalidRequest(f"trajectory {trajectory.id} has no rounds yet")
    total = len(trajectory.checklist)
    tiles = [images.load(rnd.best_candidate().image_id) for rnd in trajectory.rounds]
    labels = [f"round {r.index}  {f'{r.passed}/{total}' if r.judged else 'unjudged'}" for r in trajectory.rounds]
    return contact_sheet(tiles, labels)


def skill_text(skill_id: str, prompt: str, body: Any) -> str:
    """What a skill tool returns: instructions, extra checklist questions and defaults."""
    parts = [f"# Skill {skill_id}", f"Prompt to rewrite: {prompt}", "## Instructions", body.instructions.strip()]
    if body.checklist:
        parts += ["## Checklist questions this skill adds", *[f"- {q}" for q in body.checklist]]
    defaults = body.defaults.model_dump(exclude_none=True)
    if defaults:
        parts += ["## Generation defaults", json.dumps(defaults)]
    if body.references:
        parts += [f"## References (read {uris.skill(skill_id)}/<file>)", *[f"- {r}" for r in body.references]]
    parts.append(f"Next: generate(prompt=<your rewrite>, skill='{skill_id}', requirements=[...]).")
    return "\n".join(parts)
