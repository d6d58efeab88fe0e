"""EmbeddedGenerator: the shipped shapes-world model behind the Generator protocol."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from gems_mcp.generation.base import (
    GenerationCancelled,
    GenerationDefaults,
    GenerationError,
    GenerationRequest,
    StepCallback,
)
from gems_mcp.shapes import world

if TYPE_CHECKING:
    from gems_mcp.shapes.judge import ExactJudge
    from gems_mcp.shapes.model import ShapesModel
    from gems_mcp.types import Requirement

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).parent / "weights"
MAX_SIDE = 1024
MAX_STEPS = 200
MAX_SEEDS = 64
DEFAULT_STRENGTH = 0.6
FALLBACK_GUIDANCE = 1.5
_FEATURES = {"guidance": True, "edit": True, "negative_prompt": False}


def shipped_guidance(folder: Path = WEIGHTS) -> float:
    """The guidance scale the weights were tuned for (their config says), without loading torch."""
    try:
        return float(json.loads((folder / "config.json").read_text()).get("guidance", FALLBACK_GUIDANCE))
    except (OSError, ValueError):
        return FALLBACK_GUIDANCE


class EmbeddedGenerator:
    """Draws shapes-world prompts offline on a CPU; loads its weights on first use."""

    name = "embedded-shapes"

    def __init__(self, weights: Path = WEIGHTS, device: str = "cpu") -> None:
        self._folder = Path(weights)
        self._device = device
        self._model: ShapesModel | None = None
        self._load_lock = threading.Lock()
        # one job at a time: two concurrent batches would only fight over the same cores
        self._run_lock = threading.Lock()
        self._defaults = GenerationDefaults(
            width=256, height=256, steps=20, guidance=shipped_guidance(self._folder),
            max_side=MAX_SIDE, max_steps=MAX_STEPS,
        )

    def defaults(self) -> GenerationDefaults:
        return self._defaults

    def supports(self, feature: str) -> bool:
        """guidance and edit yes; negative prompts no (the model was trained without them)."""
        return _FEATURES.get(feature, False)

    def validate_prompt(self, prompt: str) -> None:
        world.parse(prompt)

    def checklist(self, prompt: str) -> list[Requirement]:
        return world.checklist(prompt)

    def judge(self) -> ExactJudge:
        from gems_mcp.shapes.judge import ExactJudge

        return ExactJudge()

    def model(self) -> ShapesModel:
        """The loaded model; the first caller loads it, concurrent callers wait for that load."""
        with self._load_lock:
            if self._model is None:
                from gems_mcp.shapes.model import load_weights

                log.info("loading embedded model from %s", self._folder)
                self._model, _ = load_weights(self._folder, self._device)
            return self._model

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        """One image per seed; the same request gives the same pixels."""
        guidance = self._check(request)
        spec = world.parse(request.prompt)
        model = self.model()
        with self._run_lock:
            if should_stop is not None and should_stop():
                raise GenerationCancelled("stopped before the first step")
            native = _run(model, request, spec, guidance, _stepper(on_step, should_stop))
        size = (request.width, request.height)
        return [img.resize(size, Image.Resampling.NEAREST) for img in native]

    def _check(self, request: GenerationRequest) -> float:
        """Reject what the model cannot do, with the allowed range; returns the guidance to use."""
        _check_size(request.width, request.height)
        if not 1 <= request.steps <= MAX_STEPS:
            raise GenerationError(f"steps must be between 1 and {MAX_STEPS}; got {request.steps}.")
        if not 1 <= len(request.seeds) <= MAX_SEEDS:
            raise GenerationError(f"give between 1 and {MAX_SEEDS} seeds; got {len(request.seeds)}.")
        if request.negative_prompt:
            raise GenerationError("The embedded model does not support negative prompts; leave it empty.")
        guidance = self._defaults.guidance if request.guidance is None else request.guidance
        if not 0.0 <= float(guidance) <= 20.0:
            raise GenerationError(f"guidance must be between 0 and 20; got {guidance}.")
        if request.strength is not None and not 0.0 < request.strength <= 1.0:
            raise GenerationError(f"strength must be in (0, 1]; got {request.strength}.")
        return float(guidance)


def _check_size(width: int, height: int) -> None:
    for side in (width, height):
        if not (world.SIZE <= side <= MAX_SIDE and side % world.SIZE == 0):
            raise GenerationError(
                f"width and height must be multiples of {world.SIZE} between {world.SIZE} and "
                f"{MAX_SIDE} (the model draws {world.SIZE}x{world.SIZE} and scales up); got {width}x{height}."
            )


def _stepper(
    on_step: StepCallback | None, should_stop: Callable[[], bool] | None
) -> Callable[[int, int], None]:
    def step(done: int, total: int) -> None:
        if on_step is not None:
            on_step(done, total)
        if should_stop is not None and should_stop() and done < total:
            raise GenerationCancelled(f"stopped after step {done} of {total}")

    return step


def _run(
    model: ShapesModel,
    request: GenerationRequest,
    spec: world.SceneSpec,
    guidance: float,
    step: Callable[[int, int], None],
) -> list[Image.Image]:
    from gems_mcp.shapes.model import SampleJob, sample, to_tensor, to_uint8, tokenize

    job = SampleJob([tokenize(spec)] * len(request.seeds), list(request.seeds), request.steps, guidance)
    if request.init_image is not None:
        job.init = to_tensor(world.native_pixels(request.init_image)[None]).expand(
            len(request.seeds), -1, -1, -1
        )
        job.strength = DEFAULT_STRENGTH if request.strength is None else request.strength
    pixels = to_uint8(sample(model, job, on_step=step))
    return [Image.fromarray(p) for p in pixels]
