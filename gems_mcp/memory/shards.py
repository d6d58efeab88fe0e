"""Shards: one tinydb file per trajectory, each with its own cross-process lock.

Two processes working on different trajectories take different locks and never wait on each
other; a write costs the size of one trajectory, however many are stored.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb import TinyDB

from gems_mcp.memory.storage import LOCK_TIMEOUT_S, AtomicJSONStorage

TRAJECTORY_DIR = "trajectories"
TABLE = "trajectory"
SUFFIX = ".json"
LOCK_SUFFIX = ".lock"
TMP_DIR = ".tmp"
"""Temp files of trajectory writes, apart: start-up looks for a killed writer's there, not among thousands."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
_DOC_ID = 1
_CACHED_SHARDS = 32
"""Open shards kept, with their parsed file: the trajectories being worked on, not the whole store."""


def shard_name(trajectory_id: str) -> str:
    """The file name of a trajectory: its id when that is a safe file name, else a digest of it."""
    if _SAFE_NAME.fullmatch(trajectory_id):
        return trajectory_id + SUFFIX
    return "x-" + hashlib.sha256(trajectory_id.encode()).hexdigest()[:32] + SUFFIX


class Shard:
    """One trajectory's file: a tinydb database with one document, written atomically under its lock."""

    def __init__(self, folder: Path, trajectory_id: str) -> None:
        self.trajectory_id = trajectory_id
        self.path = folder / shard_name(trajectory_id)
        self.lock = FileLock(str(self.path) + LOCK_SUFFIX, timeout=LOCK_TIMEOUT_S)
        # tinydb mutates its cached tables in place while writing: readers in this process wait for that.
        self.mutex = threading.RLock()
        self._db = TinyDB(self.path, self.lock, storage=AtomicJSONStorage, tmp_dir=folder / TMP_DIR)
        self.storage: AtomicJSONStorage = self._db.storage  # type: ignore[assignment]
        self._table = self._db.table(TABLE, cache_size=0)

    def read(self) -> dict[str, Any] | None:
        """The stored record (a copy), or None when the trajectory is not stored."""
        with self.mutex:
            doc = self._table.get(doc_id=_DOC_ID)
            return None if doc is None else dict(doc)

    def read_encoded(self) -> bytes | None:
        """The stored record as JSON bytes, for pydantic to parse directly; None when not stored."""
        return self.storage.read_document(TABLE, str(_DOC_ID))

    def write_encoded(self, encoded: bytes, durable: bool = True) -> None:
        """Replace the record with one already encoded as a JSON object (call under ``lock``).

        ``durable=False`` skips the fsync, for bulk writes that sync once at the end.
        """
        with self.mutex:
            self.storage.write_document(TABLE, str(_DOC_ID), encoded, durable)

    def delete(self) -> None:
        """Remove the trajectory's file (call under ``lock``)."""
        with self.mutex:
            self.storage.delete()

    def exists(self) -> bool:
        return self.path.exists()


class ShardSet:
    """The shards of one home, the recently used ones kept open (their parsed files cached)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._open: OrderedDict[str, Shard] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, trajectory_id: str) -> Shard:
        with self._guard:
            shard = self._open.get(trajectory_id)
            if shard is None:
                shard = self._open[trajectory_id] = Shard(self.folder, trajectory_id)
                if len(self._open) > _CACHED_SHARDS:
                    self._open.popitem(last=False)
            else:
                self._open.move_to_end(trajectory_id)
            return shard

    def files(self) -> list[Path]:
        """Every trajectory file in the folder (not temp or lock files)."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        return [Path(e.path) for e in entries if e.name.endswith(SUFFIX) and e.is_file()]

    def read_file(self, path: Path) -> dict[str, Any] | None:
        """The record in one trajectory file found on disk (by rebuild); None if it holds none."""
        storage = AtomicJSONStorage(path, FileLock(str(path) + LOCK_SUFFIX, timeout=LOCK_TIMEOUT_S))
        tables = storage.read() or {}
        doc = (tables.get(TABLE) or {}).get(str(_DOC_ID))
        return dict(doc) if isinstance(doc, dict) else None

    def sweep_temps(self) -> int:
        """Delete temp files of interrupted writes whose trajectory no writer holds now; how many."""
        try:
            names = [e.name for e in os.scandir(self.folder / TMP_DIR) if ".json.tmp-" in e.name]
        except FileNotFoundError:
            return 0
        removed = 0
        for name in names:
            lock = FileLock(str(self.folder / name.split(".tmp-")[0]) + LOCK_SUFFIX, timeout=0)
            try:
                with lock:
                    (self.folder / TMP_DIR / name).unlink(missing_ok=True)
                    removed += 1
            except Timeout:  # a live writer: its temp file is about to be renamed
                continue
        return removed


INDEX_FIELDS = ("id", "intent", "status", "created_at", "updated_at")
INTENT_CHARS = 200
"""The index keeps this much of an intent: enough to list, never a megabyte per row."""


def index_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What the index keeps of a stored trajectory record: id, intent, status, created and updated."""
    intent = record.get("intent")
    return {
        "id": record.get("id"),
        "intent": intent[:INTENT_CHARS] if isinstance(intent, str) else "",
        "status": record.get("status"),
        "created_at": record.get("created_at", 0),
        "updated_at": record.get("updated_at", 0),
    }


def index_key(trajectory_id: str) -> str:
    """The index's document id for a trajectory: stable, so every process names the same row."""
    return str(int.from_bytes(hashlib.blake2b(trajectory_id.encode(), digest_size=6).digest(), "big"))
