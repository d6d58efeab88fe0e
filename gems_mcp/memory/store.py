"""MemoryStore: trajectories and lessons in one tinydb file, written atomically and locked."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import ValidationError
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from gems_mcp.types import Lesson, Trajectory, now

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "memory.json"
LOCK_TIMEOUT_S = 30.0

RawTables = dict[str, dict[str, Any]]
Migration = Callable[[RawTables], RawTables]

_META = "_meta"
_TRAJECTORIES = "trajectories"
_LESSONS = "lessons"
# The first key of every file we write: a fresh token per write, so a reader can tell two
# versions apart even when inode, size and mtime all collide (inodes are reused after replace).
_WRITE_KEY = "_write"
_HEAD_BYTES = 64
_TMP_PREFIX = DB_NAME + ".tmp-"


def _migrate_v0(tables: RawTables) -> RawTables:
    """v0 (a plain tinydb file without a schema version) -> v1: add the version record."""
    tables = dict(tables)
    tables.setdefault(_TRAJECTORIES, {})
    tables.setdefault(_LESSONS, {})
    tables[_META] = {"1": {"schema_version": 1}}
    return tables


# version -> function that upgrades raw tables from that version to the next one.
MIGRATIONS: dict[int, Migration] = {0: _migrate_v0}


class MemoryStoreError(Exception):
    """Base class of the memory store's errors."""


class MemoryCorrupted(MemoryStoreError):
    """The database file could not be parsed; it was moved aside, bytes intact."""

    def __init__(self, path: Path, backup: Path, reason: str) -> None:
        self.path = path
        self.backup = backup
        self.reason = reason
        super().__init__(
            f"The memory database {path} is corrupt ({reason}); it was moved aside, unchanged, "
            f"to {backup} and a new empty database starts on the next write. "
            f"Restore that backup by hand if it can be repaired."
        )


class MemorySchemaTooNew(MemoryStoreError):
    """The database was written by a newer gems-mcp."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version
        super().__init__(
            f"The memory database {path} has schema version {version}, but this gems-mcp "
            f"understands up to {SCHEMA_VERSION}; upgrade gems-mcp to use it."
        )


class MemoryBusy(MemoryStoreError):
    """Another process held the database lock for too long."""


class UnknownTrajectory(LookupError):
    """No trajectory with that id is stored."""

    def __init__(self, trajectory_id: str) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(
            f"No trajectory {trajectory_id!r}; call generate to start one, "
            f"or recall_memory() to list recent ones."
        )


@dataclass(frozen=True)
class _Snapshot:
    """One parsed version of the file and what identifies it on disk."""

    key: tuple[int, int, int]  # (mtime_ns, size, inode)
    token: str | None
    tables: RawTables


def _head_token(head: bytes) -> str | None:
    """The write token from the first bytes of a file we wrote, else None."""
    prefix = b'{"' + _WRITE_KEY.encode() + b'":"'
    if not head.startswith(prefix):
        return None
    end = head.find(b'"', len(prefix))
    return head[len(prefix) : end].decode("ascii", "replace") if end > 0 else None


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@contextmanager
def _holding(lock: FileLock, path: Path) -> Iterator[None]:
    """Hold the cross-process lock; a clear MemoryBusy if another process keeps it too long."""
    try:
        lock.acquire()
    except Timeout:
        raise MemoryBusy(
            f"The memory database {path} stayed locked by another process for "
            f"{LOCK_TIMEOUT_S:.0f} s; try again, or stop the stuck process."
        ) from None
    try:
        yield
    finally:
        lock.release()


class AtomicJSONStorage(Storage):
    """tinydb storage: atomic whole-file writes, a parsed cache, corruption quarantined.

    Reads take no lock (a replaced file is always whole); writes must run under ``lock``.
    """

    def __init__(self, path: Path, lock: FileLock) -> None:
        self.path = path
        self.lock = lock
        self._snapshot: _Snapshot | None = None

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> RawTables | None:
        """The current tables, parsed once per on-disk version; None when there is no file."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                self._snapshot = None
                return None
            with os.fdopen(fd, "rb") as f:
                key = _stat_key(os.fstat(f.fileno()))
                head = f.read(_HEAD_BYTES)
                cached = self._snapshot
                if cached is not None and cached.key == key and cached.token == _head_token(head):
                    return cached.tables
                raw = head + f.read()
            try:
                self._snapshot = self._parse(raw, key)
                return self._snapshot.tables
            except ValueError as exc:
                # Raises MemoryCorrupted, unless another process replaced the file meanwhile.
                self._quarantine(key, str(exc))
        raise MemoryBusy(f"The memory database {self.path} kept changing while being read.")

    def _parse(self, raw: bytes, key: tuple[int, int, int]) -> _Snapshot:
        if not raw.strip():
            raise ValueError("the file is empty")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("the top level is not a JSON object")
        token = data.pop(_WRITE_KEY, None)
        for name, table in data.items():
            if not isinstance(table, dict) or not all(isinstance(d, dict) for d in table.values()):
                raise ValueError(f"table {name!r} is not a mapping of documents")
        version = _schema_version(data)
        if version > SCHEMA_VERSION:
            raise MemorySchemaTooNew(self.path, version)
        return _Snapshot(key=key, token=token if isinstance(token, str) else None, tables=data)

    def _quarantine(self, key: tuple[int, int, int], reason: str) -> None:
        """Move the unparseable file aside and raise MemoryCorrupted; return if already replaced."""
        with _holding(self.lock, self.path):
            try:
                current = _stat_key(os.stat(self.path))
            except FileNotFoundError:
                return
            if current != key:
                return
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            # A rename keeps the original bytes exactly; nothing is rewritten or emptied.
            os.replace(self.path, backup)
            self._snapshot = None
            log.error("memory database %s is corrupt (%s); moved to %s", self.path, reason, backup)
            raise MemoryCorrupted(self.path, backup, reason)

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: RawTables) -> None:
        """Replace the file with ``data``: temp file in the same folder, fsync, rename."""
        if not self.lock.is_locked:
            raise RuntimeError("AtomicJSONStorage.write called without holding the memory lock")
        data.setdefault(_META, {"1": {"schema_version": SCHEMA_VERSION}})
        token = uuid.uuid4().hex
        payload = {_WRITE_KEY: token, **data}
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            self._replace_file(body)
        except BaseException:
            # tinydb mutated the cached tables in place before calling us: they no longer
            # match the disk, so the next read must parse the file again.
            self._snapshot = None
            raise
        self._snapshot = _Snapshot(key=_stat_key(os.stat(self.path)), token=token, tables=data)

    def _replace_file(self, body: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)

    def remove_orphan_temps(self) -> None:
        """Delete temp files left by a writer that was killed mid-write (call under the lock)."""
        for orphan in self.path.parent.glob(_TMP_PREFIX + "*"):
            log.warning("removing %s left by an interrupted write", orphan)
            orphan.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some platforms cannot open folders, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _schema_version(tables: RawTables) -> int:
    meta = tables.get(_META) or {}
    record = meta.get("1") or {}
    version = record.get("schema_version", 0)
    return version if isinstance(version, int) else 0


