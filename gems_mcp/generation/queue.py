"""DeviceQueue: one job at a time on each device; callers wait in line and see their place.

With several devices (GEMS_DEVICES, or the replicas of a Ray deployment) a job takes whichever
device is free; ``run_all`` runs the parts of one batch side by side, each part a job of its own on
one device, their progress reported as one count.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio import from_thread

from gems_mcp.generation.base import GenerationCancelled

T = TypeVar("T")
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]
Work = Callable[[Callable[[int, int], None], Callable[[], bool]], T]
"""A job: called in a worker thread with (on_step, should_stop); `current_device()` names its device."""
Devices = Sequence[str] | Callable[[], Sequence[str]]

_assigned = threading.local()


def current_device() -> str | None:
    """The device the queue gave the job running in this thread (None outside a queued job)."""
    return getattr(_assigned, "device", None)


class DeviceQueue:
    """Runs jobs in worker threads, one per device at a time, forwarding progress and cancellation."""

    def __init__(self, devices: Devices = ("default",)) -> None:
        # Devices may be given as a callable: the generator that knows them loads lazily, after the queue exists.
        self._devices_source = devices
        self._free: list[str] | None = None
        self._all: list[str] = []
        # Thread primitives, not anyio ones: a cancelled job's thread keeps its device until
        # its next step notices the stop flag, and the next job must wait for that.
        self._device_free = threading.Condition()
        self._count_lock = threading.Lock()
        self._waiting = 0

    @property
    def devices(self) -> list[str]:
        """The devices jobs are spread over, in order."""
        self._resolve()
        return list(self._all)

    @property
    def waiting(self) -> int:
        """Jobs queued, running, or cancelled but still finishing their step on a device."""
        return self._waiting

    def _resolve(self) -> None:
        with self._device_free:
            if self._free is None:
                source = self._devices_source
                names = list(source() if callable(source) else source) or ["default"]
                self._all, self._free = names, list(names)

    def _acquire(self, pinned: str | None) -> str:
        with self._device_free:
            assert self._free is not None
            while True:
                choice = pinned if pinned in self._free else (self._free[0] if self._free and pinned is None else None)
                if choice is not None:
                    self._free.remove(choice)
                    return choice
                self._device_free.wait()

    def _release(self, device: str) -> None:
        with self._device_free:
            assert self._free is not None
            self._free.append(device)
            self._free.sort(key=self._all.index)  # the first device first: a lone job always lands on it
            self._device_free.notify_all()

    async def run(self, work: Work[T], progress: ProgressFn | None = None, device: str | None = None) -> T:
        """Run ``work`` when a device (``device``, if named) is free; report queue place and steps through ``progress``."""
        self._resolve()
        if device is not None and device not in self._all:
            raise ValueError(f"the queue has no device {device!r}; it has {', '.join(self._all)}")
        stop = threading.Event()
        send, receive = anyio.create_memory_object_stream[tuple[float, float | None, str]](64)
        with self._count_lock:
            ahead = max(0, self._waiting - len(self._all) + 1)
            self._waiting += 1
        entered = threading.Event()
        left = threading.Event()

        def leave() -> None:
            with self._count_lock:
                if not left.is_set():
                    left.set()
                    self._waiting -= 1

        def on_step(step: int, total: int) -> None:
            _post(send, (float(step), float(total), f"step {step}/{total}"))

        def job() -> T:
            entered.set()
            try:
                got = self._acquire(device)
                try:
                    if stop.is_set():  # cancelled while waiting for a device
                        raise GenerationCancelled("cancelled before it started")
                    _post(send, (0.0, None, "started"))
                    _assigned.device = got
                    return work(on_step, stop.is_set)
                finally:
                    _assigned.device = None
                    self._release(got)
            finally:
                leave()  # a cancelled job counts until its thread lets go of the device

        result: list[T] = []
        failed: list[Exception] = []

        async def forward() -> None:
            async with receive:
                async for value in receive:
                    if progress is not None:
                        await progress(*value)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                if ahead and progress is not None:
                    await progress(0.0, None, f"queued: {ahead} job{'s' if ahead > 1 else ''} ahead")
                try:
                    result.append(await anyio.to_thread.run_sync(job, abandon_on_cancel=True))
                except Exception as exc:
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
            if not entered.is_set():  # cancelled before a worker thread picked the job up
                leave()
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
            except Exception as exc:
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
        if self._progress is None:
            return None

        async def report(step: float, total: float | None, message: str) -> None:
            async with self._lock:
                if total is None:
                    if message not in self._said:
                        self._said.add(message)
                        await self._progress(sum(self._steps), self._total(), message)
                    return
                self._steps[index], self._totals[index] = step, total
                done, whole = sum(self._steps), self._total()
                await self._progress(done, whole, f"step {int(done)}/{int(whole or 0)}")

        return report

    def _total(self) -> float | None:
        known = [t for t in self._totals if t is not None]
        if not known:
            return None
        # Parts not started yet are counted as long as the mean started one.
        return sum(known) + (len(self._totals) - len(known)) * sum(known) / len(known)


def _post(send: anyio.abc.ObjectSendStream, value: tuple[float, float | None, str]) -> None:
    """Hand a progress value to the event loop without blocking the worker; drop it if the loop is gone."""
    try:
        from_thread.run_sync(_send_nowait, send, value)
    except Exception:  # the request ended or the loop is closing: progress no longer matters
        pass


def _send_nowait(send: anyio.abc.ObjectSendStream, value: object) -> None:
    try:
        send.send_nowait(value)
    except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass
