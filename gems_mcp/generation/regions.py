"""Region passes for diffusers models: boxes to masks, one inpaint pass per prompt, exact blends.

Region edits and layouts are both drawn as inpaint passes over a base image (the caller's image
for edits, a background render for layouts). Two masks come from each box:

- the model's mask rounds the box outward to whole latent cells (8 px for Stable Diffusion), so
  the denoiser repaints every latent cell the box touches;
- the blend mask is the box itself in the output pixel grid (the smallest pixel rectangle that
  covers it), and the result takes the repainted pixels inside it and the base image's pixels,
  byte for byte, everywhere else. The VAE never round-trips a pixel outside the boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from gems_mcp.boxes import PixelBox, to_pixels
from gems_mcp.types import Region

ERASE_PROMPT = "empty background"
"""What an edit with an empty prompt is inpainted with when the request names no background."""



@dataclass(frozen=True)
class RegionPass:
    """One inpaint pass: a prompt and every box drawn with it."""

    prompt: str
    boxes: tuple[tuple[float, float, float, float], ...]


def plan_passes(regions: Iterable[Region], background: str | None = None) -> list[RegionPass]:
    """One pass per distinct prompt, in the order prompts first appear; a later pass paints over an
    earlier one where boxes overlap.

    Boxes that share a prompt are repainted together (one mask, one pass), so the cost is the
    number of distinct prompts, not of boxes; the candidates stay batched in every pass. An empty
    prompt erases: it is inpainted with the background prompt when one is given, else with
    ERASE_PROMPT ("empty background"), a neutral scene the model fills from the surroundings.
    """
    erase = (background or "").strip() or ERASE_PROMPT
    grouped: dict[str, list[tuple[float, float, float, float]]] = {}
    for region in regions:
        prompt = region.prompt.strip() or erase
        x0, y0, x1, y1 = region.box
        grouped.setdefault(prompt, []).append((x0, y0, x1, y1))
    return [RegionPass(prompt, tuple(boxes)) for prompt, boxes in grouped.items()]


def cell_box(box: Sequence[float], width: int, height: int, cell: int) -> PixelBox:
    """The box's pixel rectangle rounded outward to a grid of cell-pixel squares (latent cells)."""
    x0, y0, x1, y1 = to_pixels(box, width, height)
    return (
        x0 // cell * cell,
        y0 // cell * cell,
        min(width, -(-x1 // cell) * cell),
        min(height, -(-y1 // cell) * cell),
    )


def _mask(rects: Iterable[PixelBox], width: int, height: int) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in rects:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)  # PIL's rectangle includes its far corner
    return mask


def model_mask(boxes: Iterable[Sequence[float]], width: int, height: int, cell: int = 8) -> Image.Image:
    """The mask the inpaint model sees ("L", 255 = repaint): every latent cell a box touches."""
    return _mask((cell_box(b, width, height, cell) for b in boxes), width, height)


def blend_mask(boxes: Iterable[Sequence[float]], width: int, height: int) -> Image.Image:
    """The mask of the final blend ("L", 255 = take the repainted pixel): the boxes, exactly."""
    return _mask((to_pixels(b, width, height) for b in boxes), width, height)


def blend(base: Image.Image, painted: Image.Image, mask: Image.Image) -> Image.Image:
    """Painted pixels where the mask is set, the base's own bytes everywhere else."""
    if painted.size != base.size:
        painted = painted.resize(base.size)
    return Image.composite(painted.convert("RGB"), base.convert("RGB"), mask)


def latent_cell(pipe: object) -> int:
    """Pixels per latent cell of an inpaint pipeline: its mask processor's scale (Flux packs 2x2
    latents, so 16 px), else the VAE's scale factor, else 8."""
    processor = getattr(pipe, "mask_processor", None)
    scale = getattr(getattr(processor, "config", None), "vae_scale_factor", None)
    if not isinstance(scale, int) or scale < 1:
        scale = getattr(pipe, "vae_scale_factor", None)
    return scale if isinstance(scale, int) and scale >= 1 else 8
