"""What an agent reads before its first call: the server instructions, the gems_loop prompt and the
descriptions of generate and refine, each naming the loaded model, what it draws and its limits.

Everything here is a pure function of `ModelFacts`, gathered once when the server is built (the
embedded model states its capabilities without loading; a diffusers pipeline only once loaded).
"""

from __future__ import annotations

from dataclasses import dataclass

from gems_mcp.config import Settings
from gems_mcp.generation.base import Capabilities

COORDINATES = (
    "Boxes are [x0, y0, x1, y1] as fractions 0..1 of the image width and height, origin top-left "
    "(x grows to the right, y grows down)."
)
FIXES = (
    "Fixes: wrong color or shape -> inpaint: repaint that object's box with the right object; "
    "missing -> inpaint: add it in a free box; extra -> inpaint: erase its box (prompt ''); "
    "wrong place -> inpaint: erase its box and add it where it belongs, in one call; "
    "whole image off, or the same edit failed twice -> regenerate: a new layout or a rewritten prompt."
)
LAYOUT_WHEN = (
    "Lay out (layout=[{prompt, box}], one region per object, prompt naming one object) when the request "
    "places objects, counts them, or gives several objects their own colors."
)


@dataclass(frozen=True)
class ModelFacts:
    """The loaded model as the agent needs to know it; caps is None until a pipeline has loaded."""

    name: str
    caps: Capabilities | None
    judge: str
    max_n: int
    max_rounds: int

    @property
    def modes(self) -> list[str]:
        caps = self.caps
        modes = ["regenerate"]
        if caps is None or "edit" in caps.features:
            modes.append("edit")
        if caps is None or "inpaint" in caps.features:
            modes.append("inpaint")
        return modes


def judge_words(settings: Settings) -> str:
    """Who answers the checklist, as the agent should hear it."""
    models = settings.judge_models
    if models:
        return ", ".join(f"{kind}:{name}" for kind, name in models.items())
    if settings.judge == "none":
        return "none"
    return "exact" if not settings.model else "none"


def facts(settings: Settings, name: str, caps: Capabilities | None) -> ModelFacts:
    max_n = min(settings.max_candidates, caps.max_batch) if caps else settings.max_candidates
    return ModelFacts(name, caps, judge_words(settings), max_n, settings.max_rounds)


def model_text(model: ModelFacts) -> str:
    """Model, what it draws, limits, modes and levers: one paragraph."""
    caps = model.caps
    if caps is None:
        return (
            f"Model: {model.name}, a diffusers pipeline: it draws any scene a text prompt describes. Its sizes, steps "
            f"and features are known once it has loaded (every generate result names them). n: 1-{model.max_n} images "
            f"per call; {model.max_rounds} rounds per trajectory."
        )
    levers = ["seed", "prompt rewording"]
    levers += [lever for feature, lever in (("layout", "layout"), ("inpaint", "region edits (inpaint)"),
                                            ("edit", "image edit"), ("guidance", "guidance"),
                                            ("negative_prompt", "negative prompt")) if feature in caps.features]
    return (
        f"Model: {model.name} ({caps.name}). It draws: {caps.draws} "
        f"Limits: width and height {caps.min_side}-{caps.max_side} px in multiples of {caps.side_multiple} "
        f"(default {caps.width}x{caps.height}); steps 1-{caps.max_steps} (default {caps.steps}); "
        f"n 1-{model.max_n} images per call; layout and edits up to {caps.max_regions} regions each; "
        f"{model.max_rounds} rounds per trajectory. Modes: {', '.join(model.modes)}. Levers: {', '.join(levers)}."
    )


