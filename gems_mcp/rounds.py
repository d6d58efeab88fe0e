"""RoundRunner: one round from request to judged candidates, and the judge's verdicts merged in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from PIL import Image
from pydantic import BaseModel

from gems_mcp import inputs
from gems_mcp.errors import InvalidRequest, JudgeError
from gems_mcp.generation.base import Capabilities, GenerationRequest, Generator
from gems_mcp.generation.devices import split_request
from gems_mcp.generation.queue import DeviceQueue, ProgressFn
from gems_mcp.images import ImageStore
from gems_mcp.params import ParamResolver
from gems_mcp.types import (
    Candidate,
    GenerationParams,
    RefineMode,
    Region,
    Requirement,
    Round,
    RoundMode,
    Trajectory,
    Verdict,
)

if TYPE_CHECKING:
    from gems_mcp.critique.base import Judge

log = logging.getLogger(__name__)


@dataclass
class RoundPlan:
    """Everything a round is made from, decided by the loop before the device is touched."""

    prompt: str
    mode: RoundMode
    params: GenerationParams
    seeds: list[int]
    init_image: Image.Image | None = None
    layout: list[Region] = field(default_factory=list)
    background: str | None = None
    edits: list[Region] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the agent should hear about the round beyond its results (a judge that failed)."""

    def request(self) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt, seeds=self.seeds, params=self.params, init_image=self.init_image,
            layout=self.layout, background=self.background, edits=self.edits,
        )


DEFAULT_EDIT_STRENGTH = 0.6


class PlanRequest(BaseModel):
    """What the agent asked of the next round (refine's arguments), before it is checked against the model."""

    prompt: str
    mode: RefineMode = "regenerate"
    strength: float | None = None
    edits: list[Region] | None = None
    """inpaint: the boxes to repaint."""
    image_id: str | None = None
    """edit/inpaint: the image to start from (default the best so far)."""
    layout: list[Region] | None = None
    """regenerate: a new layout (None keeps the last round's, [] drops it)."""
    background: str | None = None


def next_plan(caps: Capabilities, trajectory: Trajectory, images: ImageStore, ask: PlanRequest) -> RoundPlan:
    """What the next round is made from: a new layout, an image-to-image edit, or region edits (loads an edit's
    source image: call it off the event loop)."""
    prompt, mode, strength, edits = ask.prompt, ask.mode, ask.strength, ask.edits
    image_id, layout, background = ask.image_id, ask.layout, ask.background
    last = trajectory.rounds[-1]
    resolver = ParamResolver(caps)
    if mode == "regenerate":
        # A layout carries over from round to round unless the agent gives a new one ([] drops it).
        regions = (last.layout or []) if layout is None else layout
        back = last.background if background is None else background
        check_layout(caps, regions or None, back)
        return RoundPlan(prompt, mode, resolver.next_round(last.params), [], layout=regions, background=back)
    source = source_image(trajectory, image_id)
    init_image = images.load(source)
    if mode == "edit":
        caps.require("edit", "edit an image (mode='edit')")
        params = resolver.next_round(last.params, strength or DEFAULT_EDIT_STRENGTH, source)
        return RoundPlan(prompt, mode, params, [], init_image=init_image)
    caps.require("inpaint", "repaint regions of an image (mode='inpaint')")
    caps.check_regions(edits or [], "edits")
    params = resolver.next_round(last.params, strength, source)
    return RoundPlan(prompt, mode, params, [], init_image=init_image, edits=edits or [])

def check_layout(caps: Capabilities, layout: list[Region] | None, background: str | None) -> None:
    if layout is None:
        if background:
            raise InvalidRequest("background applies only with a layout; give layout=[...] or leave it out")
        return
    caps.require("layout", "draw a layout (regions with boxes)")
    caps.check_regions(layout, "layout")
    if background is not None:
        inputs.prompt(background, "background")


def source_image(trajectory: Trajectory, image_id: str | None) -> str:
    """The image an edit starts from: the one named (it must belong to the trajectory), else the best so far."""
    if image_id is None:
        best = trajectory.best_round() or trajectory.rounds[-1]
        return best.best_candidate().image_id
    if any(c.image_id == image_id for r in trajectory.rounds for c in r.candidates):
        return image_id
    raise InvalidRequest(f"image {image_id} is not an image of trajectory {trajectory.id}")


