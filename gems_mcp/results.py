"""What the tools say: pure functions from trajectories to text and structured results, no MCP.

Every phrase about a trajectory's status lives here once (status_text, DONE_WHY).
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

INSTRUCTIONS = """\
gems-mcp generates images with a local diffusion model and checks them against a fixed yes/no checklist.
Run the loop: (1) optionally call a skill_* tool whose description fits the prompt and rewrite the prompt \
with its instructions; (2) call recall_memory(query=<prompt>) for lessons from earlier tasks; \
(3) generate(prompt, requirements=[yes/no questions], skill=...) starts a trajectory; when the prompt says \
where things go or which object has which color, also pass layout=[{prompt, box}] (boxes [x0, y0, x1, y1] \
as fractions 0..1 of the image, origin top-left) so each object is drawn in its box; \
(4) read the verdicts and where the judge found each object (or call critique and answer the questions \
yourself when no server judge ran); (5) while questions fail and the result says the trajectory is active, \
call refine with a short experience (< 100 words: what failed and what you change): for one wrong object use \
mode='inpaint' with edits=[{box, prompt}] (wrong color: repaint its box; missing: add it in a free box; \
wrong place: erase its box with prompt '' and add it where it belongs; extra: erase it), which keeps every \
other pixel; otherwise regenerate with a rewritten prompt or a new layout. The answer is the round with \
most passes; recall_memory(trajectory_id) shows the whole history compactly."""


def loop_prompt(request: str) -> str:
    """The gems_loop prompt: the loop, the levers and the coordinates, for an agent new to the server."""
    return (
        f"Make an image for this request: {request}\n\n"
        "Work in the GEMS loop with the gems-mcp tools:\n"
        "1. Plan: if a skill_* tool fits the request, call it and rewrite the prompt with its instructions.\n"
        "2. Decompose: write 3-8 yes/no questions that together mean 'the image matches the request'.\n"
        "3. Remember: call recall_memory(query=<request>) and apply any lesson it returns.\n"
        "4. Lay out: when the request says where things are, how many, or which object has which color, "
        "write a layout: one region per object, {prompt: 'a red circle', box: [x0, y0, x1, y1]} with "
        "fractions 0..1 of the image (origin top-left); 'left of' means the first box's centre is clearly "
        "left of the second's; keep boxes apart.\n"
        "5. Generate: generate(prompt, requirements=<questions>, intent=<request>, skill=<id>, layout=<regions>, n=2).\n"
        "6. Verify: read the verdicts and the 'found' line (each object with its box); if no judge ran, call "
        "critique and answer each question honestly.\n"
        "7. Refine: while the result says 'active' and questions fail, fix them region by region with "
        "refine(mode='inpaint', edits=[{box, prompt}]): wrong color -> repaint that object's box with the right "
        "object; missing -> add it in a free box; wrong place -> erase its box (prompt '') and add it where it "
        "belongs, in one call; extra object -> erase it. Every pixel outside the boxes is kept. When the whole "
        "image is off, regenerate with a new prompt or layout instead. Give an experience under 100 words "
        "naming the lever you used.\n"
        "8. Stop when the status says DONE and show the best round's image (gems://images/<id>)."
    )


DONE_WHY = {"all_passed": "every question passes", "budget_spent": "round budget spent", "closed": "closed"}


class CritiqueResult(BaseModel):
    """Structured result of critique."""

    trajectory_id: str
    round: int
    status: str
    checklist: list[dict[str, Any]] = Field(description="Questions with their answers for each image of the round.")
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


def best_text(trajectory: Trajectory) -> str:
    best = trajectory.best_round()
    return f"best round {best.index} ({best.passed}/{len(trajectory.checklist)})" if best else "no judged round yet"


def status_line(trajectory: Trajectory) -> str:
    """The last line of every round result: done or active, the best round, and what to do next."""
    if trajectory.status == "done":
        return f"status: DONE ({DONE_WHY[trajectory.done_reason or 'closed']}); answer: {best_text(trajectory)}."
    left = trajectory.max_rounds - len(trajectory.rounds)
    return f"status: active, {left} round(s) left; {best_text(trajectory)}. Call refine to try again."


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
    if best:
        lines.append(f"verdicts for {best.image_id}:")
    elif trajectory.checklist:
        lines.append("checklist (not verified yet: call critique, and answer it yourself if no judge runs):")
    for req in trajectory.checklist:
        v = answers.get(req.id)
        mark = "?" if v is None else ("✓" if v.passed else "✗")
        # The judge's 'found: ...' note repeats on every question; the detections line says it once.
        note = f" ({v.note})" if v is not None and v.note and not (best and best.detections is not None) else ""
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
        rows.append({"id": req.id, "question": req.question, "kind": req.kind, "answers": answers})
    best = trajectory.best_round()
    if rnd.judged:
        message = status_line(trajectory)
    else:
        message = (
            "No server judge checks this model: look at the images (read gems://images/<id>) and call "
            f"critique('{trajectory.id}', verdicts=[{{id, passed, note}}, ...]) with one answer per question."
        )
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
    return round_summary(trajectory, rnd, notes) + "\n" + result.message


def summary_row(trajectory: Trajectory) -> dict[str, Any]:
    """One line's facts about a trajectory, for the recent list."""
    best = trajectory.best_round()
    return {
        "id": trajectory.id,
        "intent": trajectory.intent[:120],
        "rounds": len(trajectory.rounds),
        "best": f"round {best.index}: {best.passed}/{len(trajectory.checklist)}" if best else None,
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
    best = trajectory.best_round()
    answer = f" The answer is round {best.index}." if best else ""
    return f"Trajectory {trajectory.id} is done ({trajectory.done_reason}).{answer}"


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
