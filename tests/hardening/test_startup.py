"""Case 3: start-up survives bad state; a broken disk gives a reason, never a traceback or leftovers."""

from __future__ import annotations

import errno
import logging
import os
import time

import pytest

from gems_mcp import images as images_module
from gems_mcp.config import load_settings
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server
from tests.fakes import FakeGenerator
from tests.hardening._client import session, text


def _server(home):
    settings = load_settings(home=home)
    loop = AgentLoop(settings, generator=FakeGenerator(), judge=None)  # store and images made from settings
    return create_server(settings, loop), loop


@pytest.mark.anyio
async def test_a_corrupt_database_is_quarantined_and_the_server_starts_empty_and_says_so(tmp_path, caplog):
    (tmp_path / "memory.json").write_bytes(b'{"trajectories": {"1": {"id": "t-1"')
    with caplog.at_level(logging.WARNING):
        server, _ = _server(tmp_path)
    [backup] = tmp_path.glob("memory.json.corrupt-*")
    assert backup.read_bytes() == b'{"trajectories": {"1": {"id": "t-1"'
    assert any("corrupt" in r.getMessage() for r in caplog.records)

    async def go(client):
        return [await client.call_tool("recall_memory", {}) for _ in range(2)]

    first, second = await session(go, server)
    assert "corrupt" in text(first) and str(backup.name) in text(first)
    assert "corrupt" not in text(second)
    assert not (await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)).is_error


@pytest.mark.anyio
@pytest.mark.parametrize("folder", ["memory.json", "memory.json.lock"])
async def test_a_database_or_lock_that_is_a_folder_serves_read_tools_and_refuses_writes_with_the_reason(tmp_path, folder):
    (tmp_path / folder).mkdir()
    server, _ = _server(tmp_path)

    async def go(client):
        return (await client.call_tool("recall_memory", {}),
                await client.call_tool("skill_shapes-world", {"prompt": "two circles"}),
                await client.call_tool("generate", {"prompt": "x"}))

    recall, skill, generate = await session(go, server)
    assert not recall.is_error and not skill.is_error
    assert generate.is_error
    assert str(tmp_path) in text(generate) and "Is a directory" in text(generate)


@pytest.mark.anyio
async def test_a_home_that_is_a_file_serves_read_tools_and_refuses_writes_with_the_reason(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    server, _ = _server(home)
    recall = await session(lambda c: c.call_tool("recall_memory", {}), server)
    generate = await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)
    assert not recall.is_error
    assert generate.is_error and str(home) in text(generate) and "not a folder" in text(generate)


@pytest.mark.anyio
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
async def test_a_read_only_home_serves_read_tools_and_refuses_writes_with_the_reason(tmp_path):
    _server(tmp_path)  # a database exists
    tmp_path.chmod(0o555)
    try:
        server, _ = _server(tmp_path)
        recall = await session(lambda c: c.call_tool("recall_memory", {}), server)
        generate = await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)
    finally:
        tmp_path.chmod(0o755)
    assert not recall.is_error
    assert generate.is_error and "Permission denied" in text(generate)


@pytest.mark.anyio
async def test_an_images_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "images").write_text("not a folder")
    server, loop = _server(tmp_path)
    result = await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)
    assert result.is_error
    assert str(tmp_path / "images") in text(result) and "not a folder" in text(result)
    assert loop.store.list_trajectories() == []


@pytest.mark.anyio
async def test_a_full_disk_is_a_clear_error_and_leaves_no_temp_files(tmp_path, monkeypatch):
    server, loop = _server(tmp_path)

    def full(fd, data):
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(images_module, "_write_all", full)
    result = await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)
    assert result.is_error
    assert "No space left on device" in text(result) and str(tmp_path / "images") in text(result)
    assert list((tmp_path / "images").glob("*.tmp")) == []
    assert loop.store.list_trajectories() == []


@pytest.mark.anyio
async def test_a_read_only_images_folder_is_a_clear_error(tmp_path, monkeypatch):
    server, loop = _server(tmp_path)

    def refused(*args, **kwargs):  # what a read-only folder does to a non-root writer
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "images"))

    monkeypatch.setattr(images_module.tempfile, "mkstemp", refused)
    result = await session(lambda c: c.call_tool("generate", {"prompt": "x"}), server)
    assert result.is_error
    assert "Permission denied" in text(result) and str(tmp_path / "images") in text(result)
    assert loop.store.list_trajectories() == []


def test_leftover_temp_files_of_interrupted_writes_are_swept_at_start(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    old = images / "abc123.tmp"
    old.write_bytes(b"half a png")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    fresh = images / "def456.tmp"  # another server may be writing it right now
    fresh.write_bytes(b"being written")
    _server(tmp_path)
    assert not old.exists() and fresh.exists()


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.parametrize("lock_is_a_folder", [False, True])
async def test_a_stdio_server_over_a_corrupt_database_stays_up_and_says_so(tmp_path, lock_is_a_folder):
    """The original failure: the process exited at start and the client saw 'Connection closed'."""
    import sys

    from mcp import Client, StdioServerParameters

    home = tmp_path / "home"
    home.mkdir()
    (home / "memory.json").write_bytes(b"\x00 not json")
    if lock_is_a_folder:  # then it cannot even be moved aside: read-only, empty
        (home / "memory.json.lock").mkdir()
    env = {**os.environ, "GEMS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)

    async with Client(params) as client:
        recall, skill = (await client.call_tool("recall_memory", {}),
                         await client.call_tool("skill_shapes-world", {"prompt": "two circles"}))
    assert not recall.is_error and not skill.is_error
    assert ("corrupt" in text(recall)) is not lock_is_a_folder
    assert ("read-only" in text(recall)) is lock_is_a_folder
