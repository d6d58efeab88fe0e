"""ExactJudge: answers embedded-world questions by finding the shapes in the image."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from gems_mcp.checks import Detection, answer
from gems_mcp.critique.base import Judgement
from gems_mcp.shapes.world import BACKGROUND, PALETTE, SIZE, native_pixels
from gems_mcp.types import Requirement, Verdict

MIN_AREA = 8
"""Smaller blobs are sampling noise, not objects: the world's smallest shape covers about 30 pixels."""

MAX_COLOR_DISTANCE = 120.0
"""A pixel further than this from every palette color counts as background."""

_COLOR_NAMES = ("background", *PALETTE)
_COLOR_TABLE = np.array([BACKGROUND, *PALETTE.values()], dtype=np.float32)


def color_labels(pixels: np.ndarray) -> np.ndarray:
    """Index into _COLOR_NAMES of the nearest palette color per pixel (0 = background)."""
    distances = np.linalg.norm(pixels[:, :, None, :] - _COLOR_TABLE[None, None], axis=-1)
    labels: np.ndarray = distances.argmin(axis=-1)
    labels[distances.min(axis=-1) > MAX_COLOR_DISTANCE] = 0
    return labels


def _templates(height: int, width: int) -> dict[str, np.ndarray]:
    """Ideal circle, square and apex-up triangle filling a height x width box."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (u + 0.5) / width, (v + 0.5) / height
    return {
        "circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
        "square": np.ones((height, width), dtype=bool),
        "triangle": np.abs(u - 0.5) <= v / 2 + 0.5 / (width + height),
    }


def classify_shape(mask: np.ndarray) -> str:
    """circle, square or triangle: the ideal shape in the same box that overlaps the mask best (IoU)."""
    def iou(template: np.ndarray) -> float:
        return float((mask & template).sum() / (mask | template).sum())

    scores = {name: iou(t) for name, t in _templates(*mask.shape).items()}
    return max(scores, key=scores.__getitem__)


def find_objects(image: Image.Image) -> list[Detection]:
    """Every object in the image, one per connected single-color region, with its box as fractions."""
    labels = color_labels(native_pixels(image).astype(np.float32))
    found: list[Detection] = []
    for index in range(1, len(_COLOR_NAMES)):
        regions, _ = ndimage.label(labels == index)
        for box_index, box in enumerate(ndimage.find_objects(regions), start=1):
            mask = regions[box] == box_index
            if mask.sum() < MIN_AREA:
                continue
            ys, xs = box
            fractions = (xs.start / SIZE, ys.start / SIZE, xs.stop / SIZE, ys.stop / SIZE)
            found.append(Detection(object=classify_shape(mask), color=_COLOR_NAMES[index], box=fractions))
    return found


class ExactJudge:
    """The shapes world's judge: exact answers from color segmentation and shape classification."""

    name = "exact"

    def covers(self, requirement: Requirement) -> bool:
        return requirement.check is not None

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        """One judgement per image: a verdict per requirement, in checklist order, and the objects found."""
        return [self._judge(image, checklist) for image in images]

    def _judge(self, image: Image.Image, checklist: list[Requirement]) -> Judgement:
        objects = find_objects(image)
        seen = "; ".join(o.describe() for o in objects) or "nothing"
        return Judgement([self._verdict(req, objects, seen) for req in checklist], objects)

    def _verdict(self, req: Requirement, objects: list[Detection], seen: str) -> Verdict:
        if req.check is None:
            note = "The exact judge cannot check this question (no machine-checkable form); answer it yourself."
            return Verdict(requirement_id=req.id, passed=False, note=note, judge=self.name)
        return Verdict(requirement_id=req.id, passed=answer(req.check, objects), note=f"found: {seen}", judge=self.name)
