"""MemoryStore: trajectories (one tinydb file each), an index of them, and lessons, safe across processes.

A trajectory is inserted once with save_trajectory; every later change is a read-modify-write
through update_trajectory, which applies the caller's function to the version on disk while
holding that trajectory's own lock, so writers in several processes never lose each other's
rounds, and writers of different trajectories never wait on each other. Reads take no lock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gems_mcp.errors import (
    InvalidRequest,
    MemoryBusy,
    MemoryCorrupted,
    MemorySchemaTooNew,
    MemoryStoreError,
    UnknownTrajectory,
)
from gems_mcp.memory.database import DB_NAME, LESSONS, MIGRATIONS, TRAJECTORIES, Database
from gems_mcp.memory.shards import INDEX_FIELDS, Shard, index_entry, index_key
from gems_mcp.memory.storage import LOCK_TIMEOUT_S, SCHEMA_VERSION, AtomicJSONStorage
from gems_mcp.types import Lesson, Trajectory, now

__all__ = [
    "DB_NAME",
    "LESSONS",
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

INDEX_SLACK_S = 3600.0
"""A round's write leaves the index alone unless the intent or status changed or its updated time is
older than this: most writes touch the trajectory's own file only. Retention checks the file itself."""


def _entry(traj: Trajectory) -> dict[str, Any]:
    return index_entry(traj.model_dump(mode="json", include=set(INDEX_FIELDS)))


