"""LessonFile: the lessons of one home in their own tinydb file, and a small index beside it.

lessons.json holds each lesson's text as it was kept; lessons-index.json holds, per lesson, only
what the cap and the recall counts need (id, recalls, created_at, size). Counting a recall, which
every recall_memory with a query does, rewrites the small index, never the lessons themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, Field, ValidationError

from gems_mcp.memory.storage import (
    LOCK_TIMEOUT_S,
    META,
    SCHEMA_VERSION,
    AtomicJSONStorage,
    RawTables,
    holding,
    schema_version,
)
from gems_mcp.types import Lesson

log = logging.getLogger(__name__)

LESSONS_NAME = "lessons.json"
INDEX_NAME = "lessons-index.json"
LESSONS = "lessons"
RECALLS = "recalls"


def lesson_doc_id(lesson_id: str) -> str:
    """A stable tinydb document id for a lesson, so re-adding one is a no-op."""
    return str(int.from_bytes(hashlib.blake2b(lesson_id.encode(), digest_size=6).digest(), "big"))


class _LessonsFileDoc(BaseModel):
    """lessons.json as pydantic reads it in one pass."""

    meta: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="_meta")
    lessons: dict[str, Lesson] = Field(default_factory=dict)


def _size(record: dict[str, Any]) -> int:
    return len(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


class LessonFile:
    """Lessons and their index, both written atomically under one lock of their own."""

    def __init__(self, home: Path) -> None:
        self.path = home / LESSONS_NAME
        self.lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self.bodies = AtomicJSONStorage(self.path, self.lock)
        self.index = AtomicJSONStorage(home / INDEX_NAME, self.lock)
        self._mutex = threading.RLock()
        self._parsed: tuple[object, dict[str, Lesson]] | None = None  # (file identity, lessons)

    # -- reading (no lock) -----------------------------------------------------------------

    def _tables(self) -> tuple[dict[str, Any], dict[str, Any]]:
        bodies = (self.bodies.read() or {}).get(LESSONS) or {}
        index = (self.index.read() or {}).get(RECALLS) or {}
        return bodies, index

    def lessons(self) -> list[Lesson]:
        """Every stored lesson with its recall count, oldest first."""
        with self._mutex:
            parsed = self._parsed_lessons()
            index = (self.index.read() or {}).get(RECALLS) or {}
        out = []
        for doc_id, lesson in parsed.items():
            recalls = (index.get(doc_id) or {}).get("recalls", lesson.recalls)
            out.append(lesson if recalls == lesson.recalls else lesson.model_copy(update={"recalls": recalls}))
        out.sort(key=lambda lesson: lesson.created_at)
        return out

    def _parsed_lessons(self) -> dict[str, Lesson]:
        """The lessons parsed once per version of the file, by pydantic straight from its bytes.

        A file pydantic refuses whole (one bad lesson, a damaged file, a newer schema) goes the slow
        way: read() (which moves a damaged file aside) and one lesson at a time, skipping bad ones.
        """
        identity = self.bodies.identity()
        if self._parsed is not None and self._parsed[0] == identity:
            return self._parsed[1]
        raw = self.bodies.read_bytes()
        parsed: dict[str, Lesson] | None = {} if raw is None else None
        if raw is not None:
            try:
                doc = _LessonsFileDoc.model_validate_json(raw)
                parsed = doc.lessons if schema_version({META: doc.meta}) <= SCHEMA_VERSION else None
            except ValidationError:
                parsed = None
        if parsed is None:
            parsed = self._validated((self.bodies.read() or {}).get(LESSONS) or {})
        self._parsed = (identity, parsed)
        return parsed

    def _validated(self, bodies: dict[str, Any]) -> dict[str, Lesson]:
        parsed: dict[str, Lesson] = {}
        for doc_id, doc in bodies.items():
            try:
                parsed[doc_id] = Lesson.model_validate(doc)
            except ValidationError as exc:
                log.warning("skipping unreadable lesson %r in %s: %s", doc.get("id"), self.path, exc)
        return parsed

    def records(self) -> list[dict[str, Any]]:
        """Every lesson as stored, its recall count from the index."""
        with self._mutex:
            bodies, index = self._tables()
            return [{**doc, "recalls": (index.get(k) or {}).get("recalls", doc.get("recalls", 0))}
                    for k, doc in bodies.items()]

    def known(self, lesson_ids: list[str]) -> set[str]:
        """Which of these lesson ids are stored."""
        with self._mutex:
            bodies, _ = self._tables()
        return {i for i in lesson_ids if lesson_doc_id(i) in bodies}

    # -- writing (under self.lock) ---------------------------------------------------------

    def add(self, records: list[dict[str, Any]], max_count: int | None, max_bytes: int | None) -> int:
        """Store lesson records whose id is new, then hold the cap; how many were added."""
        with holding(self.lock, self.path), self._mutex:
            bodies, index = (dict(t) for t in self._tables())
            added = 0
            for record in records:
                doc_id = lesson_doc_id(record["id"])
                if doc_id in bodies:
                    continue
                bodies[doc_id] = record
                index[doc_id] = {"id": record["id"], "recalls": record.get("recalls", 0),
                                 "created_at": record.get("created_at", 0), "bytes": _size(record)}
                added += 1
            if added:
                self._cap(bodies, index, max_count, max_bytes)
                self._write(bodies, index)
            return added

    def _cap(self, bodies: dict[str, Any], index: dict[str, Any], max_count: int | None,
             max_bytes: int | None) -> None:
        """Past the count or size cap, drop the least recalled lessons (the oldest first among equals)."""
        for doc_id in bodies.keys() - index.keys():  # a lesson kept before the index: count it now
            index[doc_id] = {"id": bodies[doc_id].get("id"), "recalls": bodies[doc_id].get("recalls", 0),
                             "created_at": bodies[doc_id].get("created_at", 0), "bytes": _size(bodies[doc_id])}
        order = sorted(bodies, key=lambda k: (index[k].get("recalls", 0), index[k].get("created_at", 0)))
        total, drop = sum(index[k].get("bytes", 0) for k in order), 0
        while drop < len(order) and (
            (max_count is not None and len(order) - drop > max_count)
            or (max_bytes is not None and total > max_bytes)
        ):
            total -= index[order[drop]].get("bytes", 0)
            drop += 1
        for doc_id in order[:drop]:
            del bodies[doc_id], index[doc_id]
        if drop:
            log.info("dropped %d least recalled lessons to stay under the lessons cap", drop)

    def _write(self, bodies: dict[str, Any], index: dict[str, Any]) -> None:
        # The index first: a lesson it names that the bodies lack is skipped; the reverse is counted anew.
        self.index.write({RECALLS: index})
        self.bodies.write({LESSONS: bodies})

    def count_recalls(self, lesson_ids: list[str]) -> None:
        """One recall more for each id (once per occurrence): a write of the small index only."""
        with holding(self.lock, self.path), self._mutex:
            bodies, index = self._tables()
            index = dict(index)
            changed = False
            for lesson_id in lesson_ids:
                doc_id = lesson_doc_id(lesson_id)
                if doc_id not in bodies:
                    continue
                entry = dict(index.get(doc_id) or {"id": lesson_id, "recalls": bodies[doc_id].get("recalls", 0),
                                                   "created_at": bodies[doc_id].get("created_at", 0),
                                                   "bytes": _size(bodies[doc_id])})
                entry["recalls"] = entry.get("recalls", 0) + 1
                index[doc_id] = entry
                changed = True
            if changed:
                self.index.write({RECALLS: index})

    def replace_all(self, tables: RawTables) -> None:
        """Write lessons from a legacy single file (migration), keeping their doc ids (call under the lock)."""
        bodies = {lesson_doc_id(d["id"]) if isinstance(d.get("id"), str) else k: d
                  for k, d in (tables.get(LESSONS) or {}).items()}
        index = {k: {"id": d.get("id"), "recalls": d.get("recalls", 0), "created_at": d.get("created_at", 0),
                     "bytes": _size(d)} for k, d in bodies.items()}
        self._write(bodies, index)

    def remove_orphan_temps(self) -> None:
        self.bodies.remove_orphan_temps()
        self.index.remove_orphan_temps()
