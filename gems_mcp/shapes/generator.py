"""EmbeddedGenerator: the shipped shapes-world model behind the Generator protocol."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from gems_mcp.errors import GenerationCancelled, InvalidRequest, Unsupported
from gems_mcp.generation.base import Capabilities, GenerationRequest, StepCallback
from gems_mcp.generation.regions import blend, blend_mask
from gems_mcp.shapes import world
from gems_mcp.shapes.checklist import checklist
from gems_mcp.shapes.layout import Cell, contradiction, plan_layout, raster, region_cell, region_group, to_pixels
from gems_mcp.shapes.placement import MIN_BOX, check_box_fits, place_cells

if TYPE_CHECKING:
    from gems_mcp.shapes.judge import ExactJudge
    from gems_mcp.shapes.model import ShapesModel
    from gems_mcp.types import Region, Requirement

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).parent / "weights"
MAX_SIDE = 1024
MAX_STEPS = 200
MAX_SEEDS = 64
MAX_REGIONS = 8
DEFAULT_STRENGTH = 0.6
FALLBACK_GUIDANCE = 1.5
FEATURES = frozenset({"guidance", "edit", "layout", "inpaint"})
DRAWS = (
    f"1-{world.MAX_OBJECTS} flat shapes ({', '.join(world.SHAPES)}) in six colors ({', '.join(world.COLORS)}) on a "
    "dark background, from prompts such as 'a red circle', 'a red circle and a blue square', 'three green triangles', "
    "'two red circles and a blue square', 'a yellow square to the left of a purple circle' (also to the right of, "
    "above, below). A relation joins two single objects: to place groups ('three green triangles to the left of a "
    "white square'), list them in the prompt ('three green triangles and a white square') and give each object a "
    "layout box. A box marks where its one object goes, not its size: any box from "
    f"{MIN_BOX:.2f} x {MIN_BOX:.2f} up to the whole image gets exactly one object, drawn at the model's size inside it. "
    "Anything else (other shapes or colors, words, scenes, styles) is refused."
)


def shipped_guidance(folder: Path = WEIGHTS) -> float:
    """The guidance scale the weights were tuned for (their config says), without loading torch."""
    try:
        return float(json.loads((folder / "config.json").read_text()).get("guidance", FALLBACK_GUIDANCE))
    except (OSError, ValueError):
        return FALLBACK_GUIDANCE


class EmbeddedGenerator:
    """Draws shapes-world prompts offline on a CPU; loads its weights on first use."""

    name = "embedded-shapes"

    def __init__(
        self, weights: Path = WEIGHTS, device: str = "cpu", place: bool = True, own_layout: bool = True
    ) -> None:
        self._folder = Path(weights)
        self._device = device
        # place=False hands the model every box as written; own_layout=False draws a prompt without a
        # layout from its words alone (both the behaviour before issue 18; benchmarks compare)
        self._place = place
        self._own_layout = own_layout
        self._model: ShapesModel | None = None
        self._load_lock = threading.Lock()
        # one job at a time: two concurrent batches would only fight over the same cores
        self._run_lock = threading.Lock()
        # The model draws 32x32 and scales up by whole pixels; it was trained without negative prompts.
        self._capabilities = Capabilities(
            width=256, height=256, steps=20, guidance=shipped_guidance(self._folder),
            min_side=world.SIZE, max_side=MAX_SIDE, side_multiple=world.SIZE, max_steps=MAX_STEPS,
            max_guidance=20.0, max_batch=MAX_SEEDS, max_regions=MAX_REGIONS, features=FEATURES,
            name="the embedded model", draws=DRAWS, skill_params=frozenset(),
        )

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def known_capabilities(self) -> Capabilities:
        """The capabilities without loading anything (they are fixed by the shipped weights)."""
        return self._capabilities

    def validate_prompt(self, prompt: str) -> None:
        world.parse(prompt)

    def checklist(self, prompt: str) -> list[Requirement]:
        return checklist(prompt)

    def judge(self) -> ExactJudge:
        from gems_mcp.shapes.judge import ExactJudge

        return ExactJudge()

    def model(self) -> ShapesModel:
        """The loaded model; the first caller loads it, concurrent callers wait for that load."""
        with self._load_lock:
            if self._model is None:
                from gems_mcp.shapes.model import load_weights

                log.info("loading embedded model from %s", self._folder)
                self._model, _ = load_weights(self._folder, self._device)
            return self._model

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        """One image per seed; the same request gives the same pixels.

        Layout regions are drawn in their boxes (overlapping boxes are allowed: the later region
        wins where they overlap). Inpainting (init image + edits) repaints only the edit boxes:
        every pixel of the returned image outside them is the init image's (resized to the output
        size by nearest neighbour when it has another size).
        """
        spec = _caption(request)
        maps = self._layout_maps(request, spec)
        model = self.model()
        with self._run_lock:
            if should_stop is not None and should_stop():
                raise GenerationCancelled("stopped before the first step")
            native = _run(model, request, spec, maps, _stepper(on_step, should_stop))
        size = request.params.size
        images = [img.resize(size, Image.Resampling.NEAREST) for img in native]
        if request.edits:
            assert request.init_image is not None
            images = [composite(request.init_image, img, [r.box for r in request.edits]) for img in images]
        return images


    def explain(self, request: GenerationRequest) -> list[str]:
        """What this model does with a request beyond drawing it as given, one line each (the round's notes)."""
        spec = _caption(request)
        notes = []
        if self._plans_own_layout(request, spec):
            notes.append(
                "drawn with the model's own layout: no layout was given, so the embedded model planned one box "
                "per object from the prompt (for each seed); give layout=[...] to choose the boxes yourself"
            )
        said = contradiction(spec, [(r.prompt, r.box) for r in request.layout]) if spec else None
        return notes + ([said] if said else [])

    def _plans_own_layout(self, request: GenerationRequest, spec: world.SceneSpec | None) -> bool:
        """A prompt of several objects with no layout, no init image: the model lays it out itself.

        It places and colors objects far better from boxes than from words (MODEL.md), so a plain
        prompt gets the boxes shapes.layout.plan_layout writes, a different plan per seed.
        """
        plain = not request.layout and not request.edits and request.init_image is None
        return self._own_layout and plain and spec is not None and spec.total > 1

    def _layout_maps(self, request: GenerationRequest, spec: world.SceneSpec | None) -> np.ndarray | None:
        """One layout map per seed (n, LAYOUT_CHANNELS, 32, 32), or None to draw from the caption alone."""
        if self._plans_own_layout(request, spec):
            plans = [[_cell(r.prompt, r.box) for r in plan_layout(request.prompt, seed)] for seed in request.seeds]
            return np.stack([raster(place_cells(cells)) for cells in plans])
        cells = _cells(request, self._capabilities)
        if not cells:
            return None
        grid = raster(place_cells(cells) if self._place else cells)
        return np.repeat(grid[None], len(request.seeds), axis=0)


def _caption(request: GenerationRequest) -> world.SceneSpec | None:
    """The scene the model is told to draw; None (no caption) for a blank prompt when regions say what to draw.

    A region edit draws only its boxes, so it is captioned with the objects its regions name, not
    the whole prompt: the words for objects outside the boxes would leak into them ("a green
    triangle and a blue square" repainting the triangle's box drew a blue triangle 1 time in 8).
    """
    drawn = _edit_caption(request.edits) if request.edits else None
    if drawn is not None:
        if request.prompt.strip():
            world.parse(request.prompt)  # still refused when the model cannot draw it
        return drawn
    if not request.prompt.strip() and (request.layout or request.edits):
        return None
    return world.parse(request.prompt)


def _edit_caption(edits: list[Region]) -> world.SceneSpec | None:
    """The objects the edit regions draw as one spec in the trained caption forms (1-2 groups), else None."""
    counts: dict[tuple[str, str | None], int] = {}
    for region in edits:
        group = region_group(region.prompt)
        if group is not None:
            counts[(group.shape, group.color)] = counts.get((group.shape, group.color), 0) + 1
    if not counts or len(counts) > 2 or sum(counts.values()) > world.MAX_OBJECTS:
        return None
    return world.SceneSpec(tuple(world.Group(shape, color, n) for (shape, color), n in counts.items()))


def _cells(request: GenerationRequest, caps: Capabilities) -> list[Cell]:
    """The layout map's boxes: layout regions, then edit regions (an empty edit prompt keeps its box empty).

    request.background is accepted and ignored: the shapes world has one background (flat, dark),
    and it fills everything outside the boxes whatever the background prompt says.
    """
    cells: list[Cell] = []
    if request.layout:
        caps.check_regions(request.layout, "layout")
        cells += _named_cells(request.layout, "layout")
    if request.edits:
        if request.init_image is None:
            raise InvalidRequest("region edits repaint an existing image; give init_image with the edits")
        caps.check_regions(request.edits, "edits")
        cells += _named_cells(request.edits, "edits")
    return cells


def _named_cells(regions: list[Region], what: str) -> list[Cell]:
    """Each region's cell; a region the model cannot draw, or whose box cannot hold it, is refused naming the
    argument it came in."""
    cells = []
    for i, region in enumerate(regions):
        try:
            cells.append(_cell(region.prompt, region.box))
        except Unsupported as exc:  # the model cannot draw the region's prompt
            raise Unsupported(f"{what}[{i}].prompt: {exc}") from exc
        except InvalidRequest as exc:  # its box cannot hold the object
            raise InvalidRequest(f"{what}[{i}].box: {exc}") from exc
    return cells


def _cell(prompt: str, box: tuple[float, float, float, float]) -> Cell:
    cell = region_cell(prompt, box)
    if not cell.empty:
        check_box_fits(prompt, box, cell.box)
    return cell


def composite(init: Image.Image, generated: Image.Image, boxes: list[tuple[float, float, float, float]]) -> Image.Image:
    """generated inside the boxes (fractions, rounded outward to whole output pixels), init everywhere else."""
    base = init.convert("RGB")
    if base.size != generated.size:
        base = base.resize(generated.size, Image.Resampling.NEAREST)
    return blend(base, generated, blend_mask(boxes, *generated.size))


def _stepper(
    on_step: StepCallback | None, should_stop: Callable[[], bool] | None
) -> Callable[[int, int], None]:
    def step(done: int, total: int) -> None:
        if on_step is not None:
            on_step(done, total)
        if should_stop is not None and should_stop() and done < total:
            raise GenerationCancelled(f"stopped after step {done} of {total}")

    return step


def _run(
    model: ShapesModel,
    request: GenerationRequest,
    spec: world.SceneSpec | None,
    maps: np.ndarray | None,
    step: Callable[[int, int], None],
) -> list[Image.Image]:
    import torch

    from gems_mcp.shapes.model import SampleJob, null_tokens, sample, to_tensor, to_uint8, tokenize

    params = request.params
    n = len(request.seeds)
    ids = tokenize(spec) if spec is not None else null_tokens()
    job = SampleJob([ids] * n, list(request.seeds), params.step_count,
                    FALLBACK_GUIDANCE if params.guidance is None else params.guidance)
    if maps is not None:
        if not model.config.layout_channels:
            raise Unsupported("these embedded weights take no layout")
        job.layout = torch.from_numpy(maps).float()
    if request.init_image is not None:
        job.init = to_tensor(world.native_pixels(request.init_image).copy()[None]).expand(n, -1, -1, -1)
        # a region edit redraws its boxes from noise unless asked otherwise; an image edit keeps more
        default = 1.0 if request.edits else DEFAULT_STRENGTH
        job.strength = default if params.strength is None else params.strength
    if request.edits:
        mask = np.zeros((1, 1, world.SIZE, world.SIZE), dtype=np.float32)
        for region in request.edits:
            x0, y0, x1, y1 = to_pixels(region.box)
            mask[..., y0:y1, x0:x1] = 1.0
        job.mask = torch.from_numpy(mask).expand(n, -1, -1, -1)
    pixels = to_uint8(sample(model, job, on_step=step))
    return [Image.fromarray(p) for p in pixels]
