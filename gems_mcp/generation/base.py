"""The Generator protocol every backend (diffusers, the shapes world) implements.

A backend states what it can do and its limits once, as Capabilities; `Capabilities.resolve` fills
a caller's parameters with the model's defaults and refuses what does not fit. Nothing else
repeats those limits: the backend receives parameters that are already valid for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from PIL import Image

from gems_mcp.errors import GenerationCancelled, GenerationError, InvalidRequest, Unsupported
from gems_mcp.types import GenerationParams, ImageParams, Region

if TYPE_CHECKING:
    from gems_mcp.critique.base import Judge
    from gems_mcp.types import Requirement

StepCallback = Callable[[int, int], None]
"""Called after each denoising step with (step, total_steps); from a worker thread."""

Feature = Literal["guidance", "negative_prompt", "edit", "inpaint", "layout"]

__all__ = [
    "Capabilities",
    "Feature",
    "GenerationCancelled",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "StepCallback",
]


@dataclass(frozen=True)
class Capabilities:
    """What one loaded model can do: its defaults, its limits and its optional features."""

    width: int
    height: int
    steps: int
    guidance: float | None
    min_side: int = 16
    max_side: int = 2048
    side_multiple: int = 8
    max_steps: int = 200
    max_guidance: float = 50.0
    max_batch: int = 64
    max_regions: int = 8
    features: frozenset[str] = field(default_factory=frozenset)
    name: str = "the model"
    draws: str = "any scene a text prompt describes."
    """What the model can draw, in words an agent reads before its first call."""
    skill_params: frozenset[str] = frozenset({"width", "height", "steps", "guidance", "negative_prompt"})
    """Parameters a skill's defaults may set; a model whose steps and guidance were tuned with its weights keeps its own."""

    def require(self, feature: Feature, what: str) -> None:
        """Raise Unsupported naming what the model cannot do."""
        if feature not in self.features:
            raise Unsupported(f"{self.name} cannot {what}")

    def resolve(self, wanted: ImageParams, strength: float | None = None) -> GenerationParams:
        """The caller's parameters with this model's defaults filled in, each checked against its limits."""
        width = self.width if wanted.width is None else wanted.width
        height = self.height if wanted.height is None else wanted.height
        for name, side in (("width", width), ("height", height)):
            self._check_side(name, side)
        steps = self.steps if wanted.steps is None else wanted.steps
        if not 1 <= steps <= self.max_steps:
            raise InvalidRequest(f"steps must be between 1 and {self.max_steps}, got {steps}")
        if wanted.guidance is not None:
            self.require("guidance", "take a guidance scale; leave guidance out")
            if not 0 <= wanted.guidance <= self.max_guidance:
                raise InvalidRequest(f"guidance must be between 0 and {self.max_guidance:g}, got {wanted.guidance:g}")
        guidance = self.guidance if wanted.guidance is None else wanted.guidance
        negative = wanted.negative_prompt or None
        if negative is not None:
            self.require("negative_prompt", "take a negative prompt; leave negative_prompt out")
        if strength is not None and not 0 < strength <= 1:
            raise InvalidRequest(f"strength must be in (0, 1], got {strength:g}")
        return GenerationParams(
            width=width, height=height, steps=steps, guidance=guidance, negative_prompt=negative, strength=strength
        )

    def unfit(self, params: ImageParams) -> list[str]:
        """Names of the set parameters this model cannot take (for skill defaults, which are advice)."""
        names = []
        for name, value in params.model_dump(exclude_none=True).items():
            try:
                self.resolve(ImageParams(**{name: value}))
            except InvalidRequest:
                names.append(name)
        return names

    def check_batch(self, n: int) -> None:
        if not 1 <= n <= self.max_batch:
            raise InvalidRequest(f"{self.name} draws 1 to {self.max_batch} images in one call, not {n}")

    def check_regions(self, regions: list[Region], what: Literal["layout", "edits"]) -> None:
        """A layout or edit list this model can draw: not empty, not over the limit."""
        if not regions:
            raise InvalidRequest(f"{what} is empty; give at least one region")
        if len(regions) > self.max_regions:
            raise InvalidRequest(f"{what} holds at most {self.max_regions} regions, got {len(regions)}")
        if what == "layout" and any(not r.prompt.strip() for r in regions):
            raise InvalidRequest("every layout region needs a prompt (an empty prompt only erases, in edits)")

    def _check_side(self, name: str, side: int) -> None:
        if not self.min_side <= side <= self.max_side or side % self.side_multiple:
            raise InvalidRequest(
                f"{name} must be a multiple of {self.side_multiple} between {self.min_side} and "
                f"{self.max_side} pixels for {self.name}, got {side}"
            )


@dataclass
class GenerationRequest:
    """One batched call: len(seeds) candidates, one seed each, with parameters already resolved.

    Four kinds: text to image (no init image, no regions); layout (regions, each drawn in its box);
    edit (init image and strength: image to image); inpaint (init image and edits: only the edit
    boxes are repainted, every other pixel is kept).
    """

    prompt: str
    seeds: list[int]
    params: GenerationParams
    init_image: Image.Image | None = None
    layout: list[Region] = field(default_factory=list)
    background: str | None = None
    edits: list[Region] = field(default_factory=list)

    @property
    def kind(self) -> Literal["text", "layout", "edit", "inpaint"]:
        if self.edits:
            return "inpaint"
        if self.init_image is not None:
            return "edit"
        return "layout" if self.layout else "text"


@runtime_checkable
class Generator(Protocol):
    """A text-to-image backend. Implementations load lazily and are safe to call from a thread."""

    name: str

    def capabilities(self) -> Capabilities:
        """Defaults, limits and optional features; may load the model to find them."""

    def validate_prompt(self, prompt: str) -> None:
        """Raise InvalidRequest when this model cannot draw the prompt (the shapes world)."""

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
