"""Which pipeline runs each lever of a loaded pipeline: diffusers' own class for its family, else the generic path.

diffusers has image-to-image and inpaint classes for some families (SD, SDXL, SD3, Flux, Qwen-Image,
Z-Image, ...): those are built once with ``from_pipe`` and share every weight. Any other pipeline that
takes ``latents`` and calls back after each step with them runs edits, repaints and layouts on itself,
through ``latent_paint.LatentPaint``.
"""

from __future__ import annotations

import threading
from typing import Any

from gems_mcp.errors import Unsupported
from gems_mcp.generation.loading import accepts

TASKS = {"image-to-image": "edit", "inpainting": "inpaint and layout"}


def own_class(pipeline_class: type, task: str) -> Any:
    """diffusers' own pipeline class for ``task`` in the family of ``pipeline_class`` (from the AutoPipeline
    tables), or None.

    Read from the tables rather than by trying ``from_pipe``, so that an unrelated failure (memory, a
    broken component) surfaces as itself and is never taken for a family without the class.
    """
    from diffusers.pipelines import auto_pipeline as auto

    wanted = {"image-to-image": auto.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING, "inpainting": auto.AUTO_INPAINT_PIPELINES_MAPPING}
    name = pipeline_class.__name__
    for table in auto.SUPPORTED_TASKS_MAPPINGS:
        for family, cls in table.items():
            if cls.__name__ == name:
                return wanted[task].get(family)
    return None


def step_callback(pipe: Any) -> str | None:
    """How the pipeline calls back after each step with its latents: "on_step_end" (the current API, which
    returns the latents), "legacy" (``callback(step, t, latents)``, written in place: PixArt), or None."""
    if accepts(pipe, "callback_on_step_end") and "latents" in getattr(pipe, "_callback_tensor_inputs", ("latents",)):
        return "on_step_end"
    if accepts(pipe, "callback") and accepts(pipe, "callback_steps"):
        return "legacy"
    return None


def missing_for_generic(pipe: Any) -> str | None:
    """Why the generic path cannot drive ``pipe`` (what it lacks), or None when it can."""
    needs = {
        "takes no 'latents'": accepts(pipe, "latents"),
        "has no step-end callback that sees its latents": step_callback(pipe) is not None,
        "has no prepare_latents": callable(getattr(pipe, "prepare_latents", None)),
        "has no VAE that encodes": callable(getattr(getattr(pipe, "vae", None), "encode", None)),
        "has no image processor": hasattr(pipe, "image_processor"),
        "has no scheduler with set_timesteps": callable(getattr(getattr(pipe, "scheduler", None), "set_timesteps", None)),
    }
    lacking = [what for what, present in needs.items() if not present]
    return ", ".join(lacking) or None


class Levers:
    """The pipeline for each task of one loaded pipeline, resolved once (thread-safe) and reported at load.

    ``prefer_own=False`` takes the generic path even where diffusers has a class (to compare the two).
    """

    def __init__(self, pipe: Any, prefer_own: bool = True) -> None:
        self._pipe = pipe
        self._prefer_own = prefer_own
        self._resolved: dict[str, tuple[Any, bool] | None] = {}
        self._lacking: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, task: str, what: str) -> tuple[Any, bool]:
        """The pipeline that runs ``task`` and whether it is the generic latent path; Unsupported saying what
        the family lacks when neither exists. Any other error (memory, a broken component) is raised as itself
        and nothing is cached, so a later call tries again."""
        with self._lock:
            if task not in self._resolved:
                self._resolved[task] = self._resolve(task)
            lever = self._resolved[task]
        if lever is None:
            raise Unsupported(
                f"{type(self._pipe).__name__} has no {task} class in diffusers and {self._lacking[task]}, so it cannot {what}"
            )
        return lever

    def available(self, task: str) -> bool:
        try:
            self.get(task, task)
        except Unsupported:
            return False
        return True

    def describe(self) -> str:
        """Which path each lever takes, for the load line."""
        parts = []
        for task, levers in TASKS.items():
            lever = self._resolved.get(task)
            if lever is None:
                parts.append(f"{levers}: unavailable ({self._lacking.get(task, 'not resolved')})")
            elif lever[1]:
                parts.append(f"{levers}: generic latent path on {type(lever[0]).__name__}")
            else:
                parts.append(f"{levers}: {type(lever[0]).__name__} (from_pipe)")
        return "; ".join(parts)

    def _resolve(self, task: str) -> tuple[Any, bool] | None:
        cls = own_class(type(self._pipe), task) if self._prefer_own else None
        if cls is not None:
            counterpart = cls.from_pipe(self._pipe)
            counterpart.set_progress_bar_config(disable=True)
            return counterpart, False
        lacking = missing_for_generic(self._pipe)
        if lacking is None:
            return self._pipe, True
        self._lacking[task] = lacking
        return None
