"""Where a running gallery is: a small file in GEMS_HOME, so tool results can link to it.

Whoever serves the gallery (`serve --transport http`, `gems-mcp gallery`) writes
`GEMS_HOME/gallery.json` with its URL and process id while it runs; a server over the same home reads
it and adds the trajectory's gallery address to every result that makes images. A file left behind by
a process that died is ignored (its pid is gone) and replaced by the next gallery.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "gallery.json"


@contextmanager
def announced(home: Path, url: str) -> Iterator[None]:
    """Publish ``url`` (the gallery page, e.g. http://127.0.0.1:8000/gallery) for as long as the block runs."""
    path = Path(home) / FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gallery.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"url": url, "pid": os.getpid()}, f)
        os.replace(tmp, path)
    except OSError as exc:  # the gallery still works; results just will not link to it
        log.warning("could not record the gallery address in %s: %s", path, exc)
    try:
        yield
    finally:
        if _read(path).get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def gallery_url(home: Path, trajectory_id: str | None = None) -> str | None:
    """The running gallery's address (of one trajectory when given), or None when no gallery runs."""
    record = _read(Path(home) / FILE_NAME)
    url, pid = record.get("url"), record.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or not _alive(pid):
        return None
    return f"{url}#{trajectory_id}" if trajectory_id else url


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True
