"""Lessons on disk: appended without a rewrite, capped through their small index, compacted when it pays."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gems_mcp.memory import lesson_store
from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Lesson


def _lesson(i: int) -> Lesson:
    return Lesson(trajectory_id=f"t-{i}", intent=f"intent {i}", question="Is it red?", kind="color",
                  text=f"lesson {i} " + "x" * 200, created_at=time.time() + i)


def test_keeping_lessons_rewrites_a_small_file_and_appends_to_the_large_one_byte_for_byte(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lesson_store, "SEGMENT_BYTES", 3000)
    store = MemoryStore(home)
    store.add_lessons([_lesson(i) for i in range(20)])  # past SEGMENT_BYTES: merged into lessons.json
    before = (home / "lessons.json").read_bytes()

    store.add_lessons([_lesson(20)])
    assert (home / "lessons.json").read_bytes() == before, "one trajectory's lessons leave lessons.json alone"
    store.add_lessons([_lesson(i) for i in range(21, 40)])

    after = (home / "lessons.json").read_bytes()
    assert before[before.index(b',"lessons":{') : -2] in after and len(after) > len(before)
    assert [x.text.split()[1] for x in MemoryStore(home).lessons()] == [str(i) for i in range(40)]


def test_lessons_dropped_by_the_cap_are_never_recalled_and_the_file_is_compacted(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lesson_store, "COMPACT_SLACK_BYTES", 0)
    monkeypatch.setattr(lesson_store, "SEGMENT_BYTES", 1000)
    store = MemoryStore(home, max_lessons=5)
    for i in range(40):
        store.add_lessons([_lesson(i)])

    kept = [x.text.split()[1] for x in MemoryStore(home, max_lessons=5).lessons()]
    assert kept == ["35", "36", "37", "38", "39"]
    stored = [json.loads((home / name).read_text())["lessons"] for name in ("lessons.json", "lessons-new.json")]
    assert sum(len(docs) for docs in stored) <= 2 * 5 + 5, "dropped lessons' text does not pile up"
    assert {doc["text"].split()[1] for doc in store.export()["lessons"]} == set(kept)


def test_a_lost_lesson_index_is_made_again_from_the_lessons(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lesson_store, "SEGMENT_BYTES", 100)  # every add merged into lessons.json
    store = MemoryStore(home)
    store.add_lessons([_lesson(i) for i in range(3)])
    (home / "lessons-index.json").unlink()

    assert len(MemoryStore(home).lessons()) == 3
    MemoryStore(home).add_lessons([_lesson(3)])
    assert len(MemoryStore(home).lessons()) == 4
