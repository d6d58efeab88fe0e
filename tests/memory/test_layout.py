"""The sharded layout: a round's write touches its own file, reads take no lock, old homes are split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import Timeout

from gems_mcp.memory import migration
from gems_mcp.memory.lesson_store import lesson_doc_id
from gems_mcp.memory.store import SCHEMA_VERSION, MemoryStore
from gems_mcp.types import Lesson, Trajectory
from tests.memory.factories import make_round, make_trajectory

REPO = Path(__file__).resolve().parents[2]


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def _add_round(traj: Trajectory) -> Trajectory:
    return traj.model_copy(update={"rounds": [*traj.rounds, make_round(len(traj.rounds) + 1, {"q1": True})]})


def _single_file_home(home: Path, trajs: list[Trajectory], lesson: Lesson) -> bytes:
    """A home as gems-mcp wrote it before the split: one tinydb file, schema 1."""
    tables = {
        "_meta": {"1": {"schema_version": 1}},
        "trajectories": {str(i + 1): t.model_dump(mode="json") for i, t in enumerate(trajs)},
        "lessons": {lesson_doc_id(lesson.id): lesson.model_dump(mode="json")},
    }
    body = json.dumps(tables).encode()
    (home / "memory.json").write_bytes(body)
    return body


def test_a_round_written_rewrites_its_own_file_and_nothing_else(home: Path, store: MemoryStore) -> None:
    mine, other = make_trajectory(3), make_trajectory(3)
    store.save_trajectory(mine)
    store.save_trajectory(other)
    untouched = [home / "memory.json", home / "trajectories" / f"{other.id}.json"]
    before = [_stamp(p) for p in untouched]
    own = _stamp(home / "trajectories" / f"{mine.id}.json")

    store.update_trajectory(mine.id, _add_round)

    assert [_stamp(p) for p in untouched] == before
    assert _stamp(home / "trajectories" / f"{mine.id}.json") != own
    # the index follows what it lists: a finished trajectory is indexed as done
    store.update_trajectory(mine.id, lambda t: t.model_copy(update={"status": "done"}))
    rows = json.loads((home / "memory.json").read_text())["trajectories"].values()
    assert {r["id"]: r["status"] for r in rows} == {mine.id: "done", other.id: "active"}


def test_opening_a_home_and_listing_the_newest_reads_no_other_trajectory(home: Path, store: MemoryStore) -> None:
    older, newest = make_trajectory(2), make_trajectory(2)
    newest.created_at = older.created_at + 1
    store.save_trajectory(older)
    store.save_trajectory(newest)
    (home / "trajectories" / f"{older.id}.json").write_bytes(b"garbage that a parse would move aside")

    reopened = MemoryStore(home)

    assert [t.id for t in reopened.list_trajectories(limit=1)] == [newest.id]
    assert reopened.take_notice() is None
    assert not list(home.glob("**/*.corrupt-*"))


def test_another_process_holding_the_write_locks_blocks_no_read_and_no_other_trajectory(
    home: Path, store: MemoryStore
) -> None:
    held, free = make_trajectory(2), make_trajectory(2)
    store.save_trajectory(held)
    store.save_trajectory(free)
    store.add_lessons([Lesson(trajectory_id=held.id, intent="red", question="Is it red?", kind="color",
                              text="say red twice")])
    holder = subprocess.Popen([sys.executable, "-m", "tests.memory._holder", str(home), held.id],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):  # the locks named are the ones a writer of `held` would wait on
            store.write_locks(held.id)[0].acquire(timeout=0)
        reader = MemoryStore(home)
        with ThreadPoolExecutor(1) as pool:
            reads = pool.submit(lambda: (reader.get_trajectory(held.id), reader.list_trajectories(),
                                         reader.lessons(), reader.update_trajectory(free.id, _add_round)))
            got, listed, lessons, written = reads.result(timeout=10)  # LOCK_TIMEOUT_S is 30 s
            counted = pool.submit(reader.note_recalled, [lessons[0].id])
            counted.result(timeout=10)  # counting a recall is best effort: it does not wait 30 s either
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert got == held and len(listed) == 2 and [x.text for x in lessons] == ["say red twice"]
    assert len(written.rounds) == 3


def test_a_single_file_home_is_split_on_first_start_and_the_old_file_kept(home: Path) -> None:
    trajs = [make_trajectory(2), make_trajectory(4)]
    trajs[1].created_at += 1
    lesson = Lesson(trajectory_id=trajs[0].id, intent="red", question="Is it red?", kind="color",
                    text="say red twice", recalls=3)
    original = _single_file_home(home, trajs, lesson)

    store = MemoryStore(home)

    assert store.schema_version == SCHEMA_VERSION == 2
    assert store.list_trajectories() == [trajs[1], trajs[0]]
    assert store.lessons() == [lesson]
    assert (home / "memory.json.bak-v1").read_bytes() == original
    assert sorted(p.name for p in (home / "trajectories").glob("*.json")) == sorted(f"{t.id}.json" for t in trajs)
    store.update_trajectory(trajs[0].id, _add_round)
    assert len(MemoryStore(home).get_trajectory(trajs[0].id).rounds) == 3


def test_a_split_killed_before_its_end_leaves_the_old_database_which_opens_and_splits_again(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trajs = [make_trajectory(2) for _ in range(3)]
    lesson = Lesson(trajectory_id=trajs[0].id, intent="red", question="Is it red?", kind="color", text="x")
    original = _single_file_home(home, trajs, lesson)

    def killed() -> None:  # the last step before the new index replaces the old file
        raise KeyboardInterrupt

    monkeypatch.setattr(migration.os, "sync", killed)
    with pytest.raises(KeyboardInterrupt):
        MemoryStore(home)
    monkeypatch.undo()
    assert (home / "memory.json").read_bytes() == original
    assert list((home / "trajectories").glob("*.json")), "the killed split had written trajectory files"

    store = MemoryStore(home)

    assert {t.id for t in store.list_trajectories()} == {t.id for t in trajs}
    assert store.get_trajectory(trajs[2].id) == trajs[2]
    assert [x.text for x in store.lessons()] == ["x"]


def test_ids_that_are_not_file_names_are_stored_under_a_digest(store: MemoryStore, home: Path) -> None:
    odd = make_trajectory(1).model_copy(update={"id": "../../etc/passwd"})
    store.save_trajectory(odd)
    assert store.get_trajectory(odd.id) == odd
    [file] = (home / "trajectories").glob("*.json")
    assert file.name.startswith("x-") and os.sep not in file.name[:-5]


def test_an_index_damaged_past_its_first_bytes_is_rebuilt_when_first_listed(home: Path, store: MemoryStore) -> None:
    trajs = [make_trajectory(1) for _ in range(3)]
    for traj in trajs:
        store.save_trajectory(traj)
    index = home / "memory.json"
    body = index.read_bytes()
    index.write_bytes(body[: len(body) - 30])  # start-up reads only the head: this opens

    reopened = MemoryStore(home)

    assert {t.id for t in reopened.list_trajectories()} == {t.id for t in trajs}
    notice = reopened.take_notice()
    assert notice is not None and "corrupt" in notice and str(index) in notice
    assert len(list(home.glob("memory.json.corrupt-*"))) == 1
