"""LessonFile: the lessons of one home in their own tinydb file, and a small index beside it.

Three tinydb files under one lock:
- lessons-new.json: the lessons kept lately, with their rows; small, so keeping a finished
  trajectory's lessons rewrites only it. Past SEGMENT_BYTES it is merged into the two below.
- lessons.json: every older lesson's text, appended to as bytes (never parsed to add to).
- lessons-index.json: a row per older lesson kept (id, recalls, created_at, size): all the cap and
  the recall counts need. A row (here or in lessons-new.json) is what says a lesson is kept: the
  cap drops rows, and dropped text leaves lessons.json when it is next compacted.
Counting a recall, which every recall_memory with a query does, rewrites rows only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
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
SEGMENT_NAME = "lessons-new.json"
SEGMENT_BYTES = 64_000
"""lessons-new.json is merged into lessons.json past this size: about twenty finished trajectories' lessons."""
LESSONS = "lessons"
RECALLS = "recalls"
COUNT_WAIT_S = 0.05
COMPACT_SLACK_BYTES = 256_000
"""lessons.json is rewritten without the dropped lessons once they outweigh the kept ones by this much."""


def lesson_doc_id(lesson_id: str) -> str:
    """A stable tinydb document id for a lesson, so re-adding one is a no-op."""
    return str(int.from_bytes(hashlib.blake2b(lesson_id.encode(), digest_size=6).digest(), "big"))


class _LessonsFileDoc(BaseModel):
    """lessons.json as pydantic reads it in one pass."""

    meta: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="_meta")
    lessons: dict[str, Lesson] = Field(default_factory=dict)


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """What the index keeps of a lesson: all the cap and the recall counts need."""
    return {"id": record.get("id"), "recalls": record.get("recalls", 0),
            "created_at": record.get("created_at", 0), "bytes": len(_encode(record))}


def _cap(rows: dict[str, Any], max_count: int | None, max_bytes: int | None) -> list[str]:
    """Past the count or size cap, the least recalled lessons to drop (the oldest first among equals)."""
    total, drop = sum(row.get("bytes", 0) for row in rows.values()), 0
    if (max_count is None or len(rows) <= max_count) and (max_bytes is None or total <= max_bytes):
        return []  # under both caps, as nearly always: no sort
    order = sorted(rows, key=lambda k: (rows[k].get("recalls", 0), rows[k].get("created_at", 0)))
    while drop < len(order) and (
        (max_count is not None and len(order) - drop > max_count)
        or (max_bytes is not None and total > max_bytes)
    ):
        total -= rows[order[drop]].get("bytes", 0)
        drop += 1
    if drop:
        log.info("dropped %d least recalled lessons to stay under the lessons cap", drop)
    return order[:drop]