class RoundRunner:
    """Runs a plan on the device queue, stores its PNGs, and judges it when a server judge exists."""

    def __init__(
        self, generator: Callable[[], Generator], judge: Callable[[], Judge | None], images: ImageStore, queue: DeviceQueue
    ) -> None:
        self._generator = generator
        self._judge = judge
        self.images = images
        self.queue = queue

    async def run(
        self, plan: RoundPlan, index: int, checklist: list[Requirement], progress: ProgressFn | None
    ) -> tuple[Round, list[Image.Image]]:
        """A new Round (numbered `index`; the store renumbers it on commit) and its images.

        A judge that fails leaves the round unjudged (and says so in `plan.notes`): the images are kept and
        critique can be retried."""
        generator = self._generator()
        request = plan.request()
        # A backend may say what it does beyond drawing the request as given (the embedded model: its own
        # layout for a plain prompt, a layout that contradicts the prompt); each line becomes a note.
        explain = getattr(generator, "explain", None)
        if explain is not None:
            plan.notes.extend(explain(request))
        queued = time.perf_counter()
        started: list[float] = []

        def work_on(part: GenerationRequest) -> Any:
            def work(on_step: Any, should_stop: Any) -> list[Image.Image]:
                started.append(time.perf_counter())
                return generator.generate(part, on_step, should_stop)

            return work

        # Several devices: the candidates are split by seed, one part per device, run side by side.
        parts = split_request(request, len(await self.queue.ready_devices()))
        images = [im for part in await self.queue.run_all([work_on(p) for p in parts], progress) for im in part]
        done = time.perf_counter()
        began = min(started) if started else done
        record = {**plan.params.model_dump(exclude_none=True), "prompt": plan.prompt, "model": generator.name}

        def save_all() -> list[Candidate]:
            pairs = zip(images, plan.seeds, strict=True)
            return [Candidate(image_id=self.images.save(im, {**record, "seed": s}), seed=s) for im, s in pairs]

        # PNG encoding of a batch of large images takes seconds: not on the event loop.
        candidates = await anyio.to_thread.run_sync(save_all)
        rnd = Round(
            index=index, prompt=plan.prompt, mode=plan.mode, params=plan.params, candidates=candidates,
            layout=plan.layout or None, background=plan.background, edits=plan.edits or None,
            timings={"queue_s": round(began - queued, 3), "generate_s": round(done - began, 3)},
        )
        if self._judge() is not None and checklist:
            t0 = time.perf_counter()
            try:
                await self.judge(checklist, rnd, images)
                rnd.timings["judge_s"] = round(time.perf_counter() - t0, 3)
            except JudgeError as exc:
                log.warning("round %d kept unjudged: %s", index, exc)
                plan.notes.append(f"the server judge failed, so this round is not judged yet: {exc}; "
                                  "call critique to retry, or answer with verdicts")
        return rnd, images

    async def judge(
        self, checklist: list[Requirement], rnd: Round, images: list[Image.Image] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """The server judge's verdicts and detections on every candidate; agent answers it cannot give are kept."""
        judge = self._judge()
        assert judge is not None
        # A remote judge answers `covers` from its replica: asked in a worker thread, off the event loop.
        covered = await anyio.to_thread.run_sync(lambda: [r for r in checklist if judge.covers(r)])
        if not covered:
            return

        pictures = images
        if pictures is None:
            pictures = await anyio.to_thread.run_sync(lambda: [self.images.load(c.image_id) for c in rnd.candidates])

        def verify(on_step: Any, should_stop: Any) -> list[Any]:
            return judge.verify(pictures, covered)

        # The judge's model shares the device with the generator: its work waits in the same queue, for the
        # judge's own device when the queue spreads jobs over several.
        on = getattr(judge, "device", None)
        devices = await self.queue.ready_devices()
        judgements = await self.queue.run(verify, progress, device=on if on in devices else None)
        if len(judgements) != len(rnd.candidates):
            raise JudgeError(f"the judge {judge.name} answered for {len(judgements)} of {len(rnd.candidates)} images")
        covered_ids = {r.id for r in covered}
        for candidate, judgement in zip(rnd.candidates, judgements, strict=True):
            kept = [v for v in candidate.verdicts or [] if v.judge == "agent" and v.requirement_id not in covered_ids]
            candidate.verdicts = in_order(checklist, judgement.verdicts + kept)
            candidate.detections = judgement.detections


def in_order(checklist: list[Requirement], verdicts: list[Verdict]) -> list[Verdict]:
    """Verdicts sorted like the checklist, one per question."""
    by_id = {v.requirement_id: v for v in verdicts}
    return [by_id[r.id] for r in checklist if r.id in by_id]