def _lesson_doc_id(lesson_id: str) -> int:
    """A stable tinydb document id for a lesson, so re-adding one is a no-op."""
    return int.from_bytes(hashlib.blake2b(lesson_id.encode(), digest_size=6).digest(), "big")


class MemoryStore:
    """Trajectories and lessons of one GEMS home, safe to share between processes."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / DB_NAME
        self._filelock = FileLock(str(self.home / (DB_NAME + ".lock")), timeout=LOCK_TIMEOUT_S)
        # tinydb's in-process structures are not thread-safe; one RLock per store covers them.
        self._mutex = threading.RLock()
        self._storage: AtomicJSONStorage
        self._db = TinyDB(self.path, self._filelock, storage=AtomicJSONStorage)
        self._storage = self._db.storage  # type: ignore[assignment]
        # Query caches are per instance and never see other processes' writes: disable them.
        self._trajectories: Table = self._db.table(_TRAJECTORIES, cache_size=0)
        self._lessons: Table = self._db.table(_LESSONS, cache_size=0)
        with self._locked():
            self._storage.remove_orphan_temps()
            self._migrate()

    # -- locking and schema ----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the in-process and cross-process locks for a read-modify-write."""
        with self._mutex, _holding(self._filelock, self.path):
            yield

    def _migrate(self) -> None:
        tables = self._storage.read()
        if tables is None:
            self._storage.write({_META: {"1": {"schema_version": SCHEMA_VERSION}},
                                 _TRAJECTORIES: {}, _LESSONS: {}})
            return
        version = _schema_version(tables)
        if version == SCHEMA_VERSION:
            return
        backup = self.path.with_name(f"{DB_NAME}.bak-v{version}")
        shutil.copy2(self.path, backup)
        log.info("migrating %s from schema %d to %d (copy kept at %s)",
                 self.path, version, SCHEMA_VERSION, backup)
        # A copy: a migration that fails half-way must not leave the cache half-migrated.
        upgraded = copy.deepcopy(tables)
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise RuntimeError(f"no migration from memory schema version {version}")
            upgraded = step(upgraded)
            version += 1
        upgraded[_META] = {"1": {"schema_version": SCHEMA_VERSION}}
        self._storage.write(upgraded)

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database file."""
        with self._mutex:
            tables = self._storage.read()
        return SCHEMA_VERSION if tables is None else _schema_version(tables)

    # -- trajectories ----------------------------------------------------------------------

    def save_trajectory(self, traj: Trajectory) -> None:
        """Insert the trajectory, or replace the stored one with the same id."""
        with self._locked():
            self._put(traj)

    def update_trajectory(
        self, trajectory_id: str, fn: Callable[[Trajectory], Trajectory]
    ) -> Trajectory:
        """Apply ``fn`` to the stored trajectory under the lock and store the result."""
        with self._locked():
            current = self._get(trajectory_id)
            updated = fn(current)
            if not isinstance(updated, Trajectory):
                raise TypeError("update_trajectory: fn must return a Trajectory")
            if updated.id != trajectory_id:
                raise ValueError(
                    f"update_trajectory: fn changed the id from {trajectory_id!r} to {updated.id!r}"
                )
            updated = updated.model_copy(update={"updated_at": now()})
            self._put(updated)
            return updated

    def get_trajectory(self, trajectory_id: str) -> Trajectory:
        """The stored trajectory with this id; UnknownTrajectory if there is none."""
        with self._mutex:
            return self._get(trajectory_id)

    def list_trajectories(self, limit: int | None = None) -> list[Trajectory]:
        """Stored trajectories, newest (by creation) first, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._mutex:
            docs = sorted(self._trajectories, key=lambda d: d.get("created_at", 0), reverse=True)
        out: list[Trajectory] = []
        for doc in docs:
            if limit is not None and len(out) >= limit:
                break
            try:
                out.append(Trajectory.model_validate(doc))
            except ValidationError as exc:
                log.warning("skipping unreadable trajectory %r in %s: %s",
                            doc.get("id"), self.path, exc)
        return out

    def delete_trajectory(self, trajectory_id: str) -> None:
        """Remove one trajectory; UnknownTrajectory if there is none."""
        with self._locked():
            doc_id = self._doc_id(trajectory_id)
            if doc_id is None:
                raise UnknownTrajectory(trajectory_id)
            self._trajectories.remove(doc_ids=[doc_id])

    def prune(self, older_than_days: float) -> int:
        """Remove trajectories not updated for ``older_than_days``; returns how many went."""
        if not older_than_days >= 0:
            raise ValueError(f"older_than_days must be 0 or more, not {older_than_days}")
        cutoff = time.time() - older_than_days * 86400.0
        with self._locked():
            stale = [d.doc_id for d in self._trajectories if d.get("updated_at", 0) < cutoff]
            if stale:
                self._trajectories.remove(doc_ids=stale)
        if stale:
            log.info("pruned %d trajectories older than %s days", len(stale), older_than_days)
        return len(stale)

    def _doc_id(self, trajectory_id: str) -> int | None:
        doc = self._trajectories.get(Query().id == trajectory_id)
        return None if doc is None else doc.doc_id

    def _get(self, trajectory_id: str) -> Trajectory:
        doc = self._trajectories.get(Query().id == trajectory_id)
        if doc is None:
            raise UnknownTrajectory(trajectory_id)
        try:
            return Trajectory.model_validate(doc)
        except ValidationError as exc:
            raise ValueError(
                f"Trajectory {trajectory_id!r} in {self.path} does not match the current "
                f"format and cannot be read: {exc.errors()[0]['msg']}."
            ) from None

    def _put(self, traj: Trajectory) -> None:
        """Insert or replace in one write; tinydb's own id counter is stale across processes."""
        data = traj.model_dump(mode="json")
        doc_id = self._doc_id(traj.id)
        if doc_id is None:
            next_id = max((d.doc_id for d in self._trajectories), default=0) + 1
            self._trajectories.insert(Document(data, doc_id=next_id))
            return

        def replace(doc: MutableMapping[Any, Any]) -> None:
            doc.clear()
            doc.update(data)

        self._trajectories.update(replace, doc_ids=[doc_id])

    # -- lessons ---------------------------------------------------------------------------

    def add_lessons(self, lessons: list[Lesson]) -> None:
        """Store lessons; one already stored (same id) is kept as it is."""
        if not lessons:
            return
        with self._locked():
            existing = {d.doc_id for d in self._lessons}
            fresh: dict[int, Document] = {}
            for lesson in lessons:
                doc_id = _lesson_doc_id(lesson.id)
                if doc_id not in existing:
                    fresh[doc_id] = Document(lesson.model_dump(mode="json"), doc_id=doc_id)
            if fresh:
                self._lessons.insert_multiple(fresh.values())

    def lessons(self) -> list[Lesson]:
        """Every stored lesson, oldest first."""
        with self._mutex:
            docs = list(self._lessons)
        out = []
        for doc in docs:
            try:
                out.append(Lesson.model_validate(doc))
            except ValidationError as exc:
                log.warning("skipping unreadable lesson %r in %s: %s", doc.get("id"), self.path, exc)
        out.sort(key=lambda lesson: lesson.created_at)
        return out

    # -- whole database --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything stored, exactly as stored (even records this version cannot read)."""
        with self._mutex:
            trajectories = [dict(d) for d in self._trajectories]
            lessons = [dict(d) for d in self._lessons]
        trajectories.sort(key=lambda d: d.get("created_at", 0), reverse=True)
        lessons.sort(key=lambda d: d.get("created_at", 0))
        return {"schema_version": self.schema_version, "trajectories": trajectories,
                "lessons": lessons}
