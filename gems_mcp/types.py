"""Pydantic models shared by every layer: what crosses MCP or goes to disk."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

RequirementKind = Literal[
    "object", "count", "color", "position", "attribute", "text", "style", "other"
]
RequirementSource = Literal["prompt", "agent", "skill"]
RoundMode = Literal["generate", "regenerate", "edit"]
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
    check: dict[str, Any] | None = Field(
        default=None,
        description="Machine-checkable form for an exact judge (embedded world); None otherwise.",
    )


class Verdict(BaseModel):
    """One answer to one checklist question for one image."""

    requirement_id: str
    passed: bool
    note: str | None = None
    judge: str = Field(description="Who answered: 'exact', 'vlm:<model>', 'agent', ...")


class Candidate(BaseModel):
    """One image of a round, with the seed that made it and its verdicts once judged."""

    image_id: str
    seed: int
    verdicts: list[Verdict] | None = None

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts or [])


class GenerationParams(BaseModel):
    """The parameters a round was generated with (after defaults were applied)."""

    width: int
    height: int
    steps: int
    guidance: float | None = None
    negative_prompt: str | None = None
    strength: float | None = None
    source_image_id: str | None = Field(
        default=None, description="The image an edit round started from."
    )


class Round(BaseModel):
    """One generate/refine step: the prompt tried, its candidates and what was learned."""

    index: int = Field(description="1-based round number.")
    prompt: str
    mode: RoundMode
    params: GenerationParams
    candidates: list[Candidate]
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

    def round(self, index: int | None = None) -> Round:
        """The round with this 1-based index, or the latest one."""
        if not self.rounds:
            raise LookupError(f"trajectory {self.id} has no rounds yet")
        if index is None:
            return self.rounds[-1]
        if not 1 <= index <= len(self.rounds):
            raise LookupError(
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
