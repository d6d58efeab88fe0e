"""`gems-mcp memory import`: what export writes comes back whole; bad files are refused and leave nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gems_mcp.memory.lessons import extract_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Trajectory
from tests.memory.factories import make_trajectory
from tests.memory.factories import run_memory_command as _run


@pytest.fixture
def exported(store: MemoryStore, tmp_path: Path) -> Path:
    """An export of three trajectories (one done) and their lessons, one recalled twice."""
    trajs = [make_trajectory(n) for n in (2, 5, 12)]
    trajs[2].status = "done"
    for i, traj in enumerate(trajs):
        traj.created_at += i
        store.save_trajectory(traj)
    lessons = extract_lessons(trajs[2])
    store.add_lessons(lessons)
    store.note_recalled([lessons[0].id, lessons[0].id])
    out = tmp_path / "export.json"
    assert _run("memory", "export", "--out", str(out)) == 0
    return out


def _move_to(home: Path, monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    monkeypatch.setenv("GEMS_HOME", str(home))
    return MemoryStore(home)


def test_export_then_import_into_a_new_home_gives_back_the_same_export(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _move_to(tmp_path / "other", monkeypatch)
    capsys.readouterr()

    assert _run("memory", "import", str(exported)) == 0
    assert "Imported 3 trajectories" in capsys.readouterr().out
    again = tmp_path / "again.json"
    assert _run("memory", "export", "--out", str(again)) == 0

    first, second = json.loads(exported.read_text()), json.loads(again.read_text())
    assert second == first
    assert max(lesson.recalls for lesson in other.lessons()) == 2
    assert [t.status for t in other.list_trajectories()] == ["done", "active", "active"]


def test_importing_ids_already_stored_skips_them_and_counts_them(
    exported: Path, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store.export()
    capsys.readouterr()
    assert _run("memory", "import", str(exported)) == 0
    out = capsys.readouterr().out
    assert "Imported 0 trajectories and 0 lessons" in out
    assert f"skipped 3 trajectories and {len(before['lessons'])} lessons already stored" in out
    assert store.export() == before


def test_refusing_existing_ids_writes_nothing_and_says_how_many(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(exported.read_text())
    other = _move_to(tmp_path / "other", monkeypatch)
    other.save_trajectory(Trajectory.model_validate(data["trajectories"][1]))
    capsys.readouterr()

    assert _run("memory", "import", "--existing", "refuse", str(exported)) == 2
    err = capsys.readouterr().err
    assert "1 of the records to import are already stored" in err and "nothing was imported" in err
    assert len(other.list_trajectories()) == 1 and other.lessons() == []


def test_a_record_with_a_bad_field_is_refused_with_its_line_and_field_and_nothing_is_stored(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(exported.read_text())
    data["trajectories"][2]["rounds"][1]["index"] = "second"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, indent=2))
    record_line = next(i for i, line in enumerate(bad.read_text().splitlines(), 1)
                       if f'"id": "{data["trajectories"][2]["id"]}"' in line) - 1
    other = _move_to(tmp_path / "other", monkeypatch)
    capsys.readouterr()

    assert _run("memory", "import", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"line {record_line}: trajectories[2] field 'rounds.1.index'" in err
    assert "nothing was imported" in err and err.count("\n") == 1
    assert other.list_trajectories() == [] and other.lessons() == []
    assert not list((tmp_path / "other" / "trajectories").glob("*.json"))


def test_a_file_that_is_not_json_is_refused_with_the_line(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = exported.read_text().splitlines()
    lines[7] = lines[7] + " }{"
    bad = tmp_path / "bad.json"
    bad.write_text("\n".join(lines))
    other = _move_to(tmp_path / "other", monkeypatch)
    capsys.readouterr()

    assert _run("memory", "import", str(bad)) == 2
    assert "line 8" in capsys.readouterr().err
    assert other.list_trajectories() == []


def test_a_duplicate_id_inside_the_file_is_refused(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(exported.read_text())
    data["trajectories"].append(data["trajectories"][0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, indent=2))
    other = _move_to(tmp_path / "other", monkeypatch)
    capsys.readouterr()

    assert _run("memory", "import", str(bad)) == 2
    # line 1 '{', 2 schema_version, 3 '"trajectories": [', 4 the first record's '{'
    assert f"id {data['trajectories'][0]['id']!r} already appears on line 4" in capsys.readouterr().err
    assert other.list_trajectories() == []


def test_a_missing_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("memory", "import", str(tmp_path / "nope.json")) == 2
    err = capsys.readouterr().err
    assert "nope.json cannot be read (No such file or directory)" in err and err.count("\n") == 1
