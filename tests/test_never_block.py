"""A busy device or a held store lock stalls only the calls that need them: over stdio, everything else answers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

HOLD_LOCK = """
import select
import sys
from gems_mcp.memory.store import MemoryStore

store = MemoryStore(__import__("pathlib").Path(sys.argv[1]))
with store.holding_write_locks(sys.argv[2]):  # every lock a write of this trajectory takes
    print("held", flush=True)
    select.select([sys.stdin], [], [], 2.0)  # until the test lets go, 2 s at most
"""


def _server(home: Path) -> StdioServerParameters:
    env = {**os.environ, "GEMS_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)


def _trajectory_uri(result: Any) -> str:
    assert not result.is_error, result.content[0].text
    return next(str(b.uri) for b in result.content if str(getattr(b, "uri", "")).startswith("gems://trajectories/"))


async def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    answer = await call
    return time.perf_counter() - start, answer


async def test_with_45_generate_calls_queued_recall_and_reading_a_trajectory_answer_at_once(tmp_path):
    async with Client(_server(tmp_path / "home")) as client:
        uri = _trajectory_uri(await client.call_tool("generate", {"prompt": "a red circle", "seed": 1}))
        trajectory_id = uri.rsplit("/", 1)[1]
        in_line = anyio.Event()
        queued: set[int] = set()

        def noting(index: int) -> Any:
            async def progress(step: float, total: float | None, message: str | None) -> None:
                if message and message.startswith("queued: "):
                    queued.add(index)
                    if len(queued) >= 44:  # every call but the one on the device waits in line
                        in_line.set()

            return progress

        async with anyio.create_task_group() as tg:
            for i in range(45):
                tg.start_soon(lambda i=i: client.call_tool(
                    "generate", {"prompt": "a blue square", "seed": i}, progress_callback=noting(i)))
            with anyio.fail_after(120):
                await in_line.wait()
            recall_s, recall = await _timed(client.call_tool("recall_memory", {"trajectory_id": trajectory_id}))
            read_s, read = await _timed(client.read_resource(uri))
            print(f"45 generate calls queued: recall_memory {recall_s:.3f} s, reading {uri} {read_s:.3f} s")
            tg.cancel_scope.cancel()
    assert not recall.is_error and trajectory_id in read.contents[0].text
    assert recall_s < 1.5 and read_s < 1.5


async def test_another_process_holding_the_store_lock_stalls_only_the_write_that_needs_it(tmp_path):
    home = tmp_path / "home"
    async with Client(_server(home)) as client:
        uri = _trajectory_uri(await client.call_tool("generate", {"prompt": "a red circle", "seed": 1}))
        trajectory_id = uri.rsplit("/", 1)[1]
        # Once before the lock is taken: the first recall imports what it formats with (~0.2 s here, lock or not).
        await client.call_tool("recall_memory", {"trajectory_id": trajectory_id})
        async with await anyio.open_process([sys.executable, "-c", HOLD_LOCK, str(home), trajectory_id]) as holder:
            assert holder.stdout is not None and holder.stdin is not None
            assert (await holder.stdout.receive()).strip() == b"held"
            async with anyio.create_task_group() as tg:
                closed: list[Any] = []

                async def close() -> None:
                    closed.append(await client.call_tool("close_trajectory", {"trajectory_id": trajectory_id}))

                tg.start_soon(close)  # waits for the lock, in a worker thread
                # The protocol this SDK negotiates (2026-07-28) has no ping: tools/list is the lightest request.
                ping_s, _ = await _timed(client.list_tools())
                recall_s, recall = await _timed(client.call_tool("recall_memory", {"trajectory_id": trajectory_id}))
                read_s, read = await _timed(client.read_resource(uri))
                print(f"store locked by another process: ping {ping_s * 1000:.0f} ms, "
                      f"recall_memory {recall_s * 1000:.0f} ms, read {read_s * 1000:.0f} ms")
                assert not closed  # the write still waits for the other process
                await holder.stdin.send(b"\n")  # the other process lets go
    assert not recall.is_error and trajectory_id in read.contents[0].text
    assert ping_s < 0.1 and recall_s < 0.1 and read_s < 0.1
    assert not closed[0].is_error and trajectory_id in closed[0].content[0].text
