"""Where the embedded model draws each region's object: an object-sized cell inside the region's box.

A box is where an object may be, not its size. The model was trained on cells about the size of the
object it draws (7-10 px objects in cells up to 16 px), and a box much larger than that makes it fill
the box with several objects. So before sampling, each object region's box becomes an object-sized
cell inside it (as near the box's centre as it fits, apart from the other cells and out of smaller
boxes, so that nested and touching boxes keep their objects apart), and the rest of the box is marked
"keep empty". Region edits get the same cells; their mask stays the whole box, so the old object is
erased and the new one drawn once. Pure functions of their arguments (numpy only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from gems_mcp.boxes import PixelBox
from gems_mcp.errors import InvalidRequest
from gems_mcp.shapes.layout import GAP, Cell
from gems_mcp.shapes.world import SIZE

OBJECT_SIDE = 10
"""Side of the cell an object is drawn in, native pixels (the planner's cells are 9-10)."""

MIN_SIDE = 7
"""The smallest object the world draws is 7 px: a box narrower or lower than that cannot hold one."""

MIN_BOX = math.ceil(MIN_SIDE / SIZE * 100) / 100
"""The smallest box side that always covers MIN_SIDE native pixels, as a fraction (0.22)."""


def check_box_fits(prompt: str, box: Sequence[float], pixels: PixelBox) -> None:
    """InvalidRequest, naming the smallest box that works, when a region's box cannot hold an object."""
    width, height = pixels[2] - pixels[0], pixels[3] - pixels[1]
    if min(width, height) >= MIN_SIDE:
        return
    frac = f"{box[2] - box[0]:.2f} x {box[3] - box[1]:.2f}"
    raise InvalidRequest(
        f"the box of region {prompt!r} is {frac} of the image ({width} x {height} of the embedded model's "
        f"{SIZE} x {SIZE} pixels), too small for its smallest object: give it a box of at least "
        f"{MIN_BOX:.2f} x {MIN_BOX:.2f}"
    )


def place_cells(cells: Sequence[Cell], keep_rest_empty: bool = True) -> list[Cell]:
    """The cells the model is given for the boxes the agent wrote.

    Every object box larger than an object shrinks to an OBJECT_SIDE cell inside it; with
    keep_rest_empty the rest of the box is marked "keep empty". Erase cells and the empty rests come
    first, object cells last, so an object cell always wins where boxes overlap.
    """
    objects = [c for c in cells if not c.empty]
    spots: dict[int, PixelBox] = {}
    # small boxes first: a large box then places its object clear of the smaller boxes inside or beside it
    for i in sorted(range(len(objects)), key=lambda k: _area(objects[k].box)):
        smaller = [objects[j].box for j in spots if objects[j].box != objects[i].box]
        spots[i] = _spot(objects[i].box, list(spots.values()), smaller)
    rests = [Cell(c.box) for i, c in enumerate(objects) if keep_rest_empty and spots[i] != c.box]
    erases = [c for c in cells if c.empty]
    return erases + rests + [replace(c, box=spots[i]) for i, c in enumerate(objects)]


def _spot(box: PixelBox, cells: list[PixelBox], smaller: list[PixelBox]) -> PixelBox:
    """An object-sized cell in the box: nearest its centre among those clear of the other cells.

    Clear means GAP px from every other cell and outside every smaller box; when nothing is, the
    cell shrinks a pixel at a time down to the smallest object (a row of four 8 px columns gets
    7 px cells 1 px apart), and last of all it sits at the centre whatever it touches.
    """
    x0, y0, x1, y1 = box
    w, h = min(OBJECT_SIDE, x1 - x0), min(OBJECT_SIDE, y1 - y0)
    if (w, h) == (x1 - x0, y1 - y0) and not any(_overlaps(box, c) for c in cells):
        return box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def off_centre(c: PixelBox) -> float:
        return math.hypot((c[0] + c[2]) / 2 - cx, (c[1] + c[3]) / 2 - cy)

    def inside(cw: int, ch: int) -> list[PixelBox]:
        return [(x, y, x + cw, y + ch) for y in range(y0, y1 - ch + 1) for x in range(x0, x1 - cw + 1)]

    for shrink in range(max(w, h) - MIN_SIDE + 1):
        for gap in (GAP, 1):
            cw, ch = max(min(w, MIN_SIDE), w - shrink), max(min(h, MIN_SIDE), h - shrink)
            clear = [c for c in inside(cw, ch) if all(_apart(c, o, gap) for o in cells)]
            clear = [c for c in clear if not any(_overlaps(c, s) for s in smaller)]
            if clear:
                return min(clear, key=off_centre)
    return min(inside(w, h), key=off_centre)


def _area(box: PixelBox) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _apart(a: PixelBox, b: PixelBox, gap: int = GAP) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _overlaps(a: PixelBox, b: PixelBox) -> bool:
    return not _apart(a, b, gap=0)
