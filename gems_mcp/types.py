"""Pydantic models shared by every layer: what crosses MCP or goes to disk."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gems_mcp.boxes import Box
from gems_mcp.checks import Check, Detection
from gems_mcp.errors import InvalidRequest, NotJudged, TrajectoryFinished

RequirementKind = Literal[
    "object", "count", "color", "position", "attribute", "text", "style", "other"
]
RequirementSource = Literal["prompt", "agent", "skill", "layout"]
RoundMode = Literal["generate", "regenerate", "edit", "inpaint"]
RefineMode = Literal["regenerate", "edit", "inpaint"]
DoneReason = Literal["all_passed", "budget_spent", "closed"]


def new_id(prefix: str) -> str:
    """A short random id such as ``t-3f9a1c2b7d``."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now() -> float:
    return time.time()


class Requirement(BaseModel):
    """One yes/no question of a trajectory's checklist (GEMS: the decomposer's output)."""

    id: str = Field(description="Stable id within the trajectory: q1, q2, ...")
    question: str = Field(description="A yes/no question about the image.")
    kind: RequirementKind = "other"
    source: RequirementSource = "agent"
    check: Check | None = Field(
        default=None,
        description="Machine-checkable form, decided from detected objects (exact judge, detector); None otherwise.",
    )


class Verdict(BaseModel):
    """One answer to one checklist question for one image."""

    requirement_id: str
    passed: bool
    note: str | None = None
    judge: str = Field(description="Who answered: 'exact', 'vlm:<model>', 'agent', ...")
    probability: float | None = Field(
        default=None, ge=0.0, le=1.0, description="P(yes) when a VLM judge answered; passed means P(yes) >= 0.5."
    )


class Candidate(BaseModel):
    """One image of a round, with the seed that made it and its verdicts once judged."""

    image_id: str
    seed: int
    verdicts: list[Verdict] | None = None
    detections: list[Detection] | None = Field(
        default=None, description="What the server judge found in the image, with boxes (0..1)."
    )
    agent_verdicts: list[Verdict] | None = Field(
        default=None, description="The calling agent's own answers, kept beside (never over) a server judge's."
    )

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts or [])


class ImageParams(BaseModel):
    """Parameters of an image a caller or a skill may set; None means 'the model's default'.

    One model from the tool boundary to the backend: the backend's Capabilities fill the defaults
    and check every value against its own limits, once (generation.base.Capabilities.resolve).
    """

    model_config = ConfigDict(extra="forbid")

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None


class GenerationParams(ImageParams):
    """The parameters a round was generated with (after defaults were applied)."""

    strength: float | None = None
    source_image_id: str | None = Field(
        default=None, description="The image an edit or inpaint round started from."
    )

    # Capabilities.resolve fills width, height and steps on every round a backend receives; these read them
    # as the plain values a backend needs and fail loudly on parameters that were never resolved.
    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a resolved round."""
        if self.width is None or self.height is None:
            raise ValueError("the round's parameters were not resolved (no width/height)")
        return self.width, self.height

    @property
    def step_count(self) -> int:
        """The number of denoising steps of a resolved round."""
        if self.steps is None:
            raise ValueError("the round's parameters were not resolved (no steps)")
        return self.steps


class Region(BaseModel):
    """A box and what to draw in it: a layout region, or a region edit (empty prompt erases)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(max_length=300, description="What to draw inside the box; for an edit, '' erases to background.")
    box: Box


