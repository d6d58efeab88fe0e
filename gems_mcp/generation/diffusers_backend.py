"""DiffusersGenerator: any diffusers text-to-image pipeline behind the Generator protocol.

Image-to-image edits, region edits and layouts reuse the loaded weights: their pipelines are the
loaded one's counterparts built with ``from_pipe`` (the same UNet/transformer, VAE and text encoders)
where diffusers has them for the family, else the loaded pipeline itself steered through its latents
(``latent_paint``: SDEdit starts and a per-step blend outside the mask).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from PIL import Image

from gems_mcp.errors import GenerationCancelled, GenerationError, InvalidRequest, Unsupported, first_line
from gems_mcp.generation import offload
from gems_mcp.generation.base import Capabilities, GenerationRequest, StepCallback
from gems_mcp.generation.latent_paint import LatentPaint
from gems_mcp.generation.levers import Levers, step_callback
from gems_mcp.generation.loading import LoadOptions, load_pipeline
from gems_mcp.generation.loading import accepts as _accepts
from gems_mcp.generation.regions import blend, blend_mask, latent_cell, model_mask, plan_passes
from gems_mcp.types import Region

log = logging.getLogger(__name__)

_FEATURE_ARGS = {"negative_prompt": "negative_prompt", "guidance": "guidance_scale"}
MAX_SIDE = 2048
TRUE_CFG_SCALE = 4.0
MAX_STEPS = 200


class DiffusersGenerator:
    """Loads the pipeline once, lazily; edits and repaints share its weights (``from_pipe`` or the latent path)."""

    _device = "cpu"
    _offload: offload.Offload = "none"
    _torch_generator_device = "cpu"

    def __init__(
        self, model: str, device: str = "auto", dtype: str = "auto", offload: str = "auto", compile: bool = False
    ) -> None:
        self.name = model
        self._model = model
        self._options = LoadOptions(device=device, dtype=dtype, offload=offload, compile=compile)
        self._pipe: Any = None
        self._levers: Levers | None = None
        self._capabilities: Capabilities | None = None
        self._load_lock = threading.Lock()
        self.report = "not loaded yet"

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> Any:
        """The text-to-image pipeline, loaded on first use (and warmed up when it is compiled)."""
        with self._load_lock:
            if self._pipe is None:
                loaded = load_pipeline(self._model, self._options)
                self._device, self._offload = loaded.device, loaded.offload
                # torch.Generator on mps is unsupported by some ops; seeds drawn on the CPU stay reproducible.
                self._torch_generator_device = "cpu" if loaded.device == "mps" else loaded.device
                self._pipe = loaded.pipe
                self.report = loaded.describe()
                if self._options.compile:
                    self.report += f", compiled (warm-up {self._warm_up():.1f} s)"
                    log.info("%s: %s", self._model, self.report)
            return self._pipe

    def _warm_up(self) -> float:
        """One short generation at the default size, so torch.compile's compilation is not paid by the first call."""
        from gems_mcp.types import GenerationParams

        began = time.perf_counter()
        side = _default_side(self._pipe)
        params = GenerationParams(width=side, height=side, steps=2, guidance=None)
        kwargs = self._call_kwargs(self._pipe, GenerationRequest("warm-up", [0], params), "warm-up")
        kwargs.update(width=side, height=side)
        self._run_pass(self._pipe, kwargs, self._generators([0]), _Progress([2], None, None))
        return time.perf_counter() - began

    def levers(self) -> Levers:
        """Which pipeline runs edits, repaints and layouts (loads the model)."""
        pipe = self.load()
        with self._load_lock:
            if self._levers is None:
                self._levers = Levers(pipe)
            return self._levers

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
            levers = self.levers()
            if levers.available("image-to-image"):
                features.add("edit")
            if levers.available("inpainting"):
                features.update(("inpaint", "layout"))
            self.report += f"; {levers.describe()}"
            log.info("%s: %s", self._model, self.report)
            self._capabilities = Capabilities(
                width=side, height=side, steps=int(steps), guidance=guidance, max_side=MAX_SIDE,
                max_steps=MAX_STEPS, features=frozenset(features), name=type(pipe).__name__,
            )
        return self._capabilities

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
        Edits and passes run on the family's own img2img / inpaint class, or on the loaded pipeline
        through the generic latent path (``levers``). Progress counts the steps of all passes
        together; a stop ends whichever pass is running.
        """
        kind = request.kind
        if kind == "inpaint":
            return self._paint_regions(request, request.edits, on_step, should_stop)
        if kind == "layout":
            return self._paint_regions(request, request.layout, on_step, should_stop)
        edit = kind == "edit"
        pipe, generic = self.levers().get("image-to-image", "edit an image") if edit else (self.load(), False)
        params = request.params
        kwargs = self._call_kwargs(pipe, request, request.prompt)
        paint = None
        if edit:
            # One copy per candidate: SD3's img2img encodes image[i] with generator[i] and makes no copies itself.
            inits = [_fit(_init_image(request), *params.size)] * len(request.seeds)
            if generic:
                paint = LatentPaint(pipe, inits, params.strength or 1.0)
            else:
                kwargs.update(image=inits, strength=params.strength)
        # Flux's and Qwen-Image's img2img draw at their default size unless told, whatever the image's size.
        width, height = params.size
        kwargs.update(width=width, height=height)
        progress = _Progress([_effective_steps(params.step_count, params.strength if edit else None)], on_step, should_stop)
        return self._run_pass(pipe, kwargs, self._generators(request.seeds), progress, paint)

    def _paint_regions(
        self,
        request: GenerationRequest,
        regions: list[Region],
        on_step: StepCallback | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[Image.Image]:
        layout = request.kind == "layout"
        inpaint, generic = self.levers().get("inpainting", "draw a layout" if layout else "repaint regions of an image")
        params = request.params
        width, height = params.size
        init = None if layout else _init_image(request)
        passes = plan_passes(regions, request.background)
        strength = 1.0 if params.strength is None else params.strength  # new objects: from pure noise
        planned = [_effective_steps(params.step_count, strength)] * len(passes)
        if layout:
            planned.insert(0, params.step_count)
        progress = _Progress(planned, on_step, should_stop)
        generators = self._generators(request.seeds)  # one per candidate, drawn on through every pass
        if layout:
            text = self.load()
            kwargs = self._call_kwargs(text, request, request.background or request.prompt)
            kwargs.update(width=width, height=height)
            images = self._run_pass(text, kwargs, generators, progress)
        else:
            assert init is not None
            images = [_fit(init, width, height)] * len(request.seeds)
        cell = latent_cell(inpaint)
        for region_pass in passes:
            kwargs = self._call_kwargs(inpaint, request, region_pass.prompt)
            kwargs.update(width=width, height=height)
            mask = model_mask(region_pass.boxes, width, height, cell)
            paint = LatentPaint(inpaint, images, strength, mask) if generic else None
            if not generic:
                kwargs.update(image=images, mask_image=mask, strength=strength)
            painted = self._run_pass(inpaint, kwargs, generators, progress, paint)
            exact = blend_mask(region_pass.boxes, width, height)
            images = [blend(base, new, exact) for base, new in zip(images, painted)]
        return images

    def _generators(self, seeds: list[int]) -> list[Any]:
        import torch

        return [torch.Generator(self._torch_generator_device).manual_seed(seed) for seed in seeds]

    def _run_pass(
        self, pipe: Any, kwargs: dict[str, Any], generators: list[Any], progress: _Progress,
        paint: LatentPaint | None = None,
    ) -> list[Image.Image]:
        """One pipeline call with progress and stop wired in (and the generic latent path, when given); errors
        become one clear sentence."""
        import torch

        kwargs = {**kwargs, "generator": generators, **_step_end(pipe, progress, paint)}
        width, height = kwargs.get("width") or 0, kwargs.get("height") or 0
        offload.fit_vae(pipe, width, height)
        try:
            with torch.inference_mode(), (paint.installed() if paint is not None else nullcontext()):
                output = pipe(**{k: v for k, v in kwargs.items() if _accepts(pipe, k)})
        except torch.OutOfMemoryError as exc:
            # The pipeline stays loaded: hooks reset and the cache emptied, the next (smaller) call can run.
            offload.release(pipe, self._device)
            raise GenerationError(
                offload.out_of_memory_advice(self._offload, self._device, len(generators), width, height)
            ) from exc
        except ValueError as exc:  # diffusers' check_inputs: sizes, lengths, strength the model cannot take
            raise GenerationError(f"{type(pipe).__name__} refused the request: {first_line(exc)}") from exc
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
        if _accepts(pipe, "use_resolution_binning"):
            # PixArt and Sana otherwise draw at the nearest trained aspect ratio and resize: the caller's size
            # is already checked against the model's limits, and latents and masks must match it exactly.
            wanted["use_resolution_binning"] = False
        optional = {"guidance_scale": params.guidance, "negative_prompt": params.negative_prompt}
        for name, value in optional.items():
            if value is None:
                continue
            if not _accepts(pipe, name):
                raise Unsupported(f"{type(pipe).__name__} does not take '{name}'; leave it out for this model")
            wanted[name] = value
        if params.negative_prompt and _default(_parameters(pipe), "true_cfg_scale", 1.0) <= 1:
            # Flux reads a negative prompt only under true CFG, off by default: turn it on, at Qwen-Image's default.
            wanted["true_cfg_scale"] = TRUE_CFG_SCALE
        return wanted


def _step_end(pipe: Any, progress: _Progress, paint: LatentPaint | None) -> dict[str, Any]:
    """The call's step-end arguments: progress and stop, then the latent blend, through whichever callback
    API the pipeline has (the legacy one is handed the latents tensor and is written in place)."""
    callbacks = [progress.on_step_end] if paint is None else [paint.on_step_end, progress.on_step_end]

    def on_step_end(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        for callback in callbacks:
            callback_kwargs = callback(p, step, timestep, callback_kwargs)
        return callback_kwargs

    if paint is None and _accepts(pipe, "callback_on_step_end"):
        return {"callback_on_step_end": on_step_end}  # progress only: whatever tensors the pipeline hands over
    kind = step_callback(pipe)
    if kind == "on_step_end":
        return {"callback_on_step_end": on_step_end, "callback_on_step_end_tensor_inputs": ["latents"]}
    if kind == "legacy":
        def legacy(step: int, timestep: Any, latents: Any) -> None:
            blended = on_step_end(pipe, step, timestep, {"latents": latents})["latents"]
            if blended is not latents:
                latents.copy_(blended)

        return {"callback": legacy, "callback_steps": 1}
    return {}


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


def _parameters(pipe: Any) -> Any:
    return inspect.signature(pipe.__call__).parameters


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
    sample = getattr(pipe, "default_sample_size", None)  # Flux, Qwen-Image: set by the pipeline, not the config
    return int(sample * scale) if isinstance(sample, int) else 512


def _effective_steps(steps: int, strength: float | None) -> int:
    """Steps img2img really runs: diffusers skips the first (1 - strength) of the schedule."""
    if strength is None:
        return steps
    return max(1, min(steps, int(steps * strength)))


def _init_image(request: GenerationRequest) -> Image.Image:
    """The image an edit or a region repaint starts from."""
    if request.init_image is None:
        raise InvalidRequest("edits and region edits repaint an image; give the image to edit (init_image)")
    return request.init_image


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The caller's image as RGB at the output size (unchanged bytes when it already fits)."""
    image = image.convert("RGB")
    return image if image.size == (width, height) else image.resize((width, height))
