"""The composition root for models: which Generator and Judge the settings name, loaded lazily.

The one place that knows both the generic diffusers backend and the shapes world; nothing in
generation/ or critique/ imports a concrete world.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

import anyio.to_thread

from gems_mcp.errors import InvalidRequest

if TYPE_CHECKING:
    from gems_mcp.config import Settings
    from gems_mcp.critique.base import Judge
    from gems_mcp.generation.base import Capabilities, Generator


def load_generator(settings: Settings) -> Generator:
    """The backend the settings name: GEMS_MODEL's pipeline, or the embedded model when unset."""
    from gems_mcp.generation.diffusers_backend import DiffusersGenerator, pick_device

    if settings.model:
        return DiffusersGenerator(settings.model, device=settings.device, dtype=settings.dtype)
    from gems_mcp.shapes.generator import EmbeddedGenerator

    return EmbeddedGenerator(device=pick_device(settings.device))


class Models:
    """The generator and the server judge, created on first use so tools/list never waits for torch."""

    def __init__(self, settings: Settings, generator: Generator | None = None,
                 judge: Judge | None | Literal["auto"] = "auto") -> None:
        self.settings = settings
        self._generator = generator
        self._judge = judge
        self._lock = threading.Lock()

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            # A preload thread and a first call may race here; a second generator would load a second model.
            with self._lock:
                if self._generator is None:
                    self._generator = load_generator(self.settings)
        return self._generator

    @property
    def judge(self) -> Judge | None:
        if self._judge == "auto":
            judge = None if self.settings.judge == "none" else self.generator.judge()
            if self.settings.judge == "exact" and judge is None:
                raise InvalidRequest("GEMS_JUDGE=exact, but this model has no exact judge; use auto or none")
            self._judge = judge
        return self._judge

    @property
    def capabilities(self) -> Capabilities:
        return self.generator.capabilities()

    async def ready(self) -> Capabilities:
        """Load the model and resolve the judge in a worker thread; a real model takes minutes to load,
        and on the event loop that would stop the server answering anything else."""

        def load() -> Capabilities:
            _ = self.judge
            return self.capabilities

        # A cancelled call returns at once; the load goes on and the next call finds the model ready.
        return await anyio.to_thread.run_sync(load, abandon_on_cancel=True)