class Round(BaseModel):
    """One generate/refine step: the prompt tried, its candidates and what was learned."""

    index: int = Field(description="1-based round number.")
    prompt: str
    mode: RoundMode
    params: GenerationParams
    candidates: list[Candidate]
    layout: list[Region] | None = Field(default=None, description="Regions the round was drawn from (layout).")
    background: str | None = Field(default=None, description="The layout's background prompt, if any.")
    edits: list[Region] | None = Field(default=None, description="Regions an inpaint round repainted.")
    experience: str | None = Field(
        default=None, description="< 100 words: what this round taught (agent or derived)."
    )
    experience_source: Literal["agent", "derived"] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    created_at: float = Field(default_factory=now)

    @property
    def judged(self) -> bool:
        return any(c.verdicts is not None for c in self.candidates)

    def best_candidate(self) -> Candidate:
        """The candidate with most passes; the first on ties."""
        return max(self.candidates, key=lambda c: c.passed)

    @property
    def passed(self) -> int:
        return self.best_candidate().passed if self.judged else 0

    def unanswered(self, checklist: list[Requirement]) -> list[str]:
        """Ids of the questions the best image has no verdict on (no judge read them; the agent has not answered)."""
        answered = {v.requirement_id for v in self.best_candidate().verdicts or []} if self.judged else set()
        return [req.id for req in checklist if req.id not in answered]


class Trajectory(BaseModel):
    """A whole task: intent, a fixed checklist and the rounds run against it."""

    id: str = Field(default_factory=lambda: new_id("t"))
    intent: str = Field(description="The user's original prompt; never rewritten.")
    checklist: list[Requirement]
    skill: str | None = None
    model: str = ""
    max_rounds: int = 5
    rounds: list[Round] = Field(default_factory=list)
    status: Literal["active", "done"] = "active"
    done_reason: DoneReason | None = None
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)

    def best_round(self) -> Round | None:
        """The judged round with most passes, the earliest on ties."""
        judged = [r for r in self.rounds if r.judged]
        if not judged:
            return None
        return max(judged, key=lambda r: (r.passed, -r.index))

    def stop_reason(self) -> DoneReason | None:
        """The stop rule: every question passes in some round, or the budget is spent and the last round fully
        answered (questions no server judge reads wait for the agent's verdicts)."""
        if self.status == "done":
            return self.done_reason
        if not self.rounds:
            return None
        total = len(self.checklist)
        if total and any(r.judged and r.passed == total for r in self.rounds):
            return "all_passed"
        if len(self.rounds) >= self.max_rounds and (not total or not self.rounds[-1].unanswered(self.checklist)):
            return "budget_spent"
        return None

    def check_can_continue(self) -> None:
        """Raise when no further round may run: done, out of budget, no rounds, last round unjudged."""
        if self.status == "done":
            why = {
                "all_passed": "is done: every question already passes",
                "budget_spent": f"is done: its {self.max_rounds}-round budget is spent",
                "closed": "is done: it was closed",
            }[self.done_reason or "closed"]
            best = self.best_round()
            answer = f"; the answer is image {best.best_candidate().image_id} (round {best.index})" if best else ""
            raise TrajectoryFinished(self.id, why + answer)
        if not self.rounds:
            raise TrajectoryFinished(self.id, "has no rounds to continue from")
        if len(self.rounds) >= self.max_rounds:
            raise TrajectoryFinished(self.id, f"has used its {self.max_rounds}-round budget")
        if not self.rounds[-1].judged and self.checklist:
            raise NotJudged(self.id, self.rounds[-1].index)

    def round(self, index: int | None = None) -> Round:
        """The round with this 1-based index, or the latest one."""
        if not self.rounds:
            raise InvalidRequest(f"trajectory {self.id} has no rounds yet")
        if index is None:
            return self.rounds[-1]
        if not 1 <= index <= len(self.rounds):
            raise InvalidRequest(
                f"trajectory {self.id} has rounds 1..{len(self.rounds)}; there is no round {index}"
            )
        return self.rounds[index - 1]


class Lesson(BaseModel):
    """Cross-task memory: an experience that came before a question flipped to pass."""

    id: str = Field(default_factory=lambda: new_id("l"))
    trajectory_id: str
    intent: str
    question: str
    kind: RequirementKind
    skill: str | None = None
    text: str
    created_at: float = Field(default_factory=now)
    recalls: int = Field(
        default=0, description="How often recall_memory returned it; the lessons cap drops the least recalled."
    )
