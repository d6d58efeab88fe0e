"""Polling the skill library for changes while the server runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread

from gems_mcp.skills.library import SkillLibrary

log = logging.getLogger(__name__)


async def watch(library: SkillLibrary, on_change: Callable[[], Awaitable[None]], interval: float = 1.0) -> None:
    """Poll the library forever; await on_change() after each reload that changed the skills."""
    while True:
        await anyio.sleep(interval)
        try:
            changed = await anyio.to_thread.run_sync(library.reload)
        except Exception:
            # a transient disk error must not stop watching for the rest of the session
            log.exception("reloading skills failed")
            continue
        if not changed:
            continue
        try:
            await on_change()
        except Exception:
            log.exception("skills changed, but notifying the client failed")
