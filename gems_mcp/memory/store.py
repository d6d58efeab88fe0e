"""MemoryStore: trajectories and lessons in one tinydb file, written atomically and locked.

Every change runs under the cross-process file lock (storage.holding). A trajectory is inserted
once with save_trajectory; every later change is a read-modify-write through update_trajectory,
which applies the caller's function to the version on disk while holding the lock, so writers in
several processes never lose each other's rounds.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import ValidationError
from tinydb import Query, TinyDB
from tinydb.table import Document, Table

from gems_mcp.errors import InvalidRequest, UnknownTrajectory
from gems_mcp.memory.storage import (
    LOCK_TIMEOUT_S,
    META,
    SCHEMA_VERSION,
    AtomicJSONStorage,
    MemoryBusy,
    MemoryCorrupted,
    MemorySchemaTooNew,
    MemoryStoreError,
    RawTables,
    holding,
    schema_version,
)
from gems_mcp.types import Lesson, Trajectory, now

__all__ = [
    "DB_NAME",
    "LOCK_TIMEOUT_S",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AtomicJSONStorage",
    "MemoryBusy",
    "MemoryCorrupted",
    "MemorySchemaTooNew",
    "MemoryStore",
    "MemoryStoreError",
    "UnknownTrajectory",
]

log = logging.getLogger(__name__)

DB_NAME = "memory.json"

Migration = Callable[[RawTables], RawTables]

_TRAJECTORIES = "trajectories"
_LESSONS = "lessons"


def _migrate_v0(tables: RawTables) -> RawTables:
    """v0 (a plain tinydb file without a schema version) -> v1: add the version record."""
    tables = dict(tables)
    tables.setdefault(_TRAJECTORIES, {})
    tables.setdefault(_LESSONS, {})
    tables[META] = {"1": {"schema_version": 1}}
    return tables


# version -> function that upgrades raw tables from that version to the next one.
MIGRATIONS: dict[int, Migration] = {0: _migrate_v0}


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
        with self._mutex, holding(self._filelock, self.path):
            yield

    def _migrate(self) -> None:
        tables = self._storage.read()
        if tables is None:
            self._storage.write({META: {"1": {"schema_version": SCHEMA_VERSION}},
                                 _TRAJECTORIES: {}, _LESSONS: {}})
            return
        version = schema_version(tables)
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
                raise MemoryStoreError(
                    f"The memory database {self.path} has schema version {version}, "
                    f"which no migration of this gems-mcp upgrades."
                )
            upgraded = step(upgraded)
            version += 1
        upgraded[META] = {"1": {"schema_version": SCHEMA_VERSION}}
        self._storage.write(upgraded)

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database file."""
        with self._mutex:
            tables = self._storage.read()
        return SCHEMA_VERSION if tables is None else schema_version(tables)

    # -- trajectories ----------------------------------------------------------------------

    def save_trajectory(self, traj: Trajectory) -> None:
        """Insert a new trajectory; one already stored is changed only with update_trajectory."""
        with self._locked():
            if self._doc_id(traj.id) is not None:
                raise InvalidRequest(f"trajectory {traj.id!r} is already stored")
            next_id = max((d.doc_id for d in self._trajectories), default=0) + 1
            # tinydb's own id counter is stale across processes: give the id explicitly
            self._trajectories.insert(Document(traj.model_dump(mode="json"), doc_id=next_id))

    def update_trajectory(
        self, trajectory_id: str, fn: Callable[[Trajectory], Trajectory]
    ) -> Trajectory:
        """The one read-modify-write: ``fn`` gets the stored version under the lock; its result is stored.

        ``fn`` may raise to leave the stored trajectory unchanged. It must not change the id.
        """
        with self._locked():
            doc_id, current = self._get(trajectory_id)
            updated = fn(current)
            if not isinstance(updated, Trajectory):
                raise TypeError("update_trajectory: fn must return a Trajectory")
            if updated.id != trajectory_id:
                raise ValueError(
                    f"update_trajectory: fn changed the id from {trajectory_id!r} to {updated.id!r}"
                )
            updated = updated.model_copy(update={"updated_at": now()})
            data = updated.model_dump(mode="json")

            def replace(doc: MutableMapping[Any, Any]) -> None:
                doc.clear()
                doc.update(data)

            self._trajectories.update(replace, doc_ids=[doc_id])
            return updated

    def get_trajectory(self, trajectory_id: str) -> Trajectory:
        """The stored trajectory with this id; UnknownTrajectory if there is none."""
        with self._mutex:
            return self._get(trajectory_id)[1]

    def list_trajectories(self, limit: int | None = None) -> list[Trajectory]:
        """Stored trajectories, newest (by creation) first, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise InvalidRequest(f"limit must be 0 or more, not {limit}")
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
            raise InvalidRequest(f"older_than_days must be 0 or more, not {older_than_days}")
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

    def _get(self, trajectory_id: str) -> tuple[int, Trajectory]:
        """The tinydb document id and the parsed trajectory; UnknownTrajectory if there is none."""
        doc = self._trajectories.get(Query().id == trajectory_id)
        if doc is None:
            raise UnknownTrajectory(trajectory_id)
        try:
            return doc.doc_id, Trajectory.model_validate(doc)
        except ValidationError as exc:
            raise MemoryStoreError(
                f"Trajectory {trajectory_id!r} in {self.path} does not match the current "
                f"format and cannot be read: {exc.errors()[0]['msg']}."
            ) from None

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
