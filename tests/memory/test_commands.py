"""`gems-mcp memory` subcommands, called through argparse in-process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gems_mcp.memory.lessons import extract_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Trajectory
from tests.memory.factories import make_trajectory
from tests.memory.factories import run_memory_command as _run


@pytest.fixture
def stored(store: MemoryStore) -> list[Trajectory]:
    old, new = make_trajectory(3), make_trajectory(12)
    old.created_at = old.updated_at = time.time() - 30 * 86400
    for traj in (old, new):
        store.save_trajectory(traj)
    store.add_lessons(extract_lessons(new))
    return [old, new]


def test_list_shows_newest_first(stored: list[Trajectory], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("memory", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [stored[1].id, stored[0].id]
    assert "best   6/6" in lines[0]


def test_list_on_an_empty_home_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("memory", "list") == 0
    assert "No trajectories stored" in capsys.readouterr().out


def test_show_prints_the_view_under_the_budget(
    stored: list[Trajectory], capsys: pytest.CaptureFixture[str]
) -> None:
    traj = stored[1]
    assert _run("memory", "show", traj.id, "--budget", "1500") == 0
    out = capsys.readouterr().out
    assert len(out) <= 1500
    assert traj.intent[:30] in out
    assert "passing q1 q2 q3 q4 q5 q6" in out
    assert f"gems://trajectories/{traj.id}/sheet.png" in out


def test_show_unknown_id_fails_with_a_sentence_on_stderr(
    stored: list[Trajectory], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("memory", "show", "t-nope") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "gems-mcp memory: there is no trajectory 't-nope'; `gems-mcp memory list` shows the stored ones\n"
    )


def test_export_writes_every_trajectory_and_lesson(
    stored: list[Trajectory], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.json"
    assert _run("memory", "export", "--out", str(out)) == 0
    data = json.loads(out.read_text())

    assert {t["id"] for t in data["trajectories"]} == {t.id for t in stored}
    assert len(data["lessons"]) == len(extract_lessons(stored[1])) > 0
    assert Trajectory.model_validate(data["trajectories"][0]) == stored[1]
    assert "Exported 2 trajectories" in capsys.readouterr().out


def test_export_to_stdout_is_json(stored: list[Trajectory], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("memory", "export") == 0
    assert len(json.loads(capsys.readouterr().out)["trajectories"]) == 2


def test_prune_by_age_and_by_id(
    stored: list[Trajectory], store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("memory", "prune", "--older-than", "7") == 0
    assert [t.id for t in store.list_trajectories()] == [stored[1].id]
    assert _run("memory", "prune", "--trajectory", stored[1].id) == 0
    assert store.list_trajectories() == []
    assert store.lessons(), "lessons outlive the trajectories they came from"
    assert "Deleted 1 trajectories" in capsys.readouterr().out


def test_prune_rejects_negative_days_and_keeps_everything(
    stored: list[Trajectory], store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("memory", "prune", "--older-than", "-1") == 2
    assert "0 or more" in capsys.readouterr().err
    assert len(store.list_trajectories()) == 2


def test_prune_needs_exactly_one_selector() -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run("memory", "prune")
    assert exit_info.value.code == 2


def test_a_file_that_cannot_be_written_fails_the_job_with_exit_1_not_bad_usage(tmp_path, capsys):
    assert _run("memory", "export", "--out", str(tmp_path / "no-such-folder" / "all.json")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gems-mcp memory: ") and "no-such-folder" in err[0]