class MemoryStore(Database):
    """Trajectories and lessons of one GEMS home, safe to share between processes."""

    def __init__(self, home: Path, max_lessons: int | None = None, max_lesson_bytes: int | None = None) -> None:
        self.max_lessons = max_lessons
        self.max_lesson_bytes = max_lesson_bytes
        super().__init__(home)

    # -- trajectories ----------------------------------------------------------------------

    def save_trajectory(self, traj: Trajectory) -> None:
        """Insert a new trajectory; one already stored is changed only with update_trajectory."""
        shard = self.shards.get(traj.id)
        with self._locked(shard.lock, shard.mutex):
            if shard.exists():
                raise InvalidRequest(f"trajectory {traj.id!r} is already stored")
            shard.write_encoded(traj.model_dump_json().encode())
            self._index_put({index_key(traj.id): _entry(traj)})

    def update_trajectory(
        self, trajectory_id: str, fn: Callable[[Trajectory], Trajectory]
    ) -> Trajectory:
        """The one read-modify-write: ``fn`` gets the stored version under the lock; its result is stored.

        ``fn`` may raise to leave the stored trajectory unchanged. It must not change the id.
        """
        shard = self.shards.get(trajectory_id)
        with self._locked(shard.lock, shard.mutex):
            current = self._parse(shard)
            updated = fn(current)
            if not isinstance(updated, Trajectory):
                raise TypeError("update_trajectory: fn must return a Trajectory")
            if updated.id != trajectory_id:
                raise ValueError(
                    f"update_trajectory: fn changed the id from {trajectory_id!r} to {updated.id!r}"
                )
            updated = updated.model_copy(update={"updated_at": now()})
            # pydantic encodes in one pass what model_dump + json.dumps take three times as long for
            shard.write_encoded(updated.model_dump_json().encode())
            entry = _entry(updated)
            if self._index_is_stale(index_key(trajectory_id), entry):
                self._index_put({index_key(trajectory_id): entry})
            return updated

    def get_trajectory(self, trajectory_id: str) -> Trajectory:
        """The stored trajectory with this id; UnknownTrajectory if there is none."""
        with self._reading():
            return self._parse(self.shards.get(trajectory_id))

    def list_trajectories(self, limit: int | None = None) -> list[Trajectory]:
        """Stored trajectories, newest (by creation) first, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise InvalidRequest(f"limit must be 0 or more, not {limit}")
        if self.read_problem is not None:
            return []
        out: list[Trajectory] = []
        for entry in self._index_by_age():
            if limit is not None and len(out) >= limit:
                break
            try:
                out.append(self.get_trajectory(entry["id"]))
            except (MemoryStoreError, UnknownTrajectory) as exc:
                log.warning("skipping unreadable trajectory %r in %s: %s", entry.get("id"), self.home, exc)
        return out

    def delete_trajectory(self, trajectory_id: str) -> None:
        """Remove one trajectory; UnknownTrajectory if there is none."""
        shard = self.shards.get(trajectory_id)
        with self._locked(shard.lock, shard.mutex):
            if not shard.exists():
                raise UnknownTrajectory(trajectory_id)
            shard.delete()
            self._index_drop([index_key(trajectory_id)])

    def remove_stale(self, older_than_days: float) -> list[dict[str, Any]]:
        """Remove trajectories not updated for ``older_than_days``; returns the removed records as stored."""
        if not older_than_days >= 0:
            raise InvalidRequest(f"older_than_days must be 0 or more, not {older_than_days}")
        self.check_writable()
        cutoff = time.time() - older_than_days * 86400.0
        # The index's updated time may trail the file's (INDEX_SLACK_S): it names candidates, the file decides.
        candidates = [e["id"] for e in self._index().values() if e.get("updated_at", 0) < cutoff]
        removed, gone = [], []
        for trajectory_id in candidates:
            shard = self.shards.get(trajectory_id)
            with self._locked(shard.lock, shard.mutex):
                record = shard.read()
                if record is None or record.get("updated_at", 0) < cutoff:
                    shard.delete()
                    gone.append(index_key(trajectory_id))
                    removed += [record] if record is not None else []
        if gone:
            self._index_drop(gone)
            log.info("pruned %d trajectories older than %s days", len(removed), older_than_days)
        return removed

    def record(self, trajectory_id: str) -> dict[str, Any] | None:
        """One stored trajectory record as stored (even one this version cannot parse), or None."""
        with self._reading():
            return self.shards.get(trajectory_id).read()

    def records(self) -> list[dict[str, Any]]:
        """Every stored trajectory record as stored (even ones this version cannot parse); reads every file."""
        if self.read_problem is not None:
            return []
        out = []
        for entry in self._index_by_age():
            try:
                record = self.record(entry["id"])
            except MemoryStoreError as exc:
                log.warning("skipping unreadable trajectory %r: %s", entry.get("id"), exc)
                continue
            if record is not None:
                out.append(record)
        return out

    def _parse(self, shard: Shard) -> Trajectory:
        """The stored trajectory, parsed by pydantic straight from the file's bytes."""
        encoded = shard.read_encoded()
        if encoded is None:
            raise UnknownTrajectory(shard.trajectory_id)
        try:
            return Trajectory.model_validate_json(encoded)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                shard.storage.read()  # a damaged file: read() moves it aside and says so (MemoryCorrupted)
            raise MemoryStoreError(
                f"Trajectory {shard.trajectory_id!r} in {self.home} does not match the current "
                f"format and cannot be read: {exc.errors()[0]['msg']}."
            ) from None

    # -- the index -------------------------------------------------------------------------

    def _index(self) -> dict[str, dict[str, Any]]:
        """The index rows by key; read without a lock (the file is always whole)."""
        with self._reading(), self._mutex:
            return dict(self._index_tables().get(TRAJECTORIES) or {})

    def _index_by_age(self) -> list[dict[str, Any]]:
        rows = [e for e in self._index().values() if isinstance(e.get("id"), str)]
        return sorted(rows, key=lambda e: e.get("created_at", 0), reverse=True)

    def _index_is_stale(self, key: str, entry: dict[str, Any]) -> bool:
        with self._mutex:
            row = (self._index_tables().get(TRAJECTORIES) or {}).get(key)
        return (row is None or any(row.get(f) != entry[f] for f in ("id", "intent", "status", "created_at"))
                or entry["updated_at"] - row.get("updated_at", 0) > INDEX_SLACK_S)

    def _index_put(self, rows: dict[str, dict[str, Any]]) -> None:
        with self._locked():
            tables = dict(self._index_tables())
            tables[TRAJECTORIES] = {**(tables.get(TRAJECTORIES) or {}), **rows}
            self._storage.write(tables)

    def _index_drop(self, keys: list[str]) -> None:
        with self._locked():
            tables = dict(self._index_tables())
            index = dict(tables.get(TRAJECTORIES) or {})
            for key in keys:
                index.pop(key, None)
            tables[TRAJECTORIES] = index
            self._storage.write(tables)

    # -- lessons ---------------------------------------------------------------------------

    def add_lessons(self, lessons: list[Lesson]) -> None:
        """Store lessons; one already stored (same id) is kept as it is."""
        if not lessons:
            return
        self.check_writable()
        records = [lesson.model_dump(mode="json") for lesson in lessons]
        self.lesson_file.add(records, self.max_lessons, self.max_lesson_bytes)

    def note_recalled(self, lesson_ids: list[str]) -> None:
        """Count one recall for each id (once per occurrence); best effort: a read-only store skips it."""
        if not lesson_ids or self.write_problem is not None:
            return
        try:
            self.lesson_file.count_recalls(lesson_ids)
        except (MemoryStoreError, OSError) as exc:
            log.warning("could not count lesson recalls: %s", exc)

    def lessons(self) -> list[Lesson]:
        """Every stored lesson, oldest first."""
        if self.read_problem is not None:
            return []
        with self._reading():
            try:
                return self.lesson_file.lessons()
            except MemoryCorrupted as exc:  # moved aside: the lessons start again from none
                self.notice = str(exc)
                return self.lesson_file.lessons()

    # -- whole database --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything stored, exactly as stored (even records this version cannot read)."""
        trajectories = self.records()
        with self._reading():
            lessons = self.lesson_file.records()
        trajectories.sort(key=lambda d: d.get("created_at", 0), reverse=True)
        lessons.sort(key=lambda d: d.get("created_at", 0))
        return {"schema_version": self.schema_version, "trajectories": trajectories,
                "lessons": lessons}

    def import_records(self, trajectories: list[Trajectory], lessons: list[Lesson],
                       refuse_existing: bool = False) -> tuple[int, int, int, int]:
        """Add trajectories and lessons whose ids are new: (trajectories added, skipped, lessons added, skipped).

        With ``refuse_existing`` an id already stored refuses the whole import before anything is written.
        """
        self.check_writable()
        index = self._index()
        fresh = [t for t in trajectories if index_key(t.id) not in index]
        known = self.lesson_file.known([lesson.id for lesson in lessons])
        clashes = len(trajectories) - len(fresh) + len(known)
        if refuse_existing and clashes:
            raise InvalidRequest(f"{clashes} of the records to import are already stored "
                                 f"({len(trajectories) - len(fresh)} trajectories, {len(known)} lessons); "
                                 "nothing was imported")
        rows = {}
        for traj in fresh:  # each file under its own lock; no index lock meanwhile (writers take shard, then index)
            shard = self.shards.get(traj.id)
            with self._locked(shard.lock, shard.mutex):
                shard.write_encoded(traj.model_dump_json().encode(), durable=False)
            rows[index_key(traj.id)] = _entry(traj)
        os.sync()  # every file on disk before the index names it
        if rows:
            self._index_put(rows)
        added = self.lesson_file.add([lesson.model_dump(mode="json") for lesson in lessons if lesson.id not in known],
                                     self.max_lessons, self.max_lesson_bytes)
        return len(fresh), len(trajectories) - len(fresh), added, len(lessons) - added
