"""The Generator protocol every backend (diffusers, embedded) implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from PIL import Image

if TYPE_CHECKING:
    from gems_mcp.critique.base import Judge
    from gems_mcp.types import Requirement

StepCallback = Callable[[int, int], None]
"""Called after each denoising step with (step, total_steps); from a worker thread."""


class GenerationError(ValueError):
    """A request the backend cannot run; the message says what is allowed."""


class GenerationCancelled(Exception):
    """The caller asked to stop; denoising ended early."""


@dataclass(frozen=True)
class GenerationDefaults:
    width: int
    height: int
    steps: int
    guidance: float | None
    max_side: int = 2048
    max_steps: int = 200


@dataclass
class GenerationRequest:
    """One batched call: len(seeds) candidates, one seed each."""

    prompt: str
    seeds: list[int]
    width: int
    height: int
    steps: int
    guidance: float | None = None
    negative_prompt: str | None = None
    init_image: Image.Image | None = None
    strength: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """A text-to-image backend. Implementations load lazily and are safe to call from a thread."""

    name: str

    def defaults(self) -> GenerationDefaults:
        """Width, height, steps and guidance used where the caller gives none."""

    def supports(self, feature: str) -> bool:
        """Whether an optional feature is available: 'negative_prompt', 'guidance', 'edit'."""

    def validate_prompt(self, prompt: str) -> None:
        """Raise GenerationError when this model cannot draw the prompt (embedded world)."""

    def checklist(self, prompt: str) -> list[Requirement] | None:
        """Yes/no questions derived from the prompt, when the backend knows its world; else None."""

    def judge(self) -> Judge | None:
        """The exact judge that comes with the backend, if any."""

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        """Make one image per seed. Same request = same pixels. Raise GenerationCancelled on stop."""
