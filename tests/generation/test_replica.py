"""The body of a Ray Serve replica, without a cluster: device work waits its turn, nothing else waits for it."""

from __future__ import annotations

import threading

import anyio
import pytest

from gems_mcp.errors import Unsupported
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.ray_backend import Replica
from gems_mcp.types import GenerationParams
from tests.fakes import FakeGenerator

pytestmark = pytest.mark.anyio


class _HeldGenerator(FakeGenerator):
    """Generates until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.running = threading.Event()
        self.release = threading.Event()

    def generate(self, request, on_step=None, should_stop=None):
        self.running.set()
        self.release.wait(30)
        return super().generate(request, on_step, should_stop)


async def test_a_prompt_check_answers_while_the_replica_generates():
    model = _HeldGenerator()
    replica = Replica(lambda: model)
    request = GenerationRequest(prompt="x", seeds=[1], params=GenerationParams(width=64, height=64, steps=2))
    events = []

    async def generate() -> None:
        async for event in replica.generate(request):
            events.append(event[0])

    async with anyio.create_task_group() as tg:
        tg.start_soon(generate)
        assert await anyio.to_thread.run_sync(model.running.wait, 30)
        with anyio.fail_after(5):  # the busy flag guards generation only: no wait behind it
            assert await replica.call("validate_prompt", "a red circle") == ("value", None)
            assert await replica.call("validate_prompt", "forbidden") == (
                "error", Unsupported.__name__, "the fake model cannot draw 'forbidden'")
        assert events == []  # still generating
        model.release.set()
    assert events[-1] == "images"
