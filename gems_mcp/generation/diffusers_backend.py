"""DiffusersGenerator: any diffusers text-to-image pipeline behind the Generator protocol."""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from gems_mcp.generation.base import (
    GenerationCancelled,
    GenerationDefaults,
    GenerationError,
    GenerationRequest,
    StepCallback,
)

log = logging.getLogger(__name__)

_FEATURE_ARGS = {"negative_prompt": "negative_prompt", "guidance": "guidance_scale"}


def pick_device(requested: str = "auto") -> str:
    """cuda > mps > cpu, unless a device is named."""
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise GenerationError("GEMS_DEVICE=cuda but no CUDA device is visible; use auto, mps or cpu.")
        if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise GenerationError("GEMS_DEVICE=mps but MPS is not available here; use auto, cuda or cpu.")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, requested: str = "auto") -> Any:
    """bfloat16 on cuda, float32 elsewhere, unless a dtype is named."""
    import torch

    if requested == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, requested)


class DiffusersGenerator:
    """Loads the pipeline once, lazily; image-to-image shares its weights through ``from_pipe``."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto") -> None:
        self.name = model
        self._model = model
        self._device_request = device
        self._dtype_request = dtype
        self._pipe: Any = None
        self._img2img: Any = None
        self._load_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> Any:
        """The text-to-image pipeline, loaded on first use."""
        with self._load_lock:
            if self._pipe is None:
                self._pipe = self._load_pipeline()
            return self._pipe

    def _load_pipeline(self) -> Any:
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()

        device = pick_device(self._device_request)
        dtype = pick_dtype(device, self._dtype_request)
        kwargs: dict[str, Any] = {"dtype": dtype}
        path = Path(self._model).expanduser()
        if path.exists():
            kwargs.update(_missing_components(path))
            source = str(path)
        elif self._model.startswith((".", "/", "~")) or self._model.count("/") > 1:
            raise GenerationError(f"GEMS_MODEL='{self._model}' does not exist; give a diffusers pipeline folder or a hub id.")
        else:
            source = self._model
        try:
            pipe = DiffusionPipeline.from_pretrained(source, **kwargs)
        except Exception as exc:  # diffusers raises many types; the user needs one sentence
            raise GenerationError(
                f"GEMS_MODEL='{self._model}' could not be loaded as a diffusers pipeline: {_first_line(exc)}"
            ) from exc
        if not callable(getattr(pipe, "__call__", None)) or not _accepts(pipe, "prompt"):
            raise GenerationError(f"GEMS_MODEL='{self._model}' is not a text-to-image pipeline (it takes no prompt).")
        try:
            pipe.to(device)
        except (RuntimeError, ValueError) as exc:  # out of memory, or a dtype the device lacks
            raise GenerationError(
                f"GEMS_MODEL='{self._model}' could not be put on {device}: {_first_line(exc)}"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        log.info("loaded %s (%s) on %s as %s", self._model, type(pipe).__name__, device, dtype)
        self._device = device
        # torch.Generator on mps is unsupported by some ops; seeds drawn on the CPU stay reproducible.
        self._torch_generator_device = "cpu" if device == "mps" else device
        return pipe

    def _image_to_image(self) -> Any:
        pipe = self.load()
        with self._load_lock:
            if self._img2img is None:
                from diffusers import AutoPipelineForImage2Image

                try:
                    self._img2img = AutoPipelineForImage2Image.from_pipe(pipe)
                except Exception as exc:
                    raise GenerationError(
                        f"{type(pipe).__name__} has no image-to-image counterpart, so mode='edit' is unavailable; "
                        "use mode='regenerate'."
                    ) from exc
                self._img2img.set_progress_bar_config(disable=True)
            return self._img2img

    # -- the Generator protocol -------------------------------------------------------------

    def defaults(self) -> GenerationDefaults:
        pipe = self.load()
        params = inspect.signature(pipe.__call__).parameters
        side = _default_side(pipe)
        steps = _default(params, "num_inference_steps", 30)
        guidance = _default(params, "guidance_scale", None) if "guidance_scale" in params else None
        return GenerationDefaults(width=side, height=side, steps=int(steps), guidance=guidance)

    def supports(self, feature: str) -> bool:
        if feature == "edit":
            try:
                self._image_to_image()
            except GenerationError:
                return False
            return True
        return _accepts(self.load(), _FEATURE_ARGS.get(feature, feature))

    def validate_prompt(self, prompt: str) -> None:
        """Any text goes: the pipeline's tokenizer truncates what is too long."""

    def checklist(self, prompt: str) -> None:
        return None

    def judge(self) -> None:
        return None

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        import torch

        edit = request.init_image is not None
        pipe = self._image_to_image() if edit else self.load()
        if request.width % 8 or request.height % 8:
            raise GenerationError(f"width and height must be multiples of 8, got {request.width}x{request.height}.")
        kwargs = self._call_kwargs(pipe, request)
        kwargs["generator"] = [
            torch.Generator(self._torch_generator_device).manual_seed(seed) for seed in request.seeds
        ]
        stopped = False

        def on_step_end(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            nonlocal stopped
            if on_step is not None:
                # The pipeline's own count: flow-matching img2img keeps more steps than int(steps * strength).
                on_step(step + 1, getattr(p, "_num_timesteps", None) or total)
            if should_stop is not None and should_stop():
                stopped = True
                p._interrupt = True
                if not hasattr(type(p), "interrupt"):
                    # About a third of diffusers' pipelines (Kandinsky 3, Stable Cascade, ...) never read the
                    # flag; leaving through the callback stops them within this step too.
                    raise GenerationCancelled("generation was cancelled")
            return callback_kwargs

        total = _effective_steps(request.steps, request.strength if edit else None)
        if _accepts(pipe, "callback_on_step_end"):
            kwargs["callback_on_step_end"] = on_step_end
        try:
            with torch.inference_mode():
                output = pipe(**kwargs)
        except torch.cuda.OutOfMemoryError as exc:
            raise GenerationError(
                "the device ran out of memory; ask for fewer candidates (n), a smaller width/height or fewer steps."
            ) from exc
        except ValueError as exc:  # diffusers' check_inputs: sizes, lengths, strength the model cannot take
            raise GenerationError(f"{type(pipe).__name__} refused the request: {_first_line(exc)}") from exc
        if stopped:
            raise GenerationCancelled("generation was cancelled")
        return [im.convert("RGB") for im in output.images]

    def _call_kwargs(self, pipe: Any, request: GenerationRequest) -> dict[str, Any]:
        """Arguments the loaded pipeline accepts; an unsupported one the caller set is an error."""
        wanted: dict[str, Any] = {
            "prompt": request.prompt,
            "num_images_per_prompt": len(request.seeds),
            "num_inference_steps": request.steps,
            "output_type": "pil",
        }
        if request.init_image is None:
            wanted.update(width=request.width, height=request.height)
        else:
            wanted["image"] = request.init_image.convert("RGB").resize((request.width, request.height))
            wanted["strength"] = request.strength
        optional = {"guidance_scale": request.guidance, "negative_prompt": request.negative_prompt, **request.extra}
        for name, value in optional.items():
            if value is None:
                continue
            if not _accepts(pipe, name):
                raise GenerationError(
                    f"{type(pipe).__name__} does not take '{name}'; leave it out for this model."
                )
            wanted[name] = value
        return {k: v for k, v in wanted.items() if _accepts(pipe, k)}


def _missing_components(folder: Path) -> dict[str, None]:
    """Components named in model_index.json whose folder is absent load as None (e.g. SD3 without T5)."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise GenerationError(
            f"GEMS_MODEL='{folder}' is not a diffusers pipeline folder: it has no model_index.json."
        )
    try:
        config = json.loads(index.read_text())
    except ValueError as exc:
        raise GenerationError(f"{index} is not valid JSON: {exc}") from exc
    missing = {}
    for name, value in config.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        if not (folder / name).is_dir():
            log.warning("component %s is missing from %s; loading the pipeline without it", name, folder)
            missing[name] = None
    return missing


def _accepts(pipe: Any, name: str) -> bool:
    params = inspect.signature(pipe.__call__).parameters
    return name in params


def _default(params: Any, name: str, fallback: Any) -> Any:
    param = params.get(name)
    if param is None or param.default is inspect.Parameter.empty or param.default is None:
        return fallback
    return param.default


def _default_side(pipe: Any) -> int:
    scale = getattr(pipe, "vae_scale_factor", 8) or 8
    for owner in ("unet", "transformer"):
        sample = getattr(getattr(getattr(pipe, owner, None), "config", None), "sample_size", None)
        if isinstance(sample, int):
            return int(sample * scale)
    return 512


def _effective_steps(steps: int, strength: float | None) -> int:
    """Steps img2img really runs: diffusers skips the first (1 - strength) of the schedule."""
    if strength is None:
        return steps
    return max(1, min(steps, int(steps * strength)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
