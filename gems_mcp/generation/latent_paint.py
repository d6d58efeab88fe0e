"""Edits and region repaints on a text-to-image pipeline's own latents: the generic path.

diffusers has image-to-image and inpaint classes for only some families (PixArt, Sana, Lumina 2,
CogView 4, HunyuanDiT, ... have none). Any pipeline whose ``__call__`` takes ``latents`` and a
``callback_on_step_end`` can do both with the weights it already holds:

- image to image (SDEdit): the init image is VAE-encoded and normalised the way the pipeline's
  decoder undoes it, laid out like the pipeline's own latents (Flux and Qwen-Image pack 2x2
  patches), noised to the strength's level, and denoising starts there: the schedule the pipeline
  sets is cut to its last ``strength`` part, as diffusers' img2img pipelines cut theirs;
- region repaint: after every step the latents outside the mask are replaced with the init latents
  noised to the next step's level (the blend SD's 4-channel inpaint and the embedded model do), so
  only the masked cells are denoised freely; the caller then composites the pixels exactly.

The noise is the pipeline's own draw (its ``prepare_latents`` with the caller's generators), so a
seed gives the same noise as text to image. Noise levels come from the scheduler: its
``add_noise`` where it has one (DDPM, DDIM, DPM-Solver, Euler), else the flow-matching blend
``sigma * noise + (1 - sigma) * x0`` with the scheduler's sigmas (SD3, Flux, Z-Image, Lumina 2).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from gems_mcp.errors import GenerationError


class LatentPaint:
    """One pipeline call steered from an init image: start latents (SDEdit) and, with a mask, the per-step blend.

    ``images`` holds one init image per candidate at the output size; ``mask`` ("L", 255 = repaint)
    is in output pixels and rounded to whole latent cells already. Use ``installed()`` around the
    call and chain ``on_step_end`` into its step-end callback.
    """

    def __init__(self, pipe: Any, images: list[Image.Image], strength: float, mask: Image.Image | None = None):
        self._pipe = pipe
        self._images = images
        self._strength = strength
        self._mask_image = mask
        self._latents: Any = None  # the tensor the pipeline denoises, as its prepare_latents made it
        self._noise: Any = None
        self._x0: Any = None
        self._mask: Any = None
        self._scheduled = False
        self.started = False

    @contextmanager
    def installed(self) -> Iterator[LatentPaint]:
        """Wrap the pipeline's prepare_latents and its scheduler's set_timesteps for one call."""
        pipe, scheduler = self._pipe, self._pipe.scheduler
        prepare, set_timesteps = pipe.prepare_latents, scheduler.set_timesteps

        @functools.wraps(prepare)  # pipelines inspect these signatures (retrieve_timesteps looks for 'sigmas')
        def prepare_latents(*args: Any, **kwargs: Any) -> Any:
            out = prepare(*args, **kwargs)
            self._latents = out[0] if isinstance(out, tuple) else out
            # Unit noise: pipelines that scale their draw by the scheduler's init_noise_sigma did so.
            self._noise = self._latents / getattr(scheduler, "init_noise_sigma", 1.0)
            self._start()
            return out

        @functools.wraps(set_timesteps)
        def cut_schedule(*args: Any, **kwargs: Any) -> Any:
            out = set_timesteps(*args, **kwargs)
            self._cut(scheduler)
            self._scheduled = True
            self._start()
            return out

        pipe.prepare_latents, scheduler.set_timesteps = prepare_latents, cut_schedule
        try:
            yield self
        finally:
            del pipe.prepare_latents, scheduler.set_timesteps  # the instance attributes: the class methods show again
        if not self.started:
            raise GenerationError(
                f"{type(pipe).__name__} did not prepare its latents and schedule the way the generic edit path expects"
            )

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Outside the mask, put back the init latents noised to the level the next step expects."""
        if self._mask is None or "latents" not in callback_kwargs:
            return callback_kwargs
        latents = callback_kwargs["latents"]
        known = self._noised(step + 1).to(latents.dtype)
        mask = self._mask.to(latents.dtype)
        callback_kwargs["latents"] = mask * latents + (1 - mask) * known
        return callback_kwargs

    # -- the schedule and the start -----------------------------------------------------------

    def _cut(self, scheduler: Any) -> None:
        """Keep the last ``strength`` part of the schedule the pipeline just set (at least one step)."""
        order = getattr(scheduler, "order", 1) or 1
        count = len(scheduler.timesteps) // order
        keep = max(1, min(count, int(count * self._strength)))
        start = (count - keep) * order
        if not start:
            return
        total = len(scheduler.timesteps)
        scheduler.timesteps = scheduler.timesteps[start:]
        sigmas = getattr(scheduler, "sigmas", None)
        if sigmas is not None and len(sigmas) >= total:  # the schedule's sigmas, with or without a final 0
            scheduler.sigmas = sigmas[start:]

    def _start(self) -> None:
        """Once both the latents and the schedule exist (either order): overwrite the draw with the noised init."""
        if self._latents is None or not self._scheduled or self.started:
            return
        encoded = self._encode()
        self._x0 = self._layout(encoded)
        if self._mask_image is not None:
            self._mask = self._layout(self._latent_mask(tuple(encoded.shape))).to(self._latents.dtype)
        self._latents.copy_(self._noised(0).to(self._latents.dtype))
        self.started = True

    def _noised(self, index: int) -> Any:
        """The init latents at the level of the (cut) schedule's step ``index``; past the last step, clean."""
        import torch

        scheduler = self._pipe.scheduler
        timesteps = scheduler.timesteps
        x0, noise = self._x0, self._noise.to(self._x0.dtype)
        if index >= len(timesteps):
            return x0
        if hasattr(scheduler, "add_noise"):
            t = timesteps[index : index + 1].repeat(x0.shape[0])
            return scheduler.add_noise(x0, noise, t)
        sigma = torch.as_tensor(scheduler.sigmas[index], dtype=x0.dtype, device=x0.device)
        return sigma * noise + (1 - sigma) * x0

    # -- the init image in the pipeline's latent space -----------------------------------------

    def _encode(self) -> Any:
        """(B, C, h, w) latents of the init images, normalised as the pipeline's decode expects."""
        import torch

        pipe = self._pipe
        vae = pipe.vae
        width, height = self._images[0].size
        pixels = pipe.image_processor.preprocess(self._images, height=height, width=width)
        pixels = pixels.to(device=pipe._execution_device, dtype=vae.dtype)
        video = getattr(getattr(getattr(vae, "encoder", None), "conv_in", None), "weight", None)
        if video is not None and video.ndim == 5:  # a video VAE (Qwen-Image, Wan): one frame
            pixels = pixels.unsqueeze(2)
        encoded = vae.encode(pixels)
        dist = getattr(encoded, "latent_dist", None)
        latents = dist.mode() if dist is not None else getattr(encoded, "latent", None)
        if latents is None:
            latents = encoded[0]
        if latents.ndim == 5:
            latents = latents[:, :, 0]
        config = vae.config
        mean, std = config.get("latents_mean"), config.get("latents_std")
        if mean is not None and std is not None:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(shape)
            return (latents - mean) / std
        shift = config.get("shift_factor") or 0.0
        return (latents - shift) * (config.get("scaling_factor") or 1.0)

    def _latent_mask(self, shape: tuple[int, ...]) -> Any:
        """The mask at latent resolution as (B, C, h, w): a latent cell repaints when any of its pixels does."""
        import numpy as np
        import torch

        batch, channels, h, w = shape
        pixels = torch.from_numpy(np.asarray(self._mask_image, dtype=np.float32) / 255.0)[None, None]
        cell_h, cell_w = pixels.shape[2] // h, pixels.shape[3] // w
        mask = torch.nn.functional.max_pool2d(pixels, (cell_h, cell_w))[:, :, :h, :w]
        return mask.expand(batch, channels, h, w).contiguous()

    def _layout(self, tensor: Any) -> Any:
        """A (B, C, h, w) tensor laid out like the pipeline's latents (packed 2x2 where the family packs)."""
        like = self._latents
        tensor = tensor.to(device=like.device)
        if tuple(tensor.shape) == tuple(like.shape):
            return tensor
        pack = getattr(self._pipe, "_pack_latents", None)
        if like.ndim == 3 and callable(pack):
            packed = pack(tensor, *tensor.shape)
            if tuple(packed.shape) == tuple(like.shape):
                return packed
        raise GenerationError(
            f"{type(self._pipe).__name__} denoises latents of shape {tuple(like.shape)}, which the generic edit "
            f"path cannot lay out from the image's {tuple(tensor.shape)}"
        )