def judge_text(model: ModelFacts) -> str:
    if model.judge == "none":
        return ("Judge: none. Answer every question yourself with critique(trajectory_id, verdicts=[{id, passed, "
                "note}]); a trajectory is done when all pass or its rounds are spent.")
    if "vlm:" in model.judge:
        return (f"Judge: {model.judge}. It answers every question, yours included, with P(yes) (a question passes "
                "at 0.5 or more); you may add your own verdicts with critique(trajectory_id, verdicts=[...]), kept "
                "beside its own.")
    return (
        f"Judge: {model.judge}. It answers the questions it can read (objects, counts, colors, relations, "
        "your own questions in those forms too) and says where it found each object; a question it cannot read "
        "is marked 'for you': answer it with critique(trajectory_id, verdicts=[{id, passed, note}]). "
        "The trajectory is not done until every question passes, yours included."
    )


def instructions(model: ModelFacts) -> str:
    """The server instructions: the model first, then the loop."""
    return "\n".join([
        ("gems-mcp generates images with a local diffusion model and checks each image against a fixed yes/no "
         "checklist."),
        model_text(model),
        judge_text(model),
        COORDINATES,
        "Loop: (1) if a skill_* tool fits, call it and rewrite the prompt with its instructions; (2) "
        "recall_memory(query=<request>) for lessons from earlier tasks; (3) generate(prompt, requirements=[yes/no "
        "questions], intent=<the user's words>, skill=..., layout=...) starts a trajectory: its checklist is the "
        "questions the model's own checker reads from the prompt, your requirements, and the relations your layout "
        "draws; intent is stored as you wrote it, never parsed. " + LAYOUT_WHEN + " (4) Read the verdicts and the "
        "'found' line; answer the questions marked 'for you'. (5) While questions fail and the status is active, "
        "refine with an experience under 100 words naming the lever you change. " + FIXES,
        ("Stop when the status says DONE: its 'answer: image <id>' line names the image to show "
         "(gems://images/<id>)."),
    ])


def generate_description(model: ModelFacts) -> str:
    return " ".join([
        "Start a trajectory: fix its checklist and run round 1 (n candidates in one batch), optionally from a layout.",
        model_text(model),
        LAYOUT_WHEN,
        COORDINATES,
    ])


def refine_description(model: ModelFacts) -> str:
    return " ".join([
        "Record the last round's experience and run the next round: regenerate, edit, or repaint regions.",
        f"Model: {model.name}; modes: {', '.join(model.modes)}; n 1-{model.max_n}.",
        FIXES,
        COORDINATES,
    ])


def loop_prompt(request: str, model: ModelFacts) -> str:
    """The gems_loop prompt: the loop, the levers and the coordinates, for an agent new to the server."""
    return "\n".join([
        f"Make an image for this request: {request}",
        "",
        model_text(model),
        judge_text(model),
        "",
        "Work in the GEMS loop with the gems-mcp tools:",
        ("1. Plan: if a skill_* tool fits the request, call it and rewrite the prompt with its instructions into "
         "words the model draws. If the model cannot draw the request at all, tell the user so instead of "
         "generating a substitute."),
        ("2. Decompose: write up to 8 yes/no questions, each saying what it tests ('Are there exactly three green "
         "triangles?'). They are all kept: the judge answers those it can read, you answer the rest."),
        "3. Remember: call recall_memory(query=<request>) and apply any lesson it returns.",
        "4. " + LAYOUT_WHEN + " " + COORDINATES + " 'A left of B' means every A box centre is clearly "
        "left of every B box centre; keep boxes apart.",
        ("5. Generate: generate(prompt=<rewrite>, requirements=<questions>, intent=<the request, word for word>, "
         "skill=<id>, layout=<regions>, n=2)."),
        ("6. Verify: read the verdicts and the 'found' line (each object with its box); answer every question "
         "marked 'for you' with critique(trajectory_id, verdicts=[...])."),
        "7. Refine: while the status is active and questions fail, call refine(trajectory_id, prompt, experience, "
        "mode, edits or layout). " + FIXES + " Give an experience under 100 "
        "words naming the lever you used.",
        "8. Stop when the status says DONE and show the image its 'answer: image <id>' names (gems://images/<id>).",
    ])
