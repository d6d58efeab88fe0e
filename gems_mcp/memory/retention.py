"""Retention: pruned trajectories take their images along; images no trajectory names are swept.

An image belongs to the memory when some stored trajectory names it (a candidate's image_id, or
the source_image_id an edit started from). Images are written before their round is stored, so
an unreferenced image is an orphan only once it is older than a grace period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from gems_mcp.errors import GemsError
from gems_mcp.images import ImageStore
from gems_mcp.memory.store import MemoryStore

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 3600.0
"""An unreferenced image younger than this may belong to a round being generated right now."""
_IMAGE_KEYS = ("image_id", "source_image_id")


def referenced_images(records: Iterable[dict[str, Any]]) -> set[str]:
    """Every image id the stored trajectory records name, at any depth (records may be of older formats)."""
    found: set[str] = set()
    stack: list[Any] = list(records)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in _IMAGE_KEYS and isinstance(value, str):
                    found.add(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _drop_images_of(removed: list[dict[str, Any]], store: MemoryStore, images: ImageStore) -> int:
    """Delete the images the removed records named that no remaining trajectory names."""
    candidates = referenced_images(removed) - referenced_images(store.records())
    return images.delete(candidates)


def prune(store: MemoryStore, images: ImageStore, older_than_days: float) -> tuple[int, int]:
    """Remove trajectories not updated for ``older_than_days`` and their images: (trajectories, images)."""
    removed = store.remove_stale(older_than_days)
    return len(removed), _drop_images_of(removed, store, images) if removed else 0


def delete(store: MemoryStore, images: ImageStore, trajectory_id: str) -> int:
    """Remove one trajectory and its images (UnknownTrajectory if there is none); how many images went."""
    record = store.record(trajectory_id)
    store.delete_trajectory(trajectory_id)
    records = [record] if record is not None else []
    return _drop_images_of(records, store, images)


def orphans(store: MemoryStore, images: ImageStore, grace_s: float = ORPHAN_GRACE_S) -> list[str]:
    """Stored images no trajectory names, older than ``grace_s`` seconds."""
    cutoff = time.time() - grace_s
    used = referenced_images(store.records())
    return sorted(i for i, mtime in images.ids().items() if i not in used and mtime < cutoff)


def apply_retention(store: MemoryStore, images: ImageStore, days: float | None) -> None:
    """GEMS_RETENTION_DAYS at start: old trajectories and their images go; never stops the start."""
    if days is None or store.write_problem is not None:
        return
    try:
        trajectories, pictures = prune(store, images, days)
    except (GemsError, OSError) as exc:  # retention is housekeeping: the server must start anyway
        log.warning("retention (GEMS_RETENTION_DAYS=%s) skipped: %s", days, exc)
        return
    if trajectories:
        log.info("retention: removed %d trajectories older than %s days and %d images", trajectories, days, pictures)
