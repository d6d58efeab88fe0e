"""MemoryStore: persistence, cross-process safety, crash and corruption handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gems_mcp import errors
from gems_mcp.memory.store import (
    SCHEMA_VERSION,
    MemoryCorrupted,
    MemorySchemaTooNew,
    MemoryStore,
    MemoryStoreError,
    UnknownTrajectory,
)
from gems_mcp.types import Lesson, Requirement, Trajectory
from tests.memory.factories import make_round, make_trajectory

REPO = Path(__file__).resolve().parents[2]


def _lesson(text: str, lesson_id: str | None = None) -> Lesson:
    lesson = Lesson(trajectory_id="t-1", intent="three red circles", question="Are there three?",
                    kind="count", text=text)
    return lesson.model_copy(update={"id": lesson_id}) if lesson_id else lesson


def _writer(home: Path, shared_id: str, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory._writer", str(home), shared_id, tag, str(count)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )


def _appender(home: Path, trajectory_id: str, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory._appender", str(home), trajectory_id, tag, str(count)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )


def _with_intent(intent: str) -> Callable[[Trajectory], Trajectory]:
    return lambda t: t.model_copy(update={"intent": intent})


# -- persistence -------------------------------------------------------------------------------


def test_restart_keeps_trajectories_and_lessons(home: Path) -> None:
    first = MemoryStore(home)
    traj = make_trajectory(4)
    first.save_trajectory(traj)
    first.add_lessons([_lesson("state the count first")])

    again = MemoryStore(home)

    assert again.get_trajectory(traj.id) == traj
    assert [lesson.text for lesson in again.lessons()] == ["state the count first"]


def test_unknown_trajectory_is_one_sentence_of_fact(store: MemoryStore) -> None:
    with pytest.raises(UnknownTrajectory) as err:
        store.get_trajectory("t-123")
    assert str(err.value) == "there is no trajectory 't-123'"
    assert err.value.trajectory_id == "t-123"
    assert isinstance(err.value, errors.NotFound) and not isinstance(err.value, LookupError)  # no built-in base
    assert UnknownTrajectory is errors.UnknownTrajectory


def test_memory_errors_hang_on_the_one_tree() -> None:
    for cls in (MemoryStoreError, MemoryCorrupted, MemorySchemaTooNew):
        assert issubclass(cls, errors.StoreError) and issubclass(cls, errors.GemsError)


def test_save_inserts_and_refuses_an_id_already_stored(store: MemoryStore) -> None:
    traj = make_trajectory(2)
    store.save_trajectory(traj)
    traj.rounds.append(make_round(3, {"q1": True}))
    traj.status = "done"

    with pytest.raises(errors.InvalidRequest, match="already stored"):
        store.save_trajectory(traj)

    stored = store.get_trajectory(traj.id)
    assert (len(stored.rounds), stored.status) == (2, "active")
    assert len(store.list_trajectories()) == 1


def test_update_trajectory_stores_and_returns_the_new_version(store: MemoryStore) -> None:
    traj = make_trajectory(1)
    store.save_trajectory(traj)

    def add_round(t: Trajectory) -> Trajectory:
        t.rounds.append(make_round(2, {"q1": True}))
        return t

    returned = store.update_trajectory(traj.id, add_round)

    assert len(returned.rounds) == 2
    assert store.get_trajectory(traj.id) == returned
    assert returned.updated_at >= traj.updated_at


def test_failed_update_leaves_the_stored_trajectory_unchanged(store: MemoryStore) -> None:
    traj = make_trajectory(2)
    store.save_trajectory(traj)

    def broken(t: Trajectory) -> Trajectory:
        t.rounds.clear()
        raise RuntimeError("refiner crashed")

    with pytest.raises(RuntimeError):
        store.update_trajectory(traj.id, broken)
    assert len(store.get_trajectory(traj.id).rounds) == 2


def test_update_may_not_change_the_id(store: MemoryStore) -> None:
    traj = make_trajectory(1)
    store.save_trajectory(traj)
    with pytest.raises(ValueError, match="changed the id"):
        store.update_trajectory(traj.id, lambda t: t.model_copy(update={"id": "t-other"}))
    assert store.get_trajectory(traj.id) == traj


def test_list_is_newest_first_and_limited(store: MemoryStore) -> None:
    trajs = [make_trajectory(1) for _ in range(3)]
    for i, traj in enumerate(trajs):
        traj.created_at = 1000.0 + i
        store.save_trajectory(traj)

    assert [t.id for t in store.list_trajectories()] == [t.id for t in reversed(trajs)]
    assert [t.id for t in store.list_trajectories(limit=2)] == [trajs[2].id, trajs[1].id]


def test_delete_and_prune_remove_only_what_they_name(store: MemoryStore) -> None:
    old, recent, doomed = make_trajectory(1), make_trajectory(1), make_trajectory(1)
    old.updated_at = time.time() - 10 * 86400
    for traj in (old, recent, doomed):
        store.save_trajectory(traj)

    store.delete_trajectory(doomed.id)
    assert len(store.remove_stale(older_than_days=7)) == 1

    assert [t.id for t in store.list_trajectories()] == [recent.id]
    with pytest.raises(UnknownTrajectory):
        store.delete_trajectory(doomed.id)


def test_adding_the_same_lesson_twice_keeps_one(store: MemoryStore) -> None:
    lesson = _lesson("repeat the count", lesson_id="l-fixed")
    store.add_lessons([lesson])
    store.add_lessons([lesson, _lesson("name colors before shapes")])
    assert sorted(x.text for x in store.lessons()) == ["name colors before shapes", "repeat the count"]


def test_a_second_store_sees_writes_of_the_first(home: Path) -> None:
    reader, writer = MemoryStore(home), MemoryStore(home)
    traj = make_trajectory(1)
    writer.save_trajectory(traj)
    assert reader.get_trajectory(traj.id).rounds[0].prompt == traj.rounds[0].prompt

    for n in range(2, 6):  # quick successive writes: same size and mtime tick are likely
        writer.update_trajectory(traj.id, _with_intent(f"v{n}"))
        assert reader.get_trajectory(traj.id).intent == f"v{n}"


def test_cache_notices_a_new_version_with_the_same_inode_size_and_mtime(
    home: Path, tmp_path: Path
) -> None:
    # Inodes are reused after a replace and mtimes are coarse: two versions can share all three.
    traj = make_trajectory(1)
    MemoryStore(home).save_trajectory(traj)
    reader = MemoryStore(home)
    assert reader.get_trajectory(traj.id).intent == traj.intent
    db = home / "trajectories" / f"{traj.id}.json"
    before = db.stat()
    MemoryStore(tmp_path).save_trajectory(traj.model_copy(update={"intent": "X" * len(traj.intent)}))
    newer = (tmp_path / "trajectories" / f"{traj.id}.json").read_bytes()
    assert len(newer) == before.st_size

    with open(db, "r+b") as f:  # same inode
        f.write(newer)
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert reader.get_trajectory(traj.id).intent == "X" * len(traj.intent)


# -- several processes -------------------------------------------------------------------------


def test_two_processes_writing_200_rounds_each_lose_nothing(home: Path, store: MemoryStore) -> None:
    shared = Trajectory(intent="shared", checklist=[Requirement(id="q1", question="Is it red?")])
    store.save_trajectory(shared)
    writers = [_writer(home, shared.id, tag, 200) for tag in ("a", "b")]
    for proc in writers:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    (home / "go").touch()
    for proc in writers:
        assert proc.wait(timeout=120) == 0

    final = MemoryStore(home).get_trajectory(shared.id)
    prompts = [r.prompt for r in final.rounds]
    assert len(prompts) == 400
    for tag in ("a", "b"):
        assert [p for p in prompts if p.startswith(f"{tag}-")] == [f"{tag}-{i}" for i in range(200)]
    assert [r.index for r in final.rounds] == list(range(1, 401))
    assert {t.id for t in store.list_trajectories()} == {shared.id, "t-own-a", "t-own-b"}
    assert len(store.lessons()) == 8


def test_two_processes_appending_to_one_trajectory_number_rounds_without_gaps(
    home: Path, store: MemoryStore
) -> None:
    # Both processes number each round inside update_trajectory's fn (len(rounds) + 1): only a
    # read-modify-write under the lock gives 1..200 with no gap, duplicate or lost round.
    shared = Trajectory(intent="shared", checklist=[Requirement(id="q1", question="Is it red?")],
                        max_rounds=200)
    store.save_trajectory(shared)
    appenders = [_appender(home, shared.id, tag, 100) for tag in ("a", "b")]
    for proc in appenders:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    (home / "go").touch()
    for proc in appenders:
        assert proc.wait(timeout=120) == 0

    rounds = MemoryStore(home).get_trajectory(shared.id).rounds
    assert [r.index for r in rounds] == list(range(1, 201))
    for tag in ("a", "b"):
        assert [r.prompt for r in rounds if r.prompt.startswith(f"{tag}-")] == [f"{tag}-{i}" for i in range(100)]


def test_kill_9_during_writes_leaves_a_database_that_loads(home: Path, store: MemoryStore) -> None:
    shared = Trajectory(intent="shared", checklist=[Requirement(id="q1", question="Is it red?")])
    store.save_trajectory(shared)
    for attempt, delay in enumerate((0.0, 0.013, 0.031)):
        (home / "go").unlink(missing_ok=True)
        proc = _writer(home, shared.id, f"k{attempt}", 0)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        before = len(store.get_trajectory(shared.id).rounds)
        (home / "go").touch()
        deadline = time.time() + 30
        while len(store.get_trajectory(shared.id).rounds) < before + 20 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    reopened = MemoryStore(home)
    rounds = reopened.get_trajectory(shared.id).rounds
    assert len(rounds) >= 60
    assert [r.index for r in rounds] == list(range(1, len(rounds) + 1))
    assert not list(home.glob("**/*.tmp-*")), "interrupted temp files are cleaned up"
    # every trajectory is whole: the shared one and each killed writer's own
    assert {t.id for t in reopened.list_trajectories()} == {shared.id, "t-own-k0", "t-own-k1", "t-own-k2"}
    # The dead writer's lock is gone: a new write goes through at once.
    reopened.update_trajectory(shared.id, lambda t: t.model_copy(update={"status": "done"}))
    assert MemoryStore(home).get_trajectory(shared.id).status == "done"


# -- corruption and schema ---------------------------------------------------------------------


def test_a_truncated_trajectory_file_is_moved_aside_and_the_others_stay_readable(
    home: Path, store: MemoryStore
) -> None:
    broken, intact = make_trajectory(3), make_trajectory(2)
    store.save_trajectory(broken)
    store.save_trajectory(intact)
    shard = home / "trajectories" / f"{broken.id}.json"
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])

    reopened = MemoryStore(home)
    with pytest.raises(MemoryCorrupted) as err:
        reopened.get_trajectory(broken.id)

    assert err.value.backup.read_bytes() == original[: len(original) // 2]
    assert str(shard) in str(err.value)
    assert [t.id for t in reopened.list_trajectories()] == [intact.id]
    assert reopened.get_trajectory(intact.id) == intact


def test_a_corrupt_index_is_moved_aside_rebuilt_from_the_trajectory_files_and_says_so(
    home: Path, store: MemoryStore
) -> None:
    trajs = [make_trajectory(2) for _ in range(3)]
    for traj in trajs:
        store.save_trajectory(traj)
    index = home / "memory.json"
    index.write_bytes(index.read_bytes()[:40])

    reopened = MemoryStore(home)

    [backup] = home.glob("memory.json.corrupt-*")
    notice = reopened.take_notice()
    assert notice is not None and str(index) in notice and str(backup) in notice
    assert {t.id for t in reopened.list_trajectories()} == {t.id for t in trajs}
    reopened.save_trajectory(make_trajectory(1))
    assert len(MemoryStore(home).list_trajectories()) == 4


def test_corruption_under_an_open_store_is_reported_on_the_next_read(
    home: Path, store: MemoryStore
) -> None:
    traj = make_trajectory(1)
    store.save_trajectory(traj)
    (home / "trajectories" / f"{traj.id}.json").write_bytes(b"\x00\x01 not json at all")

    with pytest.raises(MemoryCorrupted) as err:
        store.get_trajectory(traj.id)

    assert err.value.backup.read_bytes() == b"\x00\x01 not json at all"


def test_empty_file_is_corrupt_not_an_empty_database(home: Path) -> None:
    (home / "memory.json").write_bytes(b"")
    assert "empty" in (MemoryStore(home).take_notice() or "")
    assert list(home.glob("memory.json.corrupt-*"))


def test_old_file_without_a_schema_version_is_migrated(home: Path) -> None:
    traj = make_trajectory(2)
    plain_tinydb = {"trajectories": {"1": traj.model_dump(mode="json")}}
    (home / "memory.json").write_text(json.dumps(plain_tinydb))

    store = MemoryStore(home)

    assert store.schema_version == SCHEMA_VERSION
    assert store.get_trajectory(traj.id) == traj
    assert json.loads((home / "memory.json.bak-v0").read_text()) == plain_tinydb


def test_file_from_a_newer_version_is_refused_and_left_alone(home: Path) -> None:
    newer = json.dumps({"_meta": {"1": {"schema_version": SCHEMA_VERSION + 1}}, "trajectories": {}})
    (home / "memory.json").write_text(newer)

    store = MemoryStore(home)  # starts, read-only: nothing of the newer file is touched
    with pytest.raises(MemoryStoreError, match="upgrade gems-mcp"):
        store.save_trajectory(make_trajectory(1))
    with pytest.raises(MemoryStoreError, match="upgrade gems-mcp"):
        store.get_trajectory("t-1")
    assert (home / "memory.json").read_text() == newer
