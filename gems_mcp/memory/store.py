"""MemoryStore: trajectories and lessons in one tinydb file, written atomically and locked.

Every change runs under the cross-process file lock (storage.holding). A trajectory is inserted
once with save_trajectory; every later change is a read-modify-write through update_trajectory,
which applies the caller's function to the version on disk while holding the lock, so writers in
several processes never lose each other's rounds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tinydb import Query
from tinydb.table import Document, Table

from gems_mcp.errors import InvalidRequest, UnknownTrajectory
from gems_mcp.memory.database import DB_NAME, LESSONS, MIGRATIONS, TRAJECTORIES, Database
from gems_mcp.memory.storage import (
    LOCK_TIMEOUT_S,
    SCHEMA_VERSION,
    AtomicJSONStorage,
    MemoryBusy,
    MemoryCorrupted,
    MemorySchemaTooNew,
    MemoryStoreError,
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


def _add_recalls(n: int) -> Callable[[MutableMapping[Any, Any]], None]:
    """A tinydb update that counts ``n`` more recalls of a lesson."""

    def add(doc: MutableMapping[Any, Any]) -> None:
        doc["recalls"] = doc.get("recalls", 0) + n

    return add


def _lesson_doc_id(lesson_id: str) -> int:
    """A stable tinydb document id for a lesson, so re-adding one is a no-op."""
    return int.from_bytes(hashlib.blake2b(lesson_id.encode(), digest_size=6).digest(), "big")


class MemoryStore(Database):
    """Trajectories and lessons of one GEMS home, safe to share between processes."""

    def __init__(self, home: Path, max_lessons: int | None = None, max_lesson_bytes: int | None = None) -> None:
        self.max_lessons = max_lessons
        self.max_lesson_bytes = max_lesson_bytes
        super().__init__(home)
        # Query caches are per instance and never see other processes' writes: disable them.
        self._trajectories: Table = self._db.table(TRAJECTORIES, cache_size=0)
        self._lessons: Table = self._db.table(LESSONS, cache_size=0)

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
        with self._reading():
            return self._get(trajectory_id)[1]

    def list_trajectories(self, limit: int | None = None) -> list[Trajectory]:
        """Stored trajectories, newest (by creation) first, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise InvalidRequest(f"limit must be 0 or more, not {limit}")
        if self.read_problem is not None:
            return []
        with self._reading():
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

    def remove_stale(self, older_than_days: float) -> list[dict[str, Any]]:
        """Remove trajectories not updated for ``older_than_days``; returns the removed records as stored."""
        if not older_than_days >= 0:
            raise InvalidRequest(f"older_than_days must be 0 or more, not {older_than_days}")
        cutoff = time.time() - older_than_days * 86400.0
        with self._locked():
            stale = [d for d in self._trajectories if d.get("updated_at", 0) < cutoff]
            if stale:
                self._trajectories.remove(doc_ids=[d.doc_id for d in stale])
        if stale:
            log.info("pruned %d trajectories older than %s days", len(stale), older_than_days)
        return [dict(d) for d in stale]

    def records(self) -> list[dict[str, Any]]:
        """Every stored trajectory record as stored (even ones this version cannot parse)."""
        if self.read_problem is not None:
            return []
        with self._reading():
            return [dict(d) for d in self._trajectories]

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
                self._cap_lessons()

    def _cap_lessons(self) -> None:
        """Past the count or size cap, drop the least recalled lessons (the oldest first among equals)."""
        docs = sorted(self._lessons, key=lambda d: (d.get("recalls", 0), d.get("created_at", 0)))
        sizes = [len(json.dumps(d, ensure_ascii=False, separators=(",", ":"))) for d in docs]
        total, drop = sum(sizes), 0
        while drop < len(docs) and (
            (self.max_lessons is not None and len(docs) - drop > self.max_lessons)
            or (self.max_lesson_bytes is not None and total > self.max_lesson_bytes)
        ):
            total -= sizes[drop]
            drop += 1
        if drop:
            self._lessons.remove(doc_ids=[d.doc_id for d in docs[:drop]])
            log.info("dropped %d least recalled lessons to stay under the lessons cap", drop)

    def note_recalled(self, lesson_ids: list[str]) -> None:
        """Count one recall for each id (once per occurrence); best effort: a read-only store skips it."""
        if not lesson_ids or self.write_problem is not None:
            return
        counts: dict[int, int] = {}
        for lesson_id in lesson_ids:
            counts[_lesson_doc_id(lesson_id)] = counts.get(_lesson_doc_id(lesson_id), 0) + 1
        by_count: dict[int, list[int]] = {}
        for doc_id, n in counts.items():
            by_count.setdefault(n, []).append(doc_id)
        try:
            with self._locked():
                present = {d.doc_id for d in self._lessons}
                for n, doc_ids in by_count.items():  # one write per distinct count, usually one in all
                    ids = [i for i in doc_ids if i in present]
                    if ids:
                        self._lessons.update(_add_recalls(n), doc_ids=ids)
        except MemoryStoreError as exc:
            log.warning("could not count lesson recalls: %s", exc)

    def lessons(self) -> list[Lesson]:
        """Every stored lesson, oldest first."""
        if self.read_problem is not None:
            return []
        with self._reading():
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
        with self._reading():
            trajectories = [dict(d) for d in self._trajectories]
            lessons = [dict(d) for d in self._lessons]
        trajectories.sort(key=lambda d: d.get("created_at", 0), reverse=True)
        lessons.sort(key=lambda d: d.get("created_at", 0))
        return {"schema_version": self.schema_version, "trajectories": trajectories,
                "lessons": lessons}
