"""Case 6: storage does not only grow: pruning takes images along, orphans are swept, lessons are capped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image

from gems_mcp.cli import main
from gems_mcp.config import load_settings
from gems_mcp.images import ImageStore
from gems_mcp.loop import AgentLoop
from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Candidate, GenerationParams, Lesson, Requirement, Round, Trajectory
from tests.fakes import FakeGenerator

DAY = 86400.0


def _png(images: ImageStore, shade: int, age_s: float = 7200) -> str:
    image_id = images.save(Image.new("RGB", (8, 8), (shade, shade, shade)))
    then = time.time() - age_s
    os.utime(images.path(image_id), (then, then))
    return image_id


def _trajectory(image_ids: list[str], age_days: float = 0, source: str | None = None) -> Trajectory:
    then = time.time() - age_days * DAY
    rnd = Round(index=1, prompt="p", mode="edit" if source else "generate",
                params=GenerationParams(width=8, height=8, source_image_id=source),
                candidates=[Candidate(image_id=i, seed=n) for n, i in enumerate(image_ids)])
    return Trajectory(intent="a red circle", checklist=[Requirement(id="q1", question="Is it red?")],
                      rounds=[rnd], created_at=then, updated_at=then)


def _home(tmp_path: Path) -> tuple[MemoryStore, ImageStore]:
    return MemoryStore(tmp_path), ImageStore(tmp_path / "images")


def test_memory_prune_removes_the_pruned_trajectories_images_and_keeps_shared_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEMS_HOME", str(tmp_path))
    store, images = _home(tmp_path)
    shared, old_only, new_only = _png(images, 1), _png(images, 2), _png(images, 3)
    old = _trajectory([shared, old_only], age_days=40)
    new = _trajectory([new_only], source=shared)  # an edit of the old trajectory's image
    store.save_trajectory(old)
    store.save_trajectory(new)

    assert main(["memory", "prune", "--older-than", "30"]) == 0

    assert [t.id for t in store.list_trajectories()] == [new.id]
    assert set(images.ids()) == {shared, new_only}
    assert "1 image" in capsys.readouterr().out


def test_memory_prune_of_one_trajectory_removes_its_images(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMS_HOME", str(tmp_path))
    store, images = _home(tmp_path)
    a, b = _png(images, 4), _png(images, 5)
    gone, kept = _trajectory([a]), _trajectory([b])
    store.save_trajectory(gone)
    store.save_trajectory(kept)
    assert main(["memory", "prune", "--trajectory", gone.id]) == 0
    assert set(images.ids()) == {b}


def test_images_prune_sweeps_orphans_but_not_referenced_or_fresh_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEMS_HOME", str(tmp_path))
    store, images = _home(tmp_path)
    used, orphan = _png(images, 6), _png(images, 7)
    fresh_orphan = _png(images, 8, age_s=10)  # a round being generated right now has no trajectory yet
    store.save_trajectory(_trajectory([used]))

    assert main(["images", "prune"]) == 0

    assert set(images.ids()) == {used, fresh_orphan}
    out = capsys.readouterr().out
    assert "1 " in out and orphan not in images.ids()


def test_images_prune_dry_run_deletes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEMS_HOME", str(tmp_path))
    _, images = _home(tmp_path)
    orphan = _png(images, 9)
    assert main(["images", "prune", "--dry-run"]) == 0
    assert orphan in images.ids()
    assert "would" in capsys.readouterr().out


def _lesson(i: int, size: int = 50) -> Lesson:
    return Lesson(trajectory_id=f"t-{i}", intent=f"intent {i}", question="Is it red?", kind="color",
                  text=f"lesson {i} " + "x" * size, created_at=time.time() + i)


def test_lessons_are_capped_in_count_dropping_the_least_recalled(tmp_path):
    store = MemoryStore(tmp_path, max_lessons=3)
    first = [_lesson(i) for i in range(3)]
    store.add_lessons(first)
    store.note_recalled([first[0].id, first[0].id, first[2].id])
    store.add_lessons([_lesson(3), _lesson(4)])
    kept = {lesson.text.split()[1] for lesson in store.lessons()}
    assert len(kept) == 3
    assert {"0", "2"} <= kept and "1" not in kept  # never recalled, oldest


def test_lessons_are_capped_in_size(tmp_path):
    store = MemoryStore(tmp_path, max_lessons=1000, max_lesson_bytes=5000)
    store.add_lessons([_lesson(i, size=900) for i in range(20)])
    assert sum(len(lesson.model_dump_json()) for lesson in store.lessons()) <= 5000
    assert len(store.lessons()) >= 3


def test_recall_counts_lessons_it_returns(tmp_path):
    settings = load_settings(home=tmp_path)
    loop = AgentLoop(settings, generator=FakeGenerator(), judge=None)
    loop.store.add_lessons([Lesson(trajectory_id="t-1", intent="four red circles above a square",
                                   question="Are there four red circles?", kind="count", text="say four first")])
    assert loop.recall(query="four red circles above a square").lessons
    assert loop.store.lessons()[0].recalls == 1


def test_retention_days_prunes_old_trajectories_and_their_images_at_start(tmp_path):
    store, images = _home(tmp_path)
    old_png, new_png = _png(images, 10), _png(images, 11)
    old, new = _trajectory([old_png], age_days=10), _trajectory([new_png], age_days=1)
    store.save_trajectory(old)
    store.save_trajectory(new)

    loop = AgentLoop(load_settings(home=tmp_path, retention_days=7), generator=FakeGenerator(), judge=None)

    assert [t.id for t in loop.store.list_trajectories()] == [new.id]
    assert set(loop.images.ids()) == {new_png}


def test_without_retention_days_nothing_is_pruned_at_start(tmp_path):
    store, images = _home(tmp_path)
    store.save_trajectory(_trajectory([_png(images, 12)], age_days=400))
    loop = AgentLoop(load_settings(home=tmp_path), generator=FakeGenerator(), judge=None)
    assert len(loop.store.list_trajectories()) == 1 and len(loop.images.ids()) == 1
