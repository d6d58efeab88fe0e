"""Layouts in the shapes world: the layout map the model reads, and the planner's boxes.

A layout is a list of Regions (a one-object prompt and a box as 0..1 fractions). The model sees it
as a map at the world's native 32x32 grid, LAYOUT_CHANNELS values per pixel: a one-hot color (6), a
one-hot shape (3), "an object is here" (1) and "keep this empty" (1). Boxes are rounded outward to
whole native pixels; where boxes overlap, the later region wins.

`plan_layout` writes the boxes a planner would for a world prompt (one per object, relation kept
with a clear margin, no overlaps); `free_box` finds an empty place for a missing object. Both are
pure functions of their arguments (numpy only: training workers import this module).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gems_mcp import boxes
from gems_mcp.boxes import PixelBox
from gems_mcp.errors import Unsupported
from gems_mcp.shapes.world import COLORS, RELATION_PHRASES, SHAPES, SIZE, Group, SceneSpec, parse

if TYPE_CHECKING:
    from gems_mcp.types import Region

LAYOUT_CHANNELS = len(COLORS) + len(SHAPES) + 2
OBJECT_CHANNEL = len(COLORS) + len(SHAPES)
EMPTY_CHANNEL = OBJECT_CHANNEL + 1

FracBox = tuple[float, float, float, float]

REGION_HELP = (
    "each layout or edit region holds one object of the shapes world: a prompt such as "
    "'a red circle', 'blue square' or 'a triangle' (shapes circle, square, triangle; colors "
    f"{', '.join(COLORS)}; the color may be left out), or '' in an edit to erase the box to background"
)


@dataclass(frozen=True)
class Cell:
    """One box of a layout map: an object (shape, optional color) or a 'keep empty' box."""

    box: PixelBox
    shape: str | None = None
    color: str | None = None

    @property
    def empty(self) -> bool:
        return self.shape is None


def to_pixels(box: Sequence[float], size: int = SIZE) -> PixelBox:
    """A fraction box as native pixels, rounded outward (every pixel the box touches), never empty."""
    return boxes.to_pixels(box, size, size)


def to_fractions(box: PixelBox, size: int = SIZE) -> FracBox:
    return (box[0] / size, box[1] / size, box[2] / size, box[3] / size)


def region_group(prompt: str) -> Group | None:
    """The one object a region prompt names; None for an empty prompt (erase). Unsupported otherwise."""
    if not prompt.strip():
        return None
    try:
        spec = parse(prompt)
    except Unsupported as exc:
        raise Unsupported(
            f"the region prompt {prompt!r} is not one object the embedded model knows: {REGION_HELP}"
        ) from exc
    if spec.relation or len(spec.groups) != 1 or spec.groups[0].count != 1:
        raise Unsupported(
            f"the region prompt {prompt!r} names {spec.total} objects; {REGION_HELP} "
            "(give several objects one region each)"
        )
    return spec.groups[0]


def region_cell(prompt: str, box: Sequence[float]) -> Cell:
    group = region_group(prompt)
    pixels = to_pixels(box)
    return Cell(pixels) if group is None else Cell(pixels, group.shape, group.color)


def raster(cells: Sequence[Cell], out: np.ndarray | None = None) -> np.ndarray:
    """The layout map (LAYOUT_CHANNELS, SIZE, SIZE) uint8 of 0/1; later cells overwrite earlier ones."""
    grid = np.zeros((LAYOUT_CHANNELS, SIZE, SIZE), dtype=np.uint8) if out is None else out
    for cell in cells:
        x0, y0, x1, y1 = cell.box
        window = grid[:, y0:y1, x0:x1]
        window[:] = 0
        if cell.empty:
            window[EMPTY_CHANNEL] = 1
            continue
        window[OBJECT_CHANNEL] = 1
        window[len(COLORS) + SHAPES.index(cell.shape)] = 1
        if cell.color is not None:
            window[COLORS.index(cell.color)] = 1
    return grid


# ---------------------------------------------------------------- planning

GAP = 2
"""Native pixels between planned boxes (the world keeps objects 2 px apart)."""

BORDER = 1


def _rng(prompt: str, seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    base = zlib.crc32(prompt.strip().lower().encode())
    return np.random.default_rng([base] if seed is None else [base, seed])


def _apart(a: PixelBox, b: PixelBox, gap: int = GAP) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _box(x0: int, y0: int, side: int) -> PixelBox:
    return (x0, y0, x0 + side, y0 + side)


def _relation_boxes(relation: str, side: int, rng: np.random.Generator) -> tuple[PixelBox, PixelBox]:
    """Two boxes, the first `relation` of the second: opposite thirds of the main axis, one band across."""
    low_end = SIZE - BORDER - side
    near = int(rng.integers(BORDER, BORDER + 5))  # first box in the first third
    far = int(rng.integers(low_end - 4, low_end + 1))  # second box in the last third
    band = int(rng.integers(BORDER + 6, low_end - 6 + 1))
    drift = int(rng.integers(-2, 3))
    a_main, b_main = (near, far) if relation in ("left", "above") else (far, near)
    a_cross, b_cross = band, min(low_end, max(BORDER, band + drift))
    if relation in ("left", "right"):
        return _box(a_main, a_cross, side), _box(b_main, b_cross, side)
    return _box(a_cross, a_main, side), _box(b_cross, b_main, side)


def _scatter(n: int, side: int, rng: np.random.Generator, tries: int = 400) -> list[PixelBox]:
    """n non-overlapping boxes anywhere; a grid fallback when rejection sampling runs out."""
    for _ in range(tries):
        boxes: list[PixelBox] = []
        for _ in range(n):
            for _ in range(60):
                x0, y0 = (int(v) for v in rng.integers(BORDER, SIZE - BORDER - side + 1, size=2))
                box = _box(x0, y0, side)
                if all(_apart(box, other) for other in boxes):
                    boxes.append(box)
                    break
            else:
                break
        if len(boxes) == n:
            return boxes
    # pragma: no cover - a 2x2 grid of quadrants always fits 4 boxes of side <= 13
    half = SIZE // 2
    slots = [(0, 0), (half, 0), (0, half), (half, half)]
    order = rng.permutation(len(slots))[:n]
    return [_box(slots[i][0] + (half - side) // 2, slots[i][1] + (half - side) // 2, side) for i in order]


def plan_spec(spec: SceneSpec, rng: np.random.Generator, side: int | None = None) -> list[tuple[Group, PixelBox]]:
    """One (group, native box) per object of a spec, in the spec's order."""
    side = int(rng.integers(9, 11)) if side is None else side
    objects = [g for g in spec.groups for _ in range(g.count)]
    if spec.relation:
        boxes = list(_relation_boxes(spec.relation, side, rng))
    else:
        boxes = _scatter(len(objects), side, rng)
    return list(zip(objects, boxes, strict=True))