class LessonFile:
    """Lessons, their rows and the recent lessons' small file, written atomically under one lock of their own."""

    def __init__(self, home: Path) -> None:
        self.path = home / LESSONS_NAME
        self.lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self.bodies = AtomicJSONStorage(self.path, self.lock)
        self.index = AtomicJSONStorage(home / INDEX_NAME, self.lock)
        self.segment = AtomicJSONStorage(home / SEGMENT_NAME, self.lock)
        self._mutex = threading.RLock()
        self._parsed: tuple[object, dict[str, Lesson]] | None = None  # (file identity, lessons)

    # -- reading (no lock) -----------------------------------------------------------------

    def _older_rows(self) -> dict[str, Any]:
        """Rows of the lessons in lessons.json (made from it if the index is missing)."""
        tables = self.index.read()
        if tables is None:
            bodies = (self.bodies.read() or {}).get(LESSONS) or {}
            return {k: _row(doc) for k, doc in bodies.items()}
        return tables.get(RECALLS) or {}

    def _recent(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The recent lessons and their rows, from lessons-new.json."""
        tables = self.segment.read() or {}
        return tables.get(LESSONS) or {}, tables.get(RECALLS) or {}

    def _rows(self) -> dict[str, Any]:
        return {**self._older_rows(), **self._recent()[1]}

    def lessons(self) -> list[Lesson]:
        """Every stored lesson with its recall count, oldest first."""
        with self._mutex:
            recent_docs, _ = self._recent()
            parsed = {**self._parsed_lessons(), **self._validated(recent_docs)}
            rows = self._rows()
        out = []
        for doc_id, lesson in parsed.items():
            if doc_id not in rows:  # dropped by the cap; its text waits for the next compaction
                continue
            recalls = rows[doc_id].get("recalls", lesson.recalls)
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
        """Every lesson as stored, its recall count from its row."""
        with self._mutex:
            recent_docs, _ = self._recent()
            bodies = {**((self.bodies.read() or {}).get(LESSONS) or {}), **recent_docs}
            rows = self._rows()
        return [{**doc, "recalls": rows[k].get("recalls", doc.get("recalls", 0))}
                for k, doc in bodies.items() if k in rows]

    def known(self, lesson_ids: list[str]) -> set[str]:
        """Which of these lesson ids are stored."""
        with self._mutex:
            rows = self._rows()
        return {i for i in lesson_ids if lesson_doc_id(i) in rows}

    # -- writing (under self.lock) ---------------------------------------------------------

    def add(self, records: list[dict[str, Any]], max_count: int | None, max_bytes: int | None) -> int:
        """Store lesson records whose id is new, then hold the cap; how many were new.

        They go to lessons-new.json, the only file rewritten, unless it grows past SEGMENT_BYTES:
        then its lessons are appended to lessons.json (copied as bytes) and their rows to the index.
        """
        with holding(self.lock, self.path), self._mutex:
            older = dict(self._older_rows())
            recent_docs, recent_rows = (dict(t) for t in self._recent())
            fresh = 0
            for record in records:
                doc_id = lesson_doc_id(record["id"])
                if doc_id not in older and doc_id not in recent_rows:
                    recent_docs[doc_id], recent_rows[doc_id] = record, _row(record)
                    fresh += 1
            if not fresh:
                return 0
            older_before = len(older)
            for dropped in _cap({**older, **recent_rows}, max_count, max_bytes):
                older.pop(dropped, None)
                recent_rows.pop(dropped, None)
                recent_docs.pop(dropped, None)
            if sum(row.get("bytes", 0) for row in recent_rows.values()) > SEGMENT_BYTES:
                self._merge(older, recent_docs, recent_rows)
                return fresh
            if len(older) != older_before:
                self.index.write({RECALLS: older})
            self.segment.write({LESSONS: recent_docs, RECALLS: recent_rows})
            return fresh

    def _merge(self, older: dict[str, Any], recent_docs: dict[str, Any], recent_rows: dict[str, Any]) -> None:
        """Recent lessons into lessons.json and their rows into the index, then an empty lessons-new.json.

        In this order a crash leaves a lesson in both places at worst, never in neither.
        """
        rows = {**older, **recent_rows}
        live = sum(row.get("bytes", 0) for row in rows.values())
        on_disk = self.path.stat().st_size if self.path.exists() else 0
        if on_disk > 2 * live + COMPACT_SLACK_BYTES:
            bodies = (self.bodies.read() or {}).get(LESSONS) or {}
            kept = {k: doc for k, doc in {**bodies, **recent_docs}.items() if k in rows}
            self.bodies.write({META: {"1": {"schema_version": SCHEMA_VERSION}}, LESSONS: kept})
            log.info("lessons file %s compacted to the %d lessons kept", self.path, len(kept))
        elif recent_docs:
            self.bodies.append_documents(LESSONS, {k: _encode(r) for k, r in recent_docs.items()})
        self.index.write({RECALLS: rows})
        self.segment.write({LESSONS: {}, RECALLS: {}})

    def count_recalls(self, lesson_ids: list[str]) -> None:
        """One recall more for each id (once per occurrence): rows are rewritten, never lesson text.

        Counting is best effort and never makes a recall wait: while another process writes lessons
        (COUNT_WAIT_S and more), these recalls go uncounted.
        """
        try:
            self.lock.acquire(timeout=COUNT_WAIT_S)
        except Timeout:
            log.info("lesson recalls not counted: %s is busy", self.path)
            return
        try:
            self._count(lesson_ids)
        finally:
            self.lock.release()

    def _count(self, lesson_ids: list[str]) -> None:
        with self._mutex:
            older = dict(self._older_rows())
            recent_docs, recent_rows = (dict(t) for t in self._recent())
            touched: set[str] = set()
            for lesson_id in lesson_ids:
                doc_id = lesson_doc_id(lesson_id)
                for rows, name in ((older, "older"), (recent_rows, "recent")):
                    if doc_id in rows:
                        rows[doc_id] = {**rows[doc_id], "recalls": rows[doc_id].get("recalls", 0) + 1}
                        touched.add(name)
            if "older" in touched:
                self.index.write({RECALLS: older})
            if "recent" in touched:
                self.segment.write({LESSONS: recent_docs, RECALLS: recent_rows})

    def replace_all(self, tables: RawTables) -> None:
        """Write lessons from a legacy single file (migration), keeping their doc ids (call under the lock)."""
        bodies = {lesson_doc_id(d["id"]) if isinstance(d.get("id"), str) else k: d
                  for k, d in (tables.get(LESSONS) or {}).items()}
        self.bodies.write({META: {"1": {"schema_version": SCHEMA_VERSION}}, LESSONS: bodies})
        self.index.write({RECALLS: {k: _row(d) for k, d in bodies.items()}})
        self.segment.write({LESSONS: {}, RECALLS: {}})

    def remove_orphan_temps(self) -> None:
        for storage in (self.bodies, self.index, self.segment):
            storage.remove_orphan_temps()
