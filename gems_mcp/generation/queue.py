"""DeviceQueue: one generation at a time on the device; callers wait in line and see their place."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio import from_thread

from gems_mcp.generation.base import GenerationCancelled

T = TypeVar("T")
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]
Work = Callable[[Callable[[int, int], None], Callable[[], bool]], T]
"""A job: called in a worker thread with (on_step, should_stop)."""


class DeviceQueue:
    """Runs jobs one at a time in a worker thread, forwarding progress and cancellation."""

    def __init__(self) -> None:
        # A thread lock, not an anyio one: a cancelled job's thread keeps the device until
        # its next step notices the stop flag, and the next job must wait for that.
        self._device = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Jobs queued, running, or cancelled but still finishing their step on the device."""
        return self._waiting

    async def run(self, work: Work[T], progress: ProgressFn | None = None) -> T:
        """Run ``work`` when the device is free; report queue place and steps through ``progress``."""
        stop = threading.Event()
        send, receive = anyio.create_memory_object_stream[tuple[float, float | None, str]](64)
        with self._count_lock:
            ahead = self._waiting
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
                with self._device:
                    if stop.is_set():  # cancelled while waiting for the device
                        raise GenerationCancelled("cancelled before it started")
                    _post(send, (0.0, None, "started"))
                    return work(on_step, stop.is_set)
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
