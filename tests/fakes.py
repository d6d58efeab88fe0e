"""Fakes that real code paths accept: a generator that draws real images and a scripted judge."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from gems_mcp.critique.base import Judgement
from gems_mcp.errors import GenerationCancelled, Unsupported
from gems_mcp.generation.base import Capabilities, GenerationRequest, StepCallback
from gems_mcp.types import Requirement, Verdict


class FakeGenerator:
    """Deterministic images from (prompt, seed); reports every step; honours stop between steps."""

    name = "fake"

    def __init__(self, step_delay: float = 0.0, edit: bool = True, negative: bool = True) -> None:
        self.step_delay = step_delay
        self.calls: list[GenerationRequest] = []
        self._edit = edit
        self._negative = negative
        self.active = 0
        self.max_active = 0
        self.steps_run = 0
        self.stopped = 0
        self.stop_seen = threading.Event()
        """Set when a generation noticed a stop request and ended."""
        self._lock = threading.Lock()

    def capabilities(self) -> Capabilities:
        features = {"guidance", "layout"} | ({"edit", "inpaint"} if self._edit else set())
        features |= {"negative_prompt"} if self._negative else set()
        return Capabilities(
            width=64, height=64, steps=4, guidance=2.0, max_side=512, max_steps=50,
            features=frozenset(features), name="the fake model",
        )

    def known_capabilities(self) -> Capabilities:
        return self.capabilities()

    def validate_prompt(self, prompt: str) -> None:
        if "forbidden" in prompt:
            raise Unsupported("the fake model cannot draw 'forbidden'")

    def checklist(self, prompt: str) -> None:
        return None

    def judge(self) -> None:
        return None

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(request)
            steps = request.params.steps
            for step in range(1, steps + 1):
                time.sleep(self.step_delay)
                self.steps_run += 1
                if on_step:
                    on_step(step, steps)
                if should_stop and should_stop():
                    self.stopped += 1
                    self.stop_seen.set()
                    raise GenerationCancelled("stopped")
            return [self._draw(request, seed) for seed in request.seeds]
        finally:
            with self._lock:
                self.active -= 1

    def _draw(self, request: GenerationRequest, seed: int) -> Image.Image:
        p = request.params
        regions = "|".join(f"{r.prompt}{r.box}" for r in request.layout + request.edits)
        digest = hashlib.sha256(f"{request.prompt}|{seed}|{p.strength}|{regions}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        pixels = rng.integers(0, 256, size=(p.height, p.width, 3), dtype=np.uint8)
        if request.edits and request.init_image is not None:
            # like a real inpaint: only the boxes change
            kept = np.array(request.init_image.convert("RGB").resize((p.width, p.height)))
            inside = np.zeros((p.height, p.width), dtype=bool)
            for r in request.edits:
                x0, y0, x1, y1 = r.box
                inside[int(y0 * p.height) : int(np.ceil(y1 * p.height)), int(x0 * p.width) : int(np.ceil(x1 * p.width))] = True
            pixels = np.where(inside[..., None], pixels, kept)
        return Image.fromarray(pixels)


class ScriptedJudge:
    """Answers from a queue of pass patterns, one pattern per image judged (like a canned-response model)."""

    name = "scripted"

    def __init__(self, patterns: list[list[bool]]) -> None:
        self.patterns = list(patterns)
        self.seen = 0

    def covers(self, requirement: Requirement) -> bool:
        return True

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        return [self._one(checklist) for _ in images]

    def _one(self, checklist: list[Requirement]) -> Judgement:
        pattern = self.patterns[min(self.seen, len(self.patterns) - 1)]
        self.seen += 1
        verdicts = [Verdict(requirement_id=r.id, passed=p, judge=self.name) for r, p in zip(checklist, pattern, strict=True)]
        return Judgement(verdicts)
