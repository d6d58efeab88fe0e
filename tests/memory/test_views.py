"""Views: derived experiences and the budgeted global view of a trajectory."""

from __future__ import annotations

import json
import re

import pytest

from gems_mcp.memory.views import MemoryView, build_view, derive_experience
from gems_mcp.types import Requirement, Trajectory
from tests.memory.factories import make_round, make_trajectory

SHEET = "gems://trajectories/t-1/sheet.png"


def _two_question_trajectory() -> Trajectory:
    checklist = [
        Requirement(id="q1", question="Is the square blue?", kind="color"),
        Requirement(id="q2", question="Are there exactly three red circles?", kind="count"),
    ]
    rounds = [
        make_round(1, {"q1": True, "q2": False}, prompt="red circles and a blue square"),
        make_round(2, {"q1": False, "q2": True}, prompt="three red circles and a square",
                   mode="edit"),
    ]
    return Trajectory(intent="three red circles and a blue square", checklist=checklist, rounds=rounds)


def _stated_status(view: MemoryView) -> dict[str, str]:
    """question id -> passing/failing/unjudged, read from the view's one-line summary."""
    stated = {}
    for group, ids in re.findall(r"(passing|failing|unjudged) ([q\d ]+)", view.summary):
        for qid in ids.split():
            stated[qid] = group
    return stated


# -- derived experience ------------------------------------------------------------------------


def test_derived_experience_names_the_flipped_questions() -> None:
    text = derive_experience(_two_question_trajectory(), 2)

    assert "Now passing: q2 (Are there exactly three red circles?)" in text
    assert "Newly failing: q1 (Is the square blue?)" in text
    assert "passed 1/2" in text
    assert 'added "three"' in text and 'removed "red' not in text and '"blue"' in text
    assert "edit" in text and "strength 0.6" in text


def test_derived_experience_stays_under_100_words_with_a_long_checklist() -> None:
    long_q = "Is the " + " ".join(f"word{i}" for i in range(30)) + " visible?"
    checklist = [Requirement(id=f"q{i}", question=long_q) for i in range(1, 21)]
    traj = Trajectory(intent="x", checklist=checklist, rounds=[
        make_round(1, {f"q{i}": False for i in range(1, 21)}, prompt="a " * 50),
        make_round(2, {f"q{i}": i % 2 == 0 for i in range(1, 21)}, prompt="b " * 50),
    ])

    text = derive_experience(traj, 2)

    assert len(text.split()) < 100
    assert all(f"q{i}" in text for i in range(2, 21, 2)), "every flipped question is named"


def test_first_round_experience_gives_score_and_failures() -> None:
    text = derive_experience(_two_question_trajectory(), 1)
    assert "passed 1/2" in text and "Still failing: q2" in text


# -- view --------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [500, 1000, 4000, 8000])
def test_view_of_50_rounds_stays_under_budget_and_states_every_status(budget: int) -> None:
    traj = make_trajectory(50)
    traj.rounds.append(make_round(51, {"q1": True, "q2": False, "q3": True, "q4": True,
                                       "q5": True, "q6": True}))
    best = traj.best_round()
    assert best is not None and len(traj.model_dump_json()) > 10 * budget

    view = build_view(traj, budget=budget, recent=3, sheet_uri=SHEET)

    assert len(view.model_dump_json()) < budget
    assert len(view.to_text()) < budget
    expected = {v.requirement_id: "passing" if v.passed else "failing"
                for v in best.best_candidate().verdicts or []}
    assert _stated_status(view) == expected
    for q in view.checklist:
        assert q.passed == (expected[q.id] == "passing")


def test_generous_budget_keeps_recent_rounds_verbatim_and_folds_the_rest() -> None:
    traj = make_trajectory(50)
    view = build_view(traj, budget=100_000, recent=3, sheet_uri=SHEET)

    assert [r.index for r in view.recent] == [48, 49, 50]
    assert [r.prompt for r in view.recent] == [" ".join(r.prompt.split()) for r in traj.rounds[-3:]]
    assert view.recent[-1].seeds == [50000, 50001]
    assert view.recent[-1].image_ids == ["img-050-0", "img-050-1"]
    assert view.digest is not None and view.digest.rounds == "1-47"
    assert view.digest.best == "round 12: 6/6"
    assert view.best is not None and (view.best.index, view.best.image_id) == (12, "img-012-0")
    assert view.checklist[0].history == "✗" + "✓" * 49
    assert view.sheet_uri == SHEET and view.compressed is None


def test_view_grows_no_larger_as_the_trajectory_grows() -> None:
    sizes = [len(build_view(make_trajectory(n), 4000, 3, SHEET).model_dump_json()) for n in (5, 20, 50)]
    raw = [len(make_trajectory(n).model_dump_json()) for n in (5, 20, 50)]
    assert max(sizes) < 4000
    assert raw[2] > 8 * raw[0]


def test_failed_questions_and_derived_experience_appear_for_recent_rounds() -> None:
    traj = _two_question_trajectory()
    view = build_view(traj, budget=4000, recent=3, sheet_uri=None)

    assert view.recent[1].failed == ["q1"]
    assert view.recent[1].experience is not None and "Now passing: q2" in view.recent[1].experience
    text = view.to_text()
    assert "q1 ✓ [✓✗]" in text and "q2 ✗ [✗✓]" in text


def test_unjudged_trajectory_view_says_so() -> None:
    traj = _two_question_trajectory()
    traj.rounds = [make_round(1, None)]
    view = build_view(traj, budget=2000, recent=3, sheet_uri=None)

    assert view.best is None and view.recent[0].passed is None
    assert _stated_status(view) == {"q1": "unjudged", "q2": "unjudged"}
    assert json.loads(view.model_dump_json())["checklist"][0]["history"] == "·"
