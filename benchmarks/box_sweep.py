"""Box sweep: does the embedded model draw exactly one object in each region's box, whatever the box?

Prints one row per arrangement (box sizes tight .. whole image; rows, columns and grids of 2-4;
nested and touching boxes; agent-written layouts for held-out prompts; region edits): how often a
region holds exactly its one object (right shape and color, centred in the box, the only object
centred there), and how often a whole image does (every region right, nothing outside the boxes).
Objects are assigned to the smallest box that holds their centre, so nested boxes count apart.

    python benchmarks/box_sweep.py [--samples 16] [--no-place] [--weights DIR]

Every arrangement draws `samples` layouts from its own RNG stream (seed = arrangement index), one
image each (seed = sample index), 20 DDIM steps at the shipped guidance, 32x32 output.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gems_mcp.generation.base import GenerationRequest
from gems_mcp.shapes import world
from gems_mcp.shapes.bench import two_groups_prompts
from gems_mcp.shapes.checklist import checklist
from gems_mcp.shapes.generator import WEIGHTS, EmbeddedGenerator
from gems_mcp.shapes.judge import ExactJudge, find_objects
from gems_mcp.shapes.layout import to_pixels
from gems_mcp.types import ImageParams, Region

Box = tuple[float, float, float, float]
Layout = list[Box]


# ---------------------------------------------------------------- arrangements (boxes only)


def _single(side: float) -> Callable[[np.random.Generator], Layout]:
    def boxes(rng: np.random.Generator) -> Layout:
        x0, y0 = (float(v) for v in rng.uniform(0, 1 - side, size=2))
        return [(x0, y0, x0 + side, y0 + side)]

    return boxes


def _pick(*choices: Layout) -> Callable[[np.random.Generator], Layout]:
    return lambda rng: list(choices[int(rng.integers(len(choices)))])


def _row(n: int, y0: float = 0.0, y1: float = 1.0) -> Layout:
    return [(i / n, y0, (i + 1) / n, y1) for i in range(n)]


def _column(n: int, x0: float = 0.0, x1: float = 1.0) -> Layout:
    return [(x0, i / n, x1, (i + 1) / n) for i in range(n)]


QUADRANTS: Layout = [(0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0, 0.5, 0.5, 1), (0.5, 0.5, 1, 1)]


def _nested(rng: np.random.Generator) -> Layout:
    """A loose outer box and a 0.3 box inside one of its corners (the later, inner region wins)."""
    outer = [(0, 0, 1, 1), (0, 0, 1, 0.6), (0, 0, 0.6, 1)][int(rng.integers(3))]
    corner = int(rng.integers(4))
    x = outer[0] + 0.05 if corner % 2 == 0 else outer[2] - 0.35
    y = outer[1] + 0.05 if corner < 2 else outer[3] - 0.35
    return [outer, (x, y, x + 0.3, y + 0.3)]


def _touching(rng: np.random.Generator) -> Layout:
    y = float(rng.uniform(0.05, 0.55))
    pair = [(0.1, y, 0.5, y + 0.4), (0.5, y, 0.9, y + 0.4)]
    return pair if rng.random() < 0.5 else [(b[1], b[0], b[3], b[2]) for b in pair]


ARRANGEMENTS: dict[str, Callable[[np.random.Generator], Layout]] = {
    "tight 0.25 (8 px)": _single(0.25),
    "tight 0.31 (10 px)": _single(10 / 32),
    "0.4 box": _single(0.4),
    "half image": _pick([(0, 0, 0.5, 1)], [(0.5, 0, 1, 1)], [(0, 0, 1, 0.5)], [(0, 0.5, 1, 1)]),
    "quadrant": _pick(*([q] for q in QUADRANTS)),
    "full column (1/3 wide)": _pick([(0, 0, 1 / 3, 1)], [(1 / 3, 0, 2 / 3, 1)], [(2 / 3, 0, 1, 1)]),
    "whole image": _pick([(0, 0, 1, 1)]),
    "row of 2 halves": _pick(_row(2)),
    "row of 3 full columns": _pick(_row(3)),
    "row of 4 full columns": _pick(_row(4)),
    "row of 4 in a 0.4 band": lambda rng: _row(4, y0 := float(rng.uniform(0, 0.6)), y0 + 0.4),
    "column of 2 halves": _pick(_column(2)),
    "column of 3 full rows": _pick(_column(3)),
    "column of 4 full rows": _pick(_column(4)),
    "grid 2x2 quadrants": _pick(QUADRANTS),
    "grid: 3 of 4 quadrants": lambda rng: [QUADRANTS[i] for i in sorted(rng.permutation(4)[:3])],
    "nested (0.3 inside a loose box)": _nested,
    "touching 0.4 boxes": _touching,
}


def _objects(n: int, rng: np.random.Generator) -> tuple[str, list[world.Group]]:
    """A prompt in the grammar and one object per region: 1, 2 different, or a group of n-1 and one more."""
    shapes, colors = world.SHAPES, world.COLORS
    first = world.Group(shapes[int(rng.integers(3))], colors[int(rng.integers(6))])
    if n == 1:
        return first.describe(), [first]
    while True:
        other = world.Group(shapes[int(rng.integers(3))], colors[int(rng.integers(6))])
        if other.shape != first.shape:
            break
    groups = (world.Group(first.shape, first.color, n - 1), other)
    objects = [first] * (n - 1) + [other]
    order = rng.permutation(n)
    return world.SceneSpec(groups).caption(), [objects[i] for i in order]


# ---------------------------------------------------------------- agent-written layouts for held-out prompts


def _agent_boxes(spec: world.SceneSpec, rng: np.random.Generator, loose: bool) -> Layout:
    """Boxes an agent would write: one per object, ~0.25-0.4 (loose: halves, whole columns or quadrants)."""
    n = spec.total
    if spec.relation:
        horizontal = spec.relation in ("left", "right")
        if loose:
            width = 0.5 if rng.random() < 0.5 else float(rng.uniform(0.3, 0.45))
            slots = [(0.0, 0.0, width, 1.0), (1 - width, 0.0, 1.0, 1.0)]
        else:
            s = float(rng.uniform(0.25, 0.4))
            band = float(rng.uniform(0.1, 0.9 - s))
            slots = [(0.05, band, 0.05 + s, band + s), (0.95 - s, band, 0.95, band + s)]
        if not horizontal:
            slots = [(b[1], b[0], b[3], b[2]) for b in slots]
        return slots if spec.relation in ("left", "above") else slots[::-1]
    if loose:
        choices = [_row(n), _column(n)] + ([QUADRANTS] if n > 2 else [])
        slots = choices[int(rng.integers(len(choices)))]
        return [slots[i] for i in sorted(rng.permutation(len(slots))[:n])]
    slots = _row(n) if n <= 2 or rng.random() < 0.4 else QUADRANTS
    boxes = []
    for i in sorted(rng.permutation(len(slots))[:n]):
        x0, y0, x1, y1 = slots[i]
        w, h = min(x1 - x0, float(rng.uniform(0.25, 0.4))), min(y1 - y0, float(rng.uniform(0.25, 0.4)))
        bx, by = float(rng.uniform(x0, x1 - w)), float(rng.uniform(y0, y1 - h))
        boxes.append((bx, by, bx + w, by + h))
    return boxes


AGENT_SEED = 0xB0C5
"""RNG stream of the agents' boxes and of the sweep's layouts."""


def agent_prompts(per_category: int) -> list[tuple[str, str]]:
    """Held-out position, color-attribution and two-groups prompts (the embedded bench's)."""
    held = [(c, p) for c, p in world.held_out_prompts(per_category) if c in ("position", "color_attr")]
    return held + two_groups_prompts(per_category)


# ---------------------------------------------------------------- scoring


def region_hits(image: Image.Image, regions: list[Region]) -> tuple[list[bool], int]:
    """Per region: exactly its one object centred there; and how many objects lie outside every box."""
    pixel_boxes = [to_pixels(r.box) for r in regions]
    held: list[list[str]] = [[] for _ in regions]
    outside = 0
    for d in find_objects(image):
        cx, cy = (d.box[0] + d.box[2]) / 2 * world.SIZE, (d.box[1] + d.box[3]) / 2 * world.SIZE
        inside = [i for i, b in enumerate(pixel_boxes) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
        if not inside:
            outside += 1
            continue
        smallest = min(inside, key=lambda i: (pixel_boxes[i][2] - pixel_boxes[i][0]) * (pixel_boxes[i][3] - pixel_boxes[i][1]))
        held[smallest].append(f"{d.color} {d.object}")
    wanted = [r.prompt.removeprefix("a ").removeprefix("an ") for r in regions]
    return [h == [w] for h, w in zip(held, wanted, strict=True)], outside


class Tally:
    def __init__(self) -> None:
        self.regions = self.region_hits = self.images = self.image_hits = self.prompt_hits = 0

    def add(self, hits: list[bool], outside: int, prompt_ok: bool | None = None) -> None:
        self.regions += len(hits)
        self.region_hits += sum(hits)
        self.images += 1
        self.image_hits += int(all(hits) and not outside)
        self.prompt_hits += int(bool(prompt_ok))

    def row(self, name: str, with_prompt: bool = False) -> str:
        prompt = f" {self.prompt_hits / self.images:.1%} |" if with_prompt else " |"
        return (f"| {name} | {self.images} | {self.region_hits / self.regions:.1%} | "
                f"{self.image_hits / self.images:.1%} |{prompt}")


def _generate(generator: EmbeddedGenerator, prompt: str, regions: list[Region], seed: int) -> Image.Image:
    params = generator.capabilities().resolve(ImageParams(width=32, height=32))
    return generator.generate(GenerationRequest(prompt, [seed], params, layout=regions))[0]


def sweep(generator: EmbeddedGenerator, samples: int, match: str = "") -> Iterator[str]:
    for index, (name, arrange) in enumerate(ARRANGEMENTS.items()):
        if match not in name:
            continue
        rng = np.random.default_rng([AGENT_SEED, index])
        tally = Tally()
        for k in range(samples):
            boxes = arrange(rng)
            prompt, objects = _objects(len(boxes), rng)
            regions = [Region(prompt=g.describe(), box=b) for g, b in zip(objects, boxes, strict=True)]
            tally.add(*region_hits(_generate(generator, prompt, regions, k), regions))
        yield tally.row(name)


def agents(generator: EmbeddedGenerator, per_category: int) -> list[str]:
    judge, rows = ExactJudge(), []
    prompts = agent_prompts(per_category)
    for loose in (False, True):
        tallies: dict[str, Tally] = {}
        rng = np.random.default_rng([AGENT_SEED, int(loose)])
        for index, (category, prompt) in enumerate(prompts):
            spec = world.parse(prompt)
            objects = [world.Group(g.shape, g.color) for g in spec.groups for _ in range(g.count)]
            boxes = _agent_boxes(spec, rng, loose)
            regions = [Region(prompt=g.describe(), box=b) for g, b in zip(objects, boxes, strict=True)]
            image = _generate(generator, prompt, regions, index)
            ok = all(v.passed for v in judge.verify([image], checklist(prompt))[0].verdicts)
            hits, outside = region_hits(image, regions) if all(g.color for g in objects) else ([ok], 0)
            for key in (category, "together"):
                tallies.setdefault(key, Tally()).add(hits, outside, ok)
        tallies["together"] = tallies.pop("together")
        label = "agent loose boxes (halves, whole columns, quadrants)" if loose else "agent boxes 0.25-0.4 per object"
        rows += [tally.row(f"{label}: {key}", with_prompt=True) for key, tally in tallies.items()]
    return rows


# ---------------------------------------------------------------- region edits


EDIT_BOXES = {"edit: tight box (object + 1 px)": None, "edit: 0.4 x 0.8 box": (0.4, 0.8), "edit: quadrant-sized box": (0.5, 0.5)}


def _edit_scene(size: tuple[float, float] | None, rng: np.random.Generator) -> tuple[list[world.Placed], Box]:
    """A rendered scene whose first object lies in the edit box and whose others lie outside it."""
    while True:
        side = int(rng.integers(7, 11))
        if size is None:
            x, y = (int(v) for v in rng.integers(1, world.SIZE - side, size=2))
            box = ((x - 1) / 32, (y - 1) / 32, (x + side + 1) / 32, (y + side + 1) / 32)
        else:
            bx, by = float(rng.uniform(0, 1 - size[0])), float(rng.uniform(0, 1 - size[1]))
            box = (bx, by, bx + size[0], by + size[1])
            px = to_pixels(box)
            x, y = int(rng.integers(px[0], px[2] - side + 1)), int(rng.integers(px[1], px[3] - side + 1))
        target = world.Placed(world.SHAPES[int(rng.integers(3))], world.COLORS[int(rng.integers(6))], x, y, side)
        scene = [target]
        px = to_pixels(box)
        for _ in range(int(rng.integers(1, 3))):
            for _ in range(100):
                o = world.Placed(world.SHAPES[int(rng.integers(3))], world.COLORS[int(rng.integers(6))],
                                 *(int(v) for v in rng.integers(1, 23, size=2)), int(rng.integers(7, 11)))
                clear = o.x0 >= px[2] or o.x0 + o.side <= px[0] or o.y0 >= px[3] or o.y0 + o.side <= px[1]
                if clear and all(world._apart(o, other) for other in scene):
                    scene.append(o)
                    break
        if len(scene) > 1:
            return scene, box


def edits(generator: EmbeddedGenerator, samples: int) -> Iterator[str]:
    params = generator.capabilities().resolve(ImageParams(width=32, height=32))
    for index, (name, size) in enumerate(EDIT_BOXES.items()):
        rng = np.random.default_rng([AGENT_SEED, 100 + index])
        tally = Tally()
        for k in range(samples):
            scene, box = _edit_scene(size, rng)
            old = scene[0]
            while True:
                new = world.Group(world.SHAPES[int(rng.integers(3))], world.COLORS[int(rng.integers(6))])
                if (new.shape, new.color) != (old.shape, old.color):
                    break
            init = Image.fromarray(world.render(scene))
            request = GenerationRequest(new.describe(), [k], params, init_image=init,
                                        edits=[Region(prompt=new.describe(), box=box)])
            image = generator.generate(request)[0]
            hits, outside = region_hits(image, [Region(prompt=new.describe(), box=box)])
            # the objects outside the box are the scene's own, untouched: anything more is an extra object
            tally.add(hits, outside - (len(scene) - 1))
        yield tally.row(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16, help="Layouts per arrangement.")
    parser.add_argument("--prompts", type=int, default=40, help="Held-out prompts per agent category.")
    parser.add_argument("--no-place", action="store_true", help="Give the model every box as written.")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--match", default="", help="Only the arrangements whose name holds this text.")
    parser.add_argument("--only", choices=("sweep", "edits", "agents"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = EmbeddedGenerator(args.weights, place=not args.no_place)
    start = time.perf_counter()
    out = sys.stdout
    out.write(f"box sweep, weights {args.weights.name}, placement {'off' if args.no_place else 'on'}\n\n")
    out.write("| arrangement | images | regions with exactly their object | whole image right | prompt pass |\n")
    out.write("|---|---|---|---|---|\n")
    if args.only in (None, "sweep"):
        for row in sweep(generator, args.samples, args.match):
            out.write(row + "\n")
            out.flush()
    if args.only in (None, "edits"):
        for row in edits(generator, args.samples):
            out.write(row + "\n")
            out.flush()
    if args.only in (None, "agents"):
        for row in agents(generator, args.prompts):
            out.write(row + "\n")
    out.write(f"\nbench time: {time.perf_counter() - start:.0f} s\n")


if __name__ == "__main__":
    main()
