"""Training data for the embedded model: rendered scenes, their captions and the layouts a planner
could have written for them. Pure functions of their arguments (numpy only), so data workers can
render ahead and a resumed run continues exactly."""

from __future__ import annotations

import numpy as np

from gems_mcp.shapes import world
from gems_mcp.shapes.layout import LAYOUT_CHANNELS, Cell, raster
from gems_mcp.shapes.model import tokenize


def make_batch(
    seed: int, step: int, size: int, layout_share: float = 0.0
) -> tuple[np.ndarray, list[list[int]], np.ndarray]:
    """Rendered images, word ids and layout maps for one step; a pure function of its arguments.

    images (size, 32, 32, 3) uint8, layouts (size, LAYOUT_CHANNELS, 32, 32) uint8 (all zero for the
    examples without a layout). Resuming a run therefore continues exactly.
    """
    rng = np.random.default_rng([seed, step])
    images = np.empty((size, world.SIZE, world.SIZE, 3), dtype=np.uint8)
    layouts = np.zeros((size, LAYOUT_CHANNELS, world.SIZE, world.SIZE), dtype=np.uint8)
    ids = []
    for i in range(size):
        spec, objects = world.sample_training_scene(rng)
        images[i] = world.render(objects)
        ids.append(tokenize(spec))
        if rng.random() < layout_share:
            raster(training_cells(spec, objects, rng), out=layouts[i])
    return images, ids, layouts


def training_cells(spec: world.SceneSpec, objects: list[world.Placed], rng: np.random.Generator) -> list[Cell]:
    """The layout a planner could have written for a rendered scene.

    Each object's bounding square grows by 0-3 px per side (the same margin all round half the
    time); an object whose group has no color in the caption gets a shape-only cell, and 10% of the
    others drop their color too; a fifth of the layouts box only some objects; a third add 1-2
    "keep empty" boxes over free background.
    """
    groups = [g for g in spec.groups for _ in range(g.count)]
    partial = rng.random() < 0.2
    cells: list[Cell] = []
    for group, obj in zip(groups, objects, strict=True):
        if partial and rng.random() < 0.5:
            continue
        if rng.random() < 0.5:
            margins = [int(rng.integers(0, 4))] * 4
        else:
            margins = [int(v) for v in rng.integers(0, 4, size=4)]
        box = (
            max(0, obj.x0 - margins[0]),
            max(0, obj.y0 - margins[1]),
            min(world.SIZE, obj.x0 + obj.side + margins[2]),
            min(world.SIZE, obj.y0 + obj.side + margins[3]),
        )
        color = obj.color if group.color is not None and rng.random() >= 0.1 else None
        cells.append(Cell(box, obj.shape, color))
    if rng.random() < 1 / 3:
        cells += _empty_cells(objects, int(rng.integers(1, 3)), rng)
    return cells


def _empty_cells(objects: list[world.Placed], n: int, rng: np.random.Generator) -> list[Cell]:
    """Up to n boxes of 6-14 px over background only (1 px clear of every object)."""
    found: list[Cell] = []
    for _ in range(30 * n):
        if len(found) == n:
            break
        w, h = (int(v) for v in rng.integers(6, 15, size=2))
        x0, y0 = int(rng.integers(0, world.SIZE - w + 1)), int(rng.integers(0, world.SIZE - h + 1))
        box = (x0, y0, x0 + w, y0 + h)
        clear = all(
            box[2] + 1 <= o.x0 or o.x0 + o.side + 1 <= box[0] or box[3] + 1 <= o.y0 or o.y0 + o.side + 1 <= box[1]
            for o in objects
        )
        if clear:
            found.append(Cell(box))
    return found
