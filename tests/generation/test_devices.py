"""Several devices: the queue hands each job one device, and a round's candidates are shared among them."""

from __future__ import annotations

import threading
import time

import anyio
import anyio.to_thread
import numpy as np
import pytest

from gems_mcp.backends import load_generator
from gems_mcp.config import load_settings
from gems_mcp.errors import GenerationCancelled, GenerationError, InvalidRequest
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.devices import DevicePool, split_request
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.generation.queue import DeviceQueue, current_device
from gems_mcp.loop import AgentLoop
from gems_mcp.types import GenerationParams, ImageParams

PARAMS = GenerationParams(width=64, height=64, steps=2, guidance=2.0)


def test_a_batch_splits_by_seed_into_even_parts():
    request = GenerationRequest(prompt="x", seeds=[1, 2, 3, 4, 5], params=PARAMS)
    assert [r.seeds for r in split_request(request, 2)] == [[1, 2, 3], [4, 5]]
    assert [r.seeds for r in split_request(request, 8)] == [[1], [2], [3], [4], [5]]
    assert split_request(request, 1) == [request]


@pytest.mark.anyio
async def test_jobs_take_free_devices_and_wait_in_line_when_all_are_busy():
    queue = DeviceQueue(["cuda:0", "cuda:1"])
    release = threading.Event()
    seen: list[str | None] = []
    notes: list[str] = []

    def hold(on_step, should_stop):
        seen.append(current_device())
        release.wait(10)
        return current_device()

    async def note(step, total, message):
        notes.append(message)

    results = []
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(lambda: _collect(results, queue.run(hold, note)))
            await anyio.sleep(0.2)
        assert sorted(seen) == ["cuda:0", "cuda:1"]  # two ran at once, the third waits
        release.set()
    assert len(results) == 3 and set(results) == {"cuda:0", "cuda:1"}  # the third ran once a device was free
    assert notes.count("queued: 1 job ahead") == 1
    assert current_device() is None  # only a job's own thread has a device


async def _collect(results, coroutine):
    results.append(await coroutine)


@pytest.mark.anyio
async def test_a_job_can_be_pinned_to_one_device():
    queue = DeviceQueue(["cuda:0", "cuda:1"])
    got = await queue.run(lambda on_step, stop: current_device(), device="cuda:1")
    assert got == "cuda:1"
    with pytest.raises(InvalidRequest, match="has no device 'cuda:7'"):
        await queue.run(lambda on_step, stop: None, device="cuda:7")


@pytest.mark.anyio
async def test_when_one_part_of_a_batch_fails_the_others_stop_and_the_caller_gets_its_sentence():
    queue = DeviceQueue(["cuda:0", "cuda:1"])
    stopped = threading.Event()

    def fails(on_step, should_stop):
        time.sleep(0.2)
        raise GenerationError("cuda:1 ran out of memory drawing 2 images of 64x64")

    def waits(on_step, should_stop):
        for _ in range(200):
            if should_stop():
                stopped.set()
                raise GenerationCancelled("generation was cancelled")
            time.sleep(0.02)
        return ["never"]

    with pytest.raises(GenerationError, match="^cuda:1 ran out of memory"):
        await queue.run_all([waits, fails])
    assert await anyio.to_thread.run_sync(stopped.wait, 5)  # waited off the event loop, which stays free
    deadline = time.monotonic() + 5
    while queue.waiting and time.monotonic() < deadline:  # the stopped thread lets go of its device
        await anyio.sleep(0.02)
    assert queue.waiting == 0


def test_gems_devices_needs_a_diffusers_model_and_names_real_devices():
    with pytest.raises(InvalidRequest, match="set GEMS_MODEL too"):
        load_generator(load_settings(devices="cpu:0,cpu:1"))
    with pytest.raises(ValueError, match="'gpu1' is not a device"):
        load_settings(devices="cuda:0,gpu1")


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_devices_share_a_batch_of_candidates_side_by_side(tiny_model):
    settings = load_settings(model=str(tiny_model), devices="cpu:0,cpu:1", offload="none")
    assert isinstance(load_generator(settings), DevicePool)  # GEMS_DEVICES makes a pool
    both_running = threading.Barrier(2, timeout=60)  # the parts must overlap: sequential parts would time out
    calls: list[tuple[str, list[int]]] = []

    def member(device: str) -> DiffusersGenerator:
        generator = DiffusersGenerator(str(tiny_model), device=device, offload="none")
        generator.generate = _recording(generator.generate, device, calls, both_running)  # type: ignore[method-assign]
        return generator

    pool = DevicePool(["cpu:0", "cpu:1"], member)
    loop = AgentLoop(settings, generator=pool)
    assert pool.devices == ["cpu:0", "cpu:1"]
    steps: list[tuple[float, float | None, str]] = []

    async def progress(step, total, message):
        steps.append((step, total, message))

    result = await loop.generate("a red circle", n=4, seed=10, params=ImageParams(steps=2), progress=progress)
    assert sorted(calls) == [("cpu:0", [10, 11]), ("cpu:1", [12, 13])]
    assert [c.seed for c in result.round.candidates] == [10, 11, 12, 13]
    assert steps[-1][2] == "step 4/4"  # the two parts' steps counted as one run
    # Each candidate is the image one device draws for its seed.
    alone = DiffusersGenerator(str(tiny_model), device="cpu", offload="none")
    expected = alone.generate(GenerationRequest(prompt="a red circle", seeds=[10, 11, 12, 13], params=result.round.params))
    for candidate, image in zip(result.round.candidates, expected, strict=True):
        assert np.array_equal(np.asarray(loop.images.load(candidate.image_id)), np.asarray(image))


def _recording(generate, device, calls, barrier):
    def run(request, on_step=None, should_stop=None):
        calls.append((device, list(request.seeds)))
        barrier.wait()
        time.sleep(0.05)
        return generate(request, on_step, should_stop)

    return run
