"""Loading a diffusers pipeline onto one device: device and dtype, offload, channels-last, compile."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gems_mcp.errors import GenerationError, first_line
from gems_mcp.generation import offload
from gems_mcp.generation.offload import Offload, PipelineSize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOptions:
    """How to load: the settings' device, dtype, offload and compile, for one pipeline."""

    device: str = "auto"
    dtype: str = "auto"
    offload: str = "auto"
    compile: bool = False


@dataclass
class Loaded:
    """A pipeline on its device, and what was chosen for it (reported at load)."""

    pipe: Any
    device: str
    offload: Offload
    size: PipelineSize

    def describe(self) -> str:
        attention = sorted({type(p).__name__ for p in _processors(self.pipe)}) or ["default"]
        return (
            f"{type(self.pipe).__name__} on {self.device}, weights {self.size}, offload {self.offload}, "
            f"attention {'/'.join(attention)}"
        )


def pick_device(requested: str = "auto") -> str:
    """cuda > mps > cpu, unless a device is named."""
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise GenerationError(f"the device {requested} was asked for but no CUDA device is visible; use auto, mps or cpu.")
        if requested.startswith("cuda:") and int(requested[5:]) >= torch.cuda.device_count():
            raise GenerationError(
                f"the device {requested} does not exist: {torch.cuda.device_count()} CUDA device(s) are visible."
            )
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
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, requested)


def load_pipeline(model: str, options: LoadOptions) -> Loaded:
    """The pipeline ``model`` names, loaded, placed (whole or offloaded) and optionally compiled."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    device = pick_device(options.device)
    dtype = pick_dtype(device, options.dtype)
    kwargs: dict[str, Any] = {"dtype": dtype}
    path = Path(model).expanduser()
    folder: Path | None
    if path.exists():
        kwargs.update(missing_components(path))
        source, folder = str(path), path
    elif model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise GenerationError(f"GEMS_MODEL='{model}' does not exist; give a diffusers pipeline folder or a hub id.")
    else:
        source, folder = model, offload.local_snapshot(model)
    # Sized before loading: the weights' bytes in the dtype they load in, from the files' headers.
    size = offload.size_on_disk(folder, dtype.itemsize) if folder else offload.PipelineSize()
    try:
        pipe = DiffusionPipeline.from_pretrained(source, **kwargs)
    except Exception as exc:  # diffusers raises many types; the user needs one sentence
        raise GenerationError(f"GEMS_MODEL='{model}' could not be loaded as a diffusers pipeline: {first_line(exc)}") from exc
    if not callable(pipe) or not accepts(pipe, "prompt"):
        raise GenerationError(f"GEMS_MODEL='{model}' is not a text-to-image pipeline (it takes no prompt).")
    if not size.components:
        size = _size_in_memory(pipe)
    mode = offload.choose(options.offload, device, size, offload.free_memory(device))
    try:
        offload.apply(pipe, mode, device)
    except (RuntimeError, ValueError) as exc:  # out of memory, or a dtype the device lacks
        hint = "; set GEMS_OFFLOAD=model or sequential" if mode == "none" else ""
        raise GenerationError(f"GEMS_MODEL='{model}' could not be put on {device}: {first_line(exc)}{hint}") from exc
    _speed_up(pipe, device, mode, options.compile)
    pipe.set_progress_bar_config(disable=True)
    loaded = Loaded(pipe, device, mode, size)
    log.info("loaded %s: %s, %s", model, loaded.describe(), dtype)
    return loaded


def _speed_up(pipe: Any, device: str, mode: offload.Offload, compile_denoiser: bool) -> None:
    """channels-last for a convolutional UNet on CUDA; torch.compile of the denoiser when asked.

    Attention needs nothing here: diffusers' default processors already call torch's
    scaled_dot_product_attention (flash / memory-efficient kernels where the device has them).
    """
    import torch

    unet = getattr(pipe, "unet", None)
    if unet is not None and device.startswith("cuda") and mode != "sequential":
        unet.to(memory_format=torch.channels_last)
    if compile_denoiser:
        denoiser = unet if unet is not None else getattr(pipe, "transformer", None)
        if denoiser is None:
            raise GenerationError(f"GEMS_COMPILE=1 but {type(pipe).__name__} has no unet or transformer to compile.")
        denoiser.compile()  # in place: counterparts built with from_pipe share the compiled module


def missing_components(folder: Path) -> dict[str, None]:
    """Components named in model_index.json whose folder is absent load as None (e.g. SD3 without T5)."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise GenerationError(f"GEMS_MODEL='{folder}' is not a diffusers pipeline folder: it has no model_index.json.")
    try:
        config = json.loads(index.read_text())
    except ValueError as exc:
        raise GenerationError(f"{index} is not valid JSON: {exc}") from exc
    missing: dict[str, Any] = {}
    for name, value in config.items():
        if name.startswith("_") or not isinstance(value, list):
            continue
        if value[0] is None:  # saved without it (SD3 without T5): diffusers wants it named as None
            missing[name] = None
        elif not (folder / name).is_dir():
            log.warning("component %s is missing from %s; loading the pipeline without it", name, folder)
            missing[name] = None
    return missing


def _size_in_memory(pipe: Any) -> offload.PipelineSize:
    """Component sizes of a pipeline loaded on the CPU (when its files were not at hand to read)."""
    import torch

    size = offload.PipelineSize()
    for name, module in pipe.components.items():
        if isinstance(module, torch.nn.Module):
            size.components[name] = sum(p.numel() * p.element_size() for p in module.parameters())
    return size


def _processors(pipe: Any) -> list[Any]:
    for owner in ("unet", "transformer"):
        processors = getattr(getattr(pipe, owner, None), "attn_processors", None)
        if isinstance(processors, dict):
            return list(processors.values())
    return []


def accepts(pipe: Any, name: str) -> bool:
    import inspect

    return name in inspect.signature(pipe.__call__).parameters

