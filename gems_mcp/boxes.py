"""Boxes as fractions of the image (0..1, origin top-left): the one coordinate system of layouts,
region edits and what judges report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, Field

Coordinate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def _check_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    if not (x0 < x1 and y0 < y1):
        raise ValueError("a box is [x0, y0, x1, y1] with x0 < x1 and y0 < y1 (fractions 0..1 of the image)")
    return box


Box = Annotated[
    tuple[Coordinate, Coordinate, Coordinate, Coordinate],
    AfterValidator(_check_box),
    Field(description="[x0, y0, x1, y1] as fractions of the image width and height (0..1, origin top-left)."),
]

RELATION_MARGIN = 2 / 32
"""Centres closer than this along the relation's axis are not 'left of' (etc.): 2 px of the 32-px world."""


def center(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Area of the intersection of two boxes."""
    return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def relation_holds(
    relation: str, a: tuple[float, float], b: tuple[float, float], margin: float = RELATION_MARGIN
) -> bool:
    """Whether centre a is `relation` of centre b: the dominant axis decides (GenEval-like)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if relation == "left":
        return dx > margin and dx >= abs(dy)
    if relation == "right":
        return -dx > margin and -dx >= abs(dy)
    if relation == "above":
        return dy > margin and dy >= abs(dx)
    if relation == "below":
        return -dy > margin and -dy >= abs(dx)
    raise ValueError(f"unknown relation {relation!r}")


PixelBox = tuple[int, int, int, int]
"""(x0, y0, x1, y1) in whole pixels, x1 and y1 exclusive."""

_EPS = 1e-6  # 0.35 * 40 is 14.000000000000002: no box grows by a pixel through float noise


def to_pixels(box: Sequence[float], width: int, height: int) -> PixelBox:
    """The smallest pixel rectangle covering a 0..1 box (every pixel it touches); never empty."""
    x0 = min(width - 1, max(0, math.floor(box[0] * width + _EPS)))
    y0 = min(height - 1, max(0, math.floor(box[1] * height + _EPS)))
    x1 = max(x0 + 1, min(width, math.ceil(box[2] * width - _EPS)))
    y1 = max(y0 + 1, min(height, math.ceil(box[3] * height - _EPS)))
    return x0, y0, x1, y1


def fmt(box: tuple[float, float, float, float]) -> str:
    """A box as the agent writes it: [0.12, 0.30, 0.45, 0.62]."""
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"
