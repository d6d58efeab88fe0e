"""Several devices on one machine: one pipeline per device, and a batch split into one part per device.

The device queue hands each job one device (`queue.current_device`); `DevicePool` runs the job on
that device's pipeline. A round's candidates are split by seed (`split_request`), so each part is
its own job and the parts run side by side; every candidate keeps its seed, so its pixels are the
ones a single device would have drawn for that seed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from PIL import Image

from gems_mcp.errors import InvalidRequest
from gems_mcp.generation.base import Capabilities, GenerationRequest, Generator, StepCallback
from gems_mcp.generation.queue import current_device


def split_request(request: GenerationRequest, parts: int) -> list[GenerationRequest]:
    """The request cut into at most ``parts`` requests of consecutive seeds, as even as can be."""
    seeds = request.seeds
    parts = max(1, min(parts, len(seeds)))
    if parts == 1:
        return [request]
    size, extra = divmod(len(seeds), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(replace(request, seeds=seeds[start:end]))
        start = end
    return out


def devices_of(generator: Generator) -> list[str]:
    """The devices a generator can run jobs on side by side (one for most backends)."""
    return list(getattr(generator, "devices", None) or ["default"])


class DevicePool:
    """One generator per device behind the Generator protocol; each call runs on one of them."""

    def __init__(self, devices: Sequence[str], make: Callable[[str], Generator]) -> None:
        if not devices:
            raise InvalidRequest("a device pool needs at least one device")
        self.devices = list(devices)
        self._members = {device: make(device) for device in self.devices}
        self._locks = {device: threading.Lock() for device in self.devices}
        first = self._members[self.devices[0]]
        self.name = first.name
        self._free = threading.Condition()
        self._loaded = False

    def load_all(self) -> None:
        """Load every device's pipeline (at preload, so no first call pays for it)."""
        for member in self._members.values():
            loader = getattr(member, "load", None)
            if loader is not None:
                loader()

    @property
    def report(self) -> str:
        return "; ".join(f"{d}: {getattr(m, 'report', m.name)}" for d, m in self._members.items())

    def capabilities(self) -> Capabilities:
        """The first device's (all run the same model); every device's pipeline is loaded by then."""
        with self._free:
            if not self._loaded:
                self.load_all()
                self._loaded = True
        return self._members[self.devices[0]].capabilities()

    def validate_prompt(self, prompt: str) -> None:
        self._members[self.devices[0]].validate_prompt(prompt)

    def checklist(self, prompt: str) -> Any:
        return self._members[self.devices[0]].checklist(prompt)

    def judge(self) -> Any:
        return self._members[self.devices[0]].judge()

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        """On the device the queue assigned; called outside the queue, on the first free one."""
        device = self._take(current_device())
        try:
            return self._members[device].generate(request, on_step, should_stop)
        finally:
            with self._free:
                self._locks[device].release()
                self._free.notify_all()

    def _take(self, wanted: str | None) -> str:
        with self._free:
            while True:
                for device in [wanted] if wanted in self._locks else self.devices:
                    if self._locks[device].acquire(blocking=False):
                        return device
                self._free.wait()
