"""DeviceQueue: one job at a time on each device; callers wait in line and see their place.

With several devices (GEMS_DEVICES, or the replicas of a Ray deployment) a job takes whichever
device is free; ``run_all`` runs the parts of one batch side by side, each part a job of its own on
one device, their progress reported as one count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio import from_thread
from anyio.streams.memory import MemoryObjectSendStream

from gems_mcp.errors import GenerationCancelled, InvalidRequest

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = tuple[float, float | None, str]
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]
Work = Callable[[Callable[[int, int], None], Callable[[], bool]], T]
"""A job: called in a worker thread with (on_step, should_stop); `current_device()` names its device."""
Devices = Sequence[str] | Callable[[], Sequence[str]]

_assigned = threading.local()


def current_device() -> str | None:
    """The device the queue gave the job running in this thread (None outside a queued job)."""
    return getattr(_assigned, "device", None)


class DeviceQueue:
    """Runs jobs in worker threads, one per device at a time, forwarding progress and cancellation.

    A job waits for its device in async code and holds no worker thread while it waits: with dozens
    of calls in line, the shared thread pool stays free for every other tool (PNG saves, recall, loading).
    """

    def __init__(self, devices: Devices = ("default",)) -> None:
        # Devices may be given as a callable: the generator that knows them loads lazily, after the queue exists.
        self._devices_source = devices
        self._free: list[str] | None = None
        self._all: list[str] = []
        # A thread lock, not an anyio one: a cancelled job's thread keeps its device until its next step
        # notices the stop flag, and gives it back from that thread.
        self._state = threading.Lock()
        self._changed = anyio.Event()  # replaced each time a device is given back; waiters wake and look again
        self._waiting = 0

    @property
    def devices(self) -> list[str]:
        """The devices jobs are spread over, in order (the first use asks the generator: call it off the event loop)."""
        self._resolve()
        return list(self._all)

    async def ready_devices(self) -> list[str]:
        """The devices, asking the generator for them in a worker thread the first time."""
        if self._free is None:
            await anyio.to_thread.run_sync(self._resolve)
        return list(self._all)

    @property
    def waiting(self) -> int:
        """Jobs queued, running, or cancelled but still finishing their step on a device."""
        return self._waiting

    def _resolve(self) -> None:
        with self._state:
            if self._free is None:
                source = self._devices_source
                names = list(source() if callable(source) else source) or ["default"]
                self._all, self._free = names, list(names)

    async def _acquire(self, pinned: str | None) -> str:
        """Wait, in async code, until ``pinned`` (or any device) is free, and take it."""
        while True:
            with self._state:
                assert self._free is not None
                choice = pinned if pinned in self._free else (self._free[0] if self._free and pinned is None else None)
                if choice is not None:
                    self._free.remove(choice)
                    return choice
                changed = self._changed
            await changed.wait()

    def _release(self, device: str) -> None:
        """Give a device back; safe from a worker thread, even one abandoned by its cancelled caller."""
        with self._state:
            assert self._free is not None
            self._free.append(device)
            self._free.sort(key=self._all.index)  # the first device first: a lone job always lands on it
            self._waiting -= 1
            changed, self._changed = self._changed, anyio.Event()
        try:
            from_thread.run_sync(changed.set)
        except RuntimeError:  # the event loop has closed: nobody is left waiting
            log.debug("a device was given back after the event loop closed")

    async def run(self, work: Work[T], progress: ProgressFn | None = None, device: str | None = None) -> T:
        """Run ``work`` when a device (``device``, if named) is free; report queue place and steps through ``progress``."""
        devices = await self.ready_devices()
        if device is not None and device not in devices:
            raise InvalidRequest(f"the queue has no device {device!r}; it has {', '.join(devices)}")
        stop = threading.Event()
        send, receive = anyio.create_memory_object_stream[Progress](64)
        with self._state:
            ahead = max(0, self._waiting - len(devices) + 1)
            self._waiting += 1
        handed_over = False  # once the job's thread owns the device, that thread gives it back

        def on_step(step: int, total: int) -> None:
            _post(send, (float(step), float(total), f"step {step}/{total}"))

        def job(got: str) -> T:
            try:
                _post(send, (0.0, None, "started"))
                _assigned.device = got
                return work(on_step, stop.is_set)
            finally:
                _assigned.device = None
                self._release(got)  # a cancelled job counts as waiting until its thread lets go of the device

        async def forward() -> None:
            async with receive:
                async for value in receive:
                    if progress is not None:
                        await progress(*value)

        result: list[T] = []
        failed: list[Exception] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                try:
                    if ahead and progress is not None:
                        await progress(0.0, None, f"queued: {ahead} job{'s' if ahead > 1 else ''} ahead")
                    got = await self._acquire(device)
                    handed_over = True
                    result.append(await anyio.to_thread.run_sync(job, got, abandon_on_cancel=True))
                except Exception as exc:  # noqa: BLE001 - raised again below, outside the task group
                    # Kept out of the task group, which would wrap it in an ExceptionGroup and hide
                    # a GenerationError's sentence from the caller.
                    failed.append(exc)
                finally:
                    send.close()
            if failed:
                raise failed[0]
        except BaseException:
            # Cancelled (or failed): tell the worker to stop at its next step.
            stop.set()
            raise
        finally:
            if not handed_over:  # cancelled while waiting in line: no thread ever held a device
                with self._state:
                    self._waiting -= 1
        return result[0]

    async def run_all(self, works: Sequence[Work[T]], progress: ProgressFn | None = None) -> list[T]:
        """Run several jobs side by side (each on one device), results in order; the first failure stops the rest."""
        if len(works) == 1:
            return [await self.run(works[0], progress)]
        combined = _CombinedProgress(len(works), progress)
        results: list[T | None] = [None] * len(works)
        failed: list[Exception] = []

        async def one(index: int, scope: anyio.CancelScope) -> None:
            try:
                results[index] = await self.run(works[index], combined.part(index))
            except Exception as exc:  # noqa: BLE001 - raised again once the other parts stopped
                failed.append(exc)
                scope.cancel()  # the other parts stop at their next step

        async with anyio.create_task_group() as tg:
            for index in range(len(works)):
                tg.start_soon(one, index, tg.cancel_scope)
        if failed:
            # A part cancelled because another failed reports the cause, not its own cancellation.
            raise next((e for e in failed if not isinstance(e, GenerationCancelled)), failed[0])
        return results  # type: ignore[return-value]


class _CombinedProgress:
    """Steps of the parts of one batch summed into one count; queue notes passed on once each."""

    def __init__(self, parts: int, progress: ProgressFn | None) -> None:
        self._progress = progress
        self._steps = [0.0] * parts
        self._totals: list[float | None] = [None] * parts
        self._said: set[str] = set()
        self._lock = anyio.Lock()

    def part(self, index: int) -> ProgressFn | None:
        progress = self._progress
        if progress is None:
            return None

        async def report(step: float, total: float | None, message: str) -> None:
            async with self._lock:
                if total is None:
                    if message not in self._said:
                        self._said.add(message)
                        await progress(sum(self._steps), self._total(), message)
                    return
                self._steps[index], self._totals[index] = step, total
                done, whole = sum(self._steps), self._total()
                await progress(done, whole, f"step {int(done)}/{int(whole or 0)}")

        return report

    def _total(self) -> float | None:
        known = [t for t in self._totals if t is not None]
        if not known:
            return None
        # Parts not started yet are counted as long as the mean started one.
        return sum(known) + (len(self._totals) - len(known)) * sum(known) / len(known)


def _post(send: MemoryObjectSendStream[Progress], value: Progress) -> None:
    """Hand a progress value to the event loop without blocking the worker; drop it if the loop is gone."""
    try:
        from_thread.run_sync(_send_nowait, send, value)
    except RuntimeError:  # the event loop has closed: progress no longer matters
        log.debug("progress after the event loop closed: %s", value[2])


def _send_nowait(send: MemoryObjectSendStream[Progress], value: Progress) -> None:
    try:
        send.send_nowait(value)
    except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass
