"""Watching the skill folders for changes while the server runs (file events through watchfiles)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
from watchfiles import awatch

from gems_mcp.skills.library import SkillLibrary

log = logging.getLogger(__name__)

# Edits come in bursts (an editor writes a temp file, renames it, touches the folder): one reload per burst.
DEBOUNCE_MS = 50


async def watch(library: SkillLibrary, on_change: Callable[[], Awaitable[None]], interval: float = 1.0,
                stop: anyio.Event | None = None) -> None:
    """Reload the library when a file under its folders changes; await on_change() after each reload that
    changed the skills. Runs until ``stop`` is set or it is cancelled; set ``stop`` first to end at once
    (a cancel alone waits for the file watcher's thread, up to ``interval``).

    Every ``interval`` seconds it also looks for configured folders that appeared or vanished, and
    watches the folders that exist now.
    """
    stop = stop or anyio.Event()
    while not stop.is_set():
        roots = _existing(library)
        if not roots:
            with anyio.move_on_after(interval):
                await stop.wait()
            if stop.is_set():
                return
            if _existing(library):
                await _reload(library, on_change)
            continue
        async for changes in awatch(
            *roots, debounce=DEBOUNCE_MS, rust_timeout=max(1, int(interval * 1000)), yield_on_timeout=True,
            stop_event=stop,
        ):
            moved = _existing(library) != roots
            if changes or moved:
                await _reload(library, on_change)
            if moved:
                break  # watch the folders that exist now


def _existing(library: SkillLibrary) -> list[Path]:
    folders = [*library.user_dirs, *([library.builtin_dir] if library.builtin_dir is not None else [])]
    return [folder for folder in folders if folder.is_dir()]


async def _reload(library: SkillLibrary, on_change: Callable[[], Awaitable[None]]) -> None:
    try:
        changed = await anyio.to_thread.run_sync(library.reload)
    except Exception:
        # a transient disk error must not stop watching for the rest of the session
        log.exception("reloading skills failed")
        return
    if not changed:
        return
    try:
        await on_change()
    except Exception:
        log.exception("skills changed, but notifying the client failed")