def plan_layout(prompt: str, seed: int | np.random.Generator | None = None) -> list[Region]:
    """The regions a planner would write for a world prompt: one box per object, ~0.3 wide.

    Counts expand into one region per object; a relation puts the first object in the first third
    of the axis and the second in the last third, in the same band across (a clear margin by
    gems_mcp.boxes.relation_holds); boxes never overlap. The same prompt and seed give the same
    layout; seed None is a fixed seed derived from the prompt.
    """
    from gems_mcp.types import Region

    spec = parse(prompt)
    planned = plan_spec(spec, _rng(prompt, seed))
    return [Region(prompt=Group(g.shape, g.color).describe(), box=to_fractions(box)) for g, box in planned]


def free_box(
    occupied: Sequence[Sequence[float]],
    size: float = 10 / SIZE,
    seed: int | np.random.Generator | None = None,
    gap: float = GAP / SIZE,
) -> FracBox | None:
    """A size x size box (fractions) that keeps `gap` from every occupied box, as far from them as it can.

    For a corrector putting a missing object somewhere empty. Deterministic; a seed picks among the
    equally good places. None when nothing fits.
    """
    side = max(1, round(size * SIZE))
    taken = [to_pixels(b) for b in occupied]
    pad = max(0, round(gap * SIZE))
    best: list[PixelBox] = []
    best_score = -1.0
    for y0 in range(BORDER, SIZE - BORDER - side + 1):
        for x0 in range(BORDER, SIZE - BORDER - side + 1):
            box = _box(x0, y0, side)
            if not all(_apart(box, t, pad) for t in taken):
                continue
            score = _clearance(box, taken)
            if score > best_score + 1e-9:
                best, best_score = [box], score
            elif abs(score - best_score) <= 1e-9:
                best.append(box)
    if not best:
        return None
    if seed is None:
        pick = best[len(best) // 2]
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        pick = best[int(rng.integers(len(best)))]
    return to_fractions(pick)


def _clearance(box: PixelBox, taken: Sequence[PixelBox]) -> float:
    """Distance from the box to the nearest occupied box (capped), or to the image centre when none."""
    if not taken:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return -math.hypot(cx - SIZE / 2, cy - SIZE / 2)
    return min(8.0, min(_distance(box, t) for t in taken))


def _distance(a: PixelBox, b: PixelBox) -> float:
    dx = max(0, b[0] - a[2], a[0] - b[2])
    dy = max(0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, dy)


def free_boxes(occupied: Sequence[Sequence[float]], n: int, size: float = 10 / SIZE) -> list[FracBox]:
    """Up to n boxes placed one after another with free_box (each new box counts as occupied)."""
    taken = [tuple(b) for b in occupied]
    found: list[FracBox] = []
    for _ in range(n):
        box = free_box(taken, size)
        if box is None:
            break
        found.append(box)
        taken.append(box)
    return found


def contradiction(spec: SceneSpec, regions: Sequence[tuple[str, Sequence[float]]]) -> str | None:
    """One sentence when a layout puts a relation prompt's objects the other way round; None otherwise.

    Regions are matched to the prompt's two groups by shape and color (a region matching both, or
    neither, is left out); the centres of each side's boxes are compared by the judge's dominant-axis rule.
    """
    if spec.relation is None or not regions:
        return None
    sides: list[list[tuple[float, float]]] = [[], []]
    for prompt, box in regions:
        group = region_group(prompt)
        if group is None:
            continue
        matches = [i for i, g in enumerate(spec.groups) if g.shape == group.shape and group.color in (g.color, None)]
        if len(matches) == 1:
            sides[matches[0]].append(boxes.center(tuple(box)))  # type: ignore[arg-type]
    if not all(sides):
        return None
    a, b = (tuple(float(np.mean(axis)) for axis in zip(*side, strict=True)) for side in sides)
    if boxes.relation_holds(spec.relation, a, b):  # type: ignore[arg-type]
        return None
    first, second = (g.describe(False) for g in spec.groups)
    wanted = RELATION_PHRASES[spec.relation]
    return (
        f"the layout contradicts the prompt: it puts the {first}'s box {_where(a, b)} the {second}'s, not {wanted} it; "
        f"the image follows the layout, and the checklist still asks whether the {first} is {wanted} the {second}"
    )


def _where(a: Sequence[float], b: Sequence[float]) -> str:
    """The relation of centre a to centre b along the dominant axis, as a phrase."""
    dx, dy = a[0] - b[0], a[1] - b[1]
    if max(abs(dx), abs(dy)) < boxes.RELATION_MARGIN:
        return "at the same place as"
    if abs(dx) >= abs(dy):
        return RELATION_PHRASES["left" if dx < 0 else "right"]
    return RELATION_PHRASES["above" if dy < 0 else "below"]
