"""Fitting a pipeline on a device: its size from the weight files, the offload mode, VAE tiling, out of memory.

diffusers offers two CPU offloads (accelerate hooks): ``model`` moves one whole component (text
encoder, denoiser, VAE) onto the device when it runs, ``sequential`` one layer at a time. ``auto``
picks the cheapest that fits the free memory, from the sizes the weights will have once loaded,
read from the safetensors headers before anything is loaded.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Offload = Literal["none", "model", "sequential"]
OFFLOAD_ORDER: tuple[Offload, ...] = ("none", "model", "sequential")

# Activations, the scheduler's latents and the CUDA context need room beside the weights.
HEADROOM = 1.2
HEADROOM_BYTES = 1.5 * 2**30
# Above this many pixels the VAE decodes in tiles (its output differs slightly at tile seams).
TILE_ABOVE_PIXELS = 1536 * 1536
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass
class PipelineSize:
    """Bytes each component's weights take in the dtype they will be loaded in."""

    components: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.components.values())

    @property
    def largest(self) -> int:
        return max(self.components.values(), default=0)

    def __str__(self) -> str:
        return f"{self.total / 2**30:.1f} GiB (largest component {self.largest / 2**30:.1f} GiB)"


def size_on_disk(folder: Path, itemsize: int) -> PipelineSize:
    """Sizes of a pipeline folder's components from their safetensors headers (other weight files: by file size)."""
    size = PipelineSize()
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return size
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or not (folder / name).is_dir():
            continue
        total = 0
        for path in (folder / name).iterdir():
            if path.suffix == ".safetensors":
                total += _safetensors_bytes(path, itemsize)
            elif path.suffix in (".bin", ".pt", ".pth", ".ckpt"):
                total += path.stat().st_size
        if total:
            size.components[name] = total
    return size


def _safetensors_bytes(path: Path, itemsize: int) -> int:
    """Bytes of the file's floating-point tensors at ``itemsize`` bytes each, integers as stored."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return path.stat().st_size
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= dim
        dtype = info["dtype"]
        total += count * (itemsize if dtype.startswith(("F", "BF")) else _ITEMSIZE.get(dtype, 4))
    return total


def local_snapshot(model: str) -> Path | None:
    """The folder of a hub id already in the local cache, or None (nothing is downloaded to find out)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # no hub client: the size is then measured after loading
        return None
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):  # not cached, or not a hub id
        return None


def free_memory(device: str) -> int | None:
    """Free bytes on a CUDA device; None elsewhere (CPU and MPS share the system's memory)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def choose(setting: str, device: str, size: PipelineSize, free: int | None) -> Offload:
    """The offload mode: the one set, or under auto the cheapest whose peak fits the free memory."""
    if setting != "auto":
        return setting  # type: ignore[return-value]
    if free is None or not size.components:
        return "none"
    if size.total * HEADROOM + HEADROOM_BYTES <= free:
        return "none"
    if size.largest * HEADROOM + HEADROOM_BYTES <= free:
        return "model"
    return "sequential"


def apply(pipe: Any, mode: Offload, device: str) -> None:
    """Put the pipeline on ``device`` whole, or install diffusers' offload hooks that move it there in parts."""
    if mode == "none":
        pipe.to(device)
    elif mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def fit_vae(pipe: Any, width: int, height: int) -> None:
    """Decode a batch one image at a time (same pixels, less memory); tile it when the image is very large."""
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    if hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if hasattr(vae, "enable_tiling"):
        if width * height > TILE_ABOVE_PIXELS:
            vae.enable_tiling()
        else:
            vae.disable_tiling()


def release(pipe: Any, device: str) -> None:
    """After an out-of-memory error: move offloaded components back to the CPU and return the cache to the driver."""
    import gc

    import torch

    try:
        pipe.maybe_free_model_hooks()
    except Exception:  # a pipeline without hooks, or one half-moved: the cache is emptied all the same
        log.debug("could not reset offload hooks", exc_info=True)
    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory_advice(mode: Offload, device: str, n: int, width: int, height: int) -> str:
    """One sentence: what ran out, and the setting that would make it fit."""
    where = f"{device} ran out of memory drawing {n} image{'s' if n != 1 else ''} of {width}x{height}"
    later = OFFLOAD_ORDER[OFFLOAD_ORDER.index(mode) + 1:] if mode in OFFLOAD_ORDER else ()
    fix = f"restart the server with GEMS_OFFLOAD={later[0]}, or " if later else ""
    return f"{where} (GEMS_OFFLOAD={mode}); {fix}ask for fewer candidates (n) or a smaller width/height."
