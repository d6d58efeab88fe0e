"""DiffusersGenerator: any diffusers text-to-image pipeline behind the Generator protocol.

Image-to-image edits, region edits and layouts reuse the loaded weights: their pipelines are the
loaded one's counterparts built with ``from_pipe`` (the same UNet/transformer, VAE and text encoders).
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from gems_mcp.errors import GenerationCancelled, GenerationError, InvalidRequest, Unsupported
from gems_mcp.generation.base import Capabilities, GenerationRequest, StepCallback
from gems_mcp.generation.regions import blend, blend_mask, latent_cell, model_mask, plan_passes
from gems_mcp.types import Region

log = logging.getLogger(__name__)

_FEATURE_ARGS = {"negative_prompt": "negative_prompt", "guidance": "guidance_scale"}
MAX_SIDE = 2048
MAX_STEPS = 200


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
        self._inpaint: Any = None
        self._capabilities: Capabilities | None = None
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
        if not callable(pipe) or not _accepts(pipe, "prompt"):
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
        return self._counterpart("_img2img", "AutoPipelineForImage2Image", "image-to-image", "edit an image")

    def _inpainting(self, what: str = "repaint regions of an image") -> Any:
        return self._counterpart("_inpaint", "AutoPipelineForInpainting", "inpainting", what)

    def _counterpart(self, slot: str, auto: str, kind: str, what: str) -> Any:
        """The loaded pipeline's counterpart for another task, built once; it shares every weight."""
        pipe = self.load()
        with self._load_lock:
            if getattr(self, slot) is None:
                import diffusers

                try:
                    counterpart = getattr(diffusers, auto).from_pipe(pipe)
                except Exception as exc:  # no mapping for this pipeline class, or a component it lacks
                    raise Unsupported(
                        f"{type(pipe).__name__} has no {kind} counterpart, so it cannot {what}"
                    ) from exc
                counterpart.set_progress_bar_config(disable=True)
                setattr(self, slot, counterpart)
            return getattr(self, slot)

    # -- the Generator protocol -------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """Defaults from the pipeline's signature; features from the arguments it takes and its counterparts."""
        if self._capabilities is None:
            pipe = self.load()
            params = inspect.signature(pipe.__call__).parameters
            side = _default_side(pipe)
            steps = _default(params, "num_inference_steps", 30)
            guidance = _default(params, "guidance_scale", None) if "guidance_scale" in params else None
            features = {f for f, arg in _FEATURE_ARGS.items() if _accepts(pipe, arg)}
            if self._has(self._image_to_image):
                features.add("edit")
            if self._has(self._inpainting):
                features.update(("inpaint", "layout"))
            self._capabilities = Capabilities(
                width=side, height=side, steps=int(steps), guidance=guidance, max_side=MAX_SIDE,
                max_steps=MAX_STEPS, features=frozenset(features), name=type(pipe).__name__,
            )
        return self._capabilities

    @staticmethod
    def _has(counterpart: Callable[[], Any]) -> bool:
        try:
            counterpart()
        except Unsupported:
            return False
        return True

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
        """Text to image and edits in one pipeline call; layouts and region edits as inpaint passes.

        A region edit repaints the union of its boxes on the caller's image; a layout renders the
        background (the background prompt, or the whole prompt when none is given) and then paints
        each box over it. Both run one inpaint pass per distinct region prompt (regions.plan_passes),
        all candidates batched in each pass, and keep every pixel outside the boxes byte-identical.
        Progress counts the steps of all passes together; a stop ends whichever pass is running.
        """
        kind = request.kind
        if kind == "inpaint":
            return self._paint_regions(request, request.edits, on_step, should_stop)
        if kind == "layout":
            return self._paint_regions(request, request.layout, on_step, should_stop)
        edit = kind == "edit"
        pipe = self._image_to_image() if edit else self.load()
        params = request.params
        kwargs = self._call_kwargs(pipe, request, request.prompt)
        if edit:
            kwargs.update(image=_fit(request.init_image, params.width, params.height), strength=params.strength)
        else:
            kwargs.update(width=params.width, height=params.height)
        progress = _Progress([_effective_steps(params.steps, params.strength if edit else None)], on_step, should_stop)
        return self._run_pass(pipe, kwargs, self._generators(request.seeds), progress)

    def _paint_regions(
        self,
        request: GenerationRequest,
        regions: list[Region],
        on_step: StepCallback | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[Image.Image]:
        layout = request.kind == "layout"
        inpaint = self._inpainting("draw a layout" if layout else "repaint regions of an image")
        params = request.params
        width, height = params.width, params.height
        if not layout and request.init_image is None:
            raise InvalidRequest("region edits repaint an image; give the image to edit (init_image)")
        passes = plan_passes(regions, request.background)
        strength = 1.0 if params.strength is None else params.strength  # new objects: from pure noise
        planned = [_effective_steps(params.steps, strength)] * len(passes)
        if layout:
            planned.insert(0, params.steps)
        progress = _Progress(planned, on_step, should_stop)
        generators = self._generators(request.seeds)  # one per candidate, drawn on through every pass
        if layout:
            text = self.load()
            kwargs = self._call_kwargs(text, request, request.background or request.prompt)
            kwargs.update(width=width, height=height)
            images = self._run_pass(text, kwargs, generators, progress)
        else:
            images = [_fit(request.init_image, width, height)] * len(request.seeds)
        cell = latent_cell(inpaint)
        for region_pass in passes:
            kwargs = self._call_kwargs(inpaint, request, region_pass.prompt)
            kwargs.update(
                image=images, mask_image=model_mask(region_pass.boxes, width, height, cell),
                strength=strength, width=width, height=height,
            )
            painted = self._run_pass(inpaint, kwargs, generators, progress)
            exact = blend_mask(region_pass.boxes, width, height)
            images = [blend(base, new, exact) for base, new in zip(images, painted)]
        return images

    def _generators(self, seeds: list[int]) -> list[Any]:
        import torch

        return [torch.Generator(self._torch_generator_device).manual_seed(seed) for seed in seeds]

    def _run_pass(self, pipe: Any, kwargs: dict[str, Any], generators: list[Any], progress: _Progress) -> list[Image.Image]:
        """One pipeline call with progress and stop wired in; errors become one clear sentence."""
        import torch

        kwargs = {**kwargs, "generator": generators}
        if _accepts(pipe, "callback_on_step_end"):
            kwargs["callback_on_step_end"] = progress.on_step_end
        try:
            with torch.inference_mode():
                output = pipe(**{k: v for k, v in kwargs.items() if _accepts(pipe, k)})
        except torch.cuda.OutOfMemoryError as exc:
            raise GenerationError(
                "the device ran out of memory; ask for fewer candidates (n), a smaller width/height or fewer steps."
            ) from exc
        except ValueError as exc:  # diffusers' check_inputs: sizes, lengths, strength the model cannot take
            raise GenerationError(f"{type(pipe).__name__} refused the request: {_first_line(exc)}") from exc
        if progress.stopped:
            raise GenerationCancelled("generation was cancelled")
        progress.next_pass()
        return [im.convert("RGB") for im in output.images]

    def _call_kwargs(self, pipe: Any, request: GenerationRequest, prompt: str) -> dict[str, Any]:
        """Arguments every pass shares; an optional one the caller set that the pipeline lacks is an error."""
        params = request.params
        wanted: dict[str, Any] = {
            "prompt": prompt,
            "num_images_per_prompt": len(request.seeds),
            "num_inference_steps": params.steps,
            "output_type": "pil",
        }
        optional = {"guidance_scale": params.guidance, "negative_prompt": params.negative_prompt}
        for name, value in optional.items():
            if value is None:
                continue
            if not _accepts(pipe, name):
                raise Unsupported(f"{type(pipe).__name__} does not take '{name}'; leave it out for this model")
            wanted[name] = value
        return wanted


class _Progress:
    """Steps of several pipeline calls counted as one run, and the stop request checked in each."""

    def __init__(self, planned: list[int], on_step: StepCallback | None, should_stop: Callable[[], bool] | None):
        self._planned = list(planned)
        self._pass = 0
        self._done = 0
        self._on_step = on_step
        self._should_stop = should_stop
        self.stopped = False

    def next_pass(self) -> None:
        self._done += self._planned[self._pass]
        self._pass += 1

    def on_step_end(self, p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._on_step is not None:
            # The pipeline's own count: flow-matching img2img keeps more steps than int(steps * strength).
            self._planned[self._pass] = getattr(p, "_num_timesteps", None) or self._planned[self._pass]
            self._on_step(self._done + step + 1, self._done + sum(self._planned[self._pass:]))
        if self._should_stop is not None and self._should_stop():
            self.stopped = True
            p._interrupt = True
            if not hasattr(type(p), "interrupt"):
                # About a third of diffusers' pipelines (Kandinsky 3, Stable Cascade, ...) never read the
                # flag; leaving through the callback stops them within this step too.
                raise GenerationCancelled("generation was cancelled")
        return callback_kwargs


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


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The caller's image as RGB at the output size (unchanged bytes when it already fits)."""
    image = image.convert("RGB")
    return image if image.size == (width, height) else image.resize((width, height))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
