"""ExactJudge: answers embedded-world questions by finding the shapes in the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from gems_mcp.shapes.world import BACKGROUND, PALETTE, native_pixels, relation_holds
from gems_mcp.types import Requirement, Verdict

MIN_AREA = 8
"""Smaller blobs are sampling noise, not objects: the world's smallest shape covers about 30 pixels."""

MAX_COLOR_DISTANCE = 120.0
"""A pixel further than this from every palette color counts as background."""

_COLOR_NAMES = ("background", *PALETTE)
_COLOR_TABLE = np.array([BACKGROUND, *PALETTE.values()], dtype=np.float32)


@dataclass(frozen=True)
class Found:
    """One object found in an image: shape, color, bounding-box centre (native pixels) and area."""

    shape: str
    color: str
    center: tuple[float, float]
    area: int

    def matches(self, target: dict[str, Any]) -> bool:
        return self.shape == target.get("shape") and target.get("color") in (None, self.color)

    def describe(self) -> str:
        return f"{self.color} {self.shape} at ({self.center[0]:.0f}, {self.center[1]:.0f})"


def color_labels(pixels: np.ndarray) -> np.ndarray:
    """Index into _COLOR_NAMES of the nearest palette color per pixel (0 = background)."""
    distances = np.linalg.norm(pixels[:, :, None, :] - _COLOR_TABLE[None, None], axis=-1)
    labels = distances.argmin(axis=-1)
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


def find_objects(image: Image.Image) -> list[Found]:
    """Every object in the image, one per connected single-color region."""
    labels = color_labels(native_pixels(image).astype(np.float32))
    found: list[Found] = []
    for index in range(1, len(_COLOR_NAMES)):
        regions, count = ndimage.label(labels == index)
        for box_index, box in enumerate(ndimage.find_objects(regions), start=1):
            mask = regions[box] == box_index
            if mask.sum() < MIN_AREA:
                continue
            ys, xs = box
            center = ((xs.start + xs.stop - 1) / 2, (ys.start + ys.stop - 1) / 2)
            found.append(Found(classify_shape(mask), _COLOR_NAMES[index], center, int(mask.sum())))
    return found


def answer(check: dict[str, Any], objects: list[Found]) -> bool:
    """Whether a machine-checkable question holds for the objects found; ValueError if unknown."""
    kind = check.get("type")
    if kind in ("at_least", "exactly"):
        n = sum(o.matches(check) for o in objects)
        return n >= check["n"] if kind == "at_least" else n == check["n"]
    if kind == "relation":
        firsts = [o for o in objects if o.matches(check["a"])]
        seconds = [o for o in objects if o.matches(check["b"])]
        return any(
            relation_holds(check["relation"], a.center, b.center)
            for a in firsts
            for b in seconds
            if a is not b
        )
    if kind == "only":
        groups = check["groups"]
        exact = all(sum(o.matches(g) for o in objects) == g["n"] for g in groups)
        return exact and len(objects) == sum(g["n"] for g in groups)
    raise ValueError(f"unknown check type {kind!r}")


class ExactJudge:
    """The embedded world's judge: exact answers from color segmentation and shape classification."""

    name = "exact"

    def verify(self, image: Image.Image, checklist: list[Requirement]) -> list[Verdict]:
        """One verdict per requirement, in checklist order."""
        objects = find_objects(image)
        seen = "; ".join(o.describe() for o in objects) or "nothing"
        return [self._verdict(req, objects, seen) for req in checklist]

    def _verdict(self, req: Requirement, objects: list[Found], seen: str) -> Verdict:
        try:
            if req.check is None:
                raise ValueError("no machine-checkable form")
            passed = answer(req.check, objects)
        except (ValueError, KeyError, TypeError) as error:
            note = f"The exact judge cannot check this question ({error}); ask the agent or a VLM judge."
            return Verdict(requirement_id=req.id, passed=False, note=note, judge=self.name)
        return Verdict(requirement_id=req.id, passed=passed, note=f"found: {seen}", judge=self.name)
