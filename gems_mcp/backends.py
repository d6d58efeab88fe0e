"""The composition root for models: which Generator and Judge the settings name, loaded lazily.

The one place that knows both the generic diffusers backend and the shapes world; nothing in
generation/ or critique/ imports a concrete world.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Literal

import anyio.to_thread

from gems_mcp.errors import GemsError, InvalidRequest

if TYPE_CHECKING:
    from gems_mcp.config import Settings
    from gems_mcp.critique.base import Judge
    from gems_mcp.generation.base import Capabilities, Generator


def load_generator(settings: Settings) -> Generator:
    """The backend the settings name: GEMS_MODEL's pipeline (on each of GEMS_DEVICES, or on Ray Serve),
    or the embedded model when unset."""
    if settings.backend == "ray":
        from gems_mcp.generation.ray_backend import RayGenerator

        replica = _replica(settings)
        name = settings.model or "embedded"
        gpu = 0.5 if settings.judge_models else 1.0  # a model judge takes the other half of each GPU
        return RayGenerator(partial(load_generator, replica), name, settings.ray_address, settings.ray_replicas, gpu=gpu)
    devices = settings.device_list
    if len(devices) > 1:
        if not settings.model:
            raise InvalidRequest("GEMS_DEVICES spreads a diffusers pipeline over devices; set GEMS_MODEL too")
        from gems_mcp.generation.devices import DevicePool

        return DevicePool(devices, lambda device: _diffusers(settings, device))
    device = _primary_device(settings)
    if settings.model:
        return _diffusers(settings, device)
    from gems_mcp.generation.loading import pick_device
    from gems_mcp.shapes.generator import EmbeddedGenerator

    return EmbeddedGenerator(device=pick_device(device))


def _replica(settings: Settings) -> Settings:
    """The settings a Ray replica loads its model with: in its own process, on its own device."""
    return settings.model_copy(update={"backend": "local", "devices": ""})


def _primary_device(settings: Settings) -> str:
    """The first of GEMS_DEVICES, else GEMS_DEVICE."""
    return settings.device_list[0] if settings.device_list else settings.device


def _diffusers(settings: Settings, device: str) -> Generator:
    from gems_mcp.generation.diffusers_backend import DiffusersGenerator

    assert settings.model
    return DiffusersGenerator(
        settings.model, device=device, dtype=settings.dtype, offload=settings.offload, compile=settings.compile
    )


def load_judge(settings: Settings, generator: Generator | None = None) -> Judge | None:
    """The judge GEMS_JUDGE names: a model judge (vlm, detect, both; loaded on first use), the generator's own
    exact judge (auto, exact), or none."""
    models = settings.judge_models
    if not models:
        if settings.judge == "none" or generator is None:
            return None
        judge = generator.judge()
        if settings.judge == "exact" and judge is None:
            raise InvalidRequest("GEMS_JUDGE=exact, but this model has no exact judge; use auto, none, vlm:<model> or detect:<model>")
        return judge
    if settings.backend == "ray":
        # The model judge runs beside the generator on the cluster, as a deployment of its own.
        from gems_mcp.generation.ray_backend import deploy_judge

        return deploy_judge(partial(load_judge, _replica(settings)), settings.judge, settings.ray_address, settings.ray_replicas)
    from gems_mcp.critique.combined import CombinedJudge
    from gems_mcp.critique.detect import DetectorJudge
    from gems_mcp.critique.loading import JudgeOptions
    from gems_mcp.critique.vlm import VLMJudge
    from gems_mcp.generation.loading import pick_device, pick_dtype

    device = pick_device(_primary_device(settings))
    options = JudgeOptions(
        device=device, dtype=pick_dtype(device, settings.dtype), offload=settings.judge_offload,
        threshold=settings.judge_threshold, batch=settings.judge_batch,
    )
    vlm = VLMJudge(models["vlm"], options) if "vlm" in models else None
    # Alone, the detector reads colors from the pixels in its boxes; beside a VLM, the VLM answers colors.
    detector = DetectorJudge(models["detect"], options, colors=vlm is None) if "detect" in models else None
    if vlm is not None and detector is not None:
        return CombinedJudge(detector, vlm)
    return vlm or detector


class Models:
    """The generator and the server judge, created on first use so tools/list never waits for torch."""

    def __init__(self, settings: Settings, generator: Generator | None = None,
                 judge: Judge | None | Literal["auto"] = "auto") -> None:
        self.settings = settings
        self._generator = generator
        self._judge = judge
        self._lock = threading.Lock()
        self._judge_lock = threading.Lock()  # one judge object: two would load the judge's model twice

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
            # A model judge needs no generator: the server may judge before the pipeline is loaded.
            needs_generator = not self.settings.judge_models and self.settings.judge != "none"
            generator = self.generator if needs_generator else None
            with self._judge_lock:
                if self._judge == "auto":
                    self._judge = load_judge(self.settings, generator)
        return self._judge

    @property
    def derives_checklist(self) -> bool:
        """A model judge is configured, so a prompt without requirements gets questions read from the prompt."""
        return bool(self.settings.judge_models) and self._judge is not None

    @property
    def capabilities(self) -> Capabilities:
        return self.generator.capabilities()

    def described(self) -> tuple[str, Capabilities | None]:
        """The model's name and, where known without loading weights, its capabilities: what the agent reads
        before its first call. A diffusers pipeline's are known only once it has loaded."""
        if self._generator is None and (self.settings.model or self.settings.backend == "ray"):
            return self.settings.model or "embedded", None
        generator = self.generator
        known = getattr(generator, "known_capabilities", None)  # optional: a backend that can tell without loading
        try:
            return generator.name, known() if known is not None else None
        except GemsError:  # the first generate says what is wrong; the description stays general
            return generator.name, None

    async def ready(self) -> Capabilities:
        """Load the model and resolve the judge in a worker thread; a real model takes minutes to load,
        and on the event loop that would stop the server answering anything else."""

        def load() -> Capabilities:
            _ = self.judge
            return self.capabilities

        # A cancelled call returns at once; the load goes on and the next call finds the model ready.
        return await anyio.to_thread.run_sync(load, abandon_on_cancel=True)
