"""Lessons: kept when a trajectory ends, recalled for similar new prompts only."""

from __future__ import annotations

from pathlib import Path

import pytest

from gems_mcp.memory.lessons import classify_kind, extract_lessons, recall_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Region, Requirement, Trajectory
from tests.memory.factories import make_round

COUNT_FIX = "The model drew two circles when asked for three; put the number first and repeat it."
POSITION_FIX = "The square landed right of the circles; say 'on the left side' explicitly."


def _finished_trajectory() -> Trajectory:
    checklist = [
        Requirement(id="q1", question="Are there exactly three red circles?"),
        Requirement(id="q2", question="Is the blue square to the left of the circles?"),
        Requirement(id="q3", question="Is the background white?", kind="color"),
    ]
    rounds = [
        make_round(1, {"q1": False, "q2": False, "q3": True}, experience=COUNT_FIX,
                   prompt="red circles and a blue square"),
        make_round(2, {"q1": True, "q2": False, "q3": True}, experience=POSITION_FIX,
                   prompt="three red circles, three, and a blue square"),
        make_round(3, {"q1": True, "q2": True, "q3": True},
                   prompt="three red circles, a blue square on the left side"),
    ]
    return Trajectory(intent="three red circles to the right of a blue square", checklist=checklist,
                      rounds=rounds, skill="spatial", status="done", done_reason="all_passed")


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Are there exactly three red circles?", "count"),
        ("Are there 4 dogs?", "count"),
        ("Is the blue square to the left of the circles?", "position"),
        ("Is the cup in front of the laptop?", "position"),
        ("Is the background white?", "color"),
        ("Does the sign say 'OPEN'?", "text"),
        ('Is the word "hello" written on the wall?', "text"),
        ("Is it a watercolor painting?", "style"),
        ("Is the table wooden?", "attribute"),
        ("Is there a cat?", "object"),
        ("Is the cat asleep?", "other"),
    ],
)
def test_classify_kind_by_keywords(question: str, kind: str) -> None:
    assert classify_kind(question) == kind


def test_lessons_are_the_experiences_before_each_flip_to_pass() -> None:
    lessons = extract_lessons(_finished_trajectory())

    by_question = {lesson.question: lesson for lesson in lessons}
    assert set(by_question) == {
        "Are there exactly three red circles?",
        "Is the blue square to the left of the circles?",
    }
    count = by_question["Are there exactly three red circles?"]
    position = by_question["Is the blue square to the left of the circles?"]
    assert (count.kind, position.kind) == ("count", "position")
    assert COUNT_FIX in count.text and POSITION_FIX in position.text
    assert "on the left side" in position.text, "the prompt that worked is kept"
    assert {lesson.skill for lesson in lessons} == {"spatial"}
    assert all(len(lesson.text.split()) < 100 for lesson in lessons)


def test_lessons_without_agent_experience_are_derived_from_the_flip() -> None:
    traj = _finished_trajectory()
    for rnd in traj.rounds:
        rnd.experience = None
    lesson = next(x for x in extract_lessons(traj) if x.kind == "count")
    assert "Now passing: q1" in lesson.text


def test_extracting_twice_gives_the_same_lessons() -> None:
    traj = _finished_trajectory()
    assert [x.id for x in extract_lessons(traj)] == [x.id for x in extract_lessons(traj)]


def test_finished_lessons_are_recalled_for_a_similar_prompt_not_an_unrelated_one(home: Path) -> None:
    MemoryStore(home).add_lessons(extract_lessons(_finished_trajectory()))
    stored = MemoryStore(home).lessons()  # as a later server process would see them

    similar = recall_lessons(stored, "five red circles to the left of a green triangle")
    unrelated = recall_lessons(stored, "a watercolor portrait of an old fisherman at dawn")
    one_word = recall_lessons(stored, "a red apple on a kitchen table")

    assert {hit.lesson.text.split(";")[0] for hit in similar} == {
        COUNT_FIX.split(";")[0], POSITION_FIX.split(";")[0]
    }
    assert unrelated == [] and one_word == []


def test_matching_requirement_kind_ranks_first() -> None:
    lessons = extract_lessons(_finished_trajectory())

    counting = recall_lessons(lessons, "exactly seven red circles and a blue square")
    placing = recall_lessons(lessons, "red circles above and left of a blue square")

    assert counting[0].lesson.kind == "count" and counting[0].kind_match
    assert placing[0].lesson.kind == "position" and placing[0].kind_match


def test_kinds_filter_and_top_k() -> None:
    lessons = extract_lessons(_finished_trajectory())
    hits = recall_lessons(lessons, "three red circles left of a blue square", kinds={"position"})
    assert [h.lesson.kind for h in hits] == ["position"]
    assert len(recall_lessons(lessons, "three red circles left of a blue square", top_k=1)) == 1
    assert recall_lessons([], "three red circles") == []


def _layout(*boxes: tuple[float, float, float, float]) -> list[Region]:
    return [Region(prompt="a red circle", box=box) for box in boxes]


def _task(intent: str, question: str, kind: str, rounds: list) -> Trajectory:
    return Trajectory(intent=intent, checklist=[Requirement(id="q1", question=question, kind=kind)],  # type: ignore[arg-type]
                      rounds=rounds, status="done", done_reason="all_passed")


def test_a_round_fixed_by_a_new_layout_leaves_a_lesson_naming_the_layout_and_its_box_sizes() -> None:
    first = make_round(1, {"q1": False}, prompt="a red circle to the left of a blue square")
    second = make_round(2, {"q1": True}, prompt="a red circle to the left of a blue square")
    second = second.model_copy(update={"layout": _layout((0.05, 0.35, 0.35, 0.65))})
    traj = _task("a red circle left of a blue square", "Is the red circle to the left of the blue square?",
                 "position", [first, second])

    (lesson,) = extract_lessons(traj)

    assert "Lever that worked: new layout: 1 box about 0.30 x 0.30 of the image" in lesson.text
    assert "Same prompt" not in lesson.text and "Prompt that passed" not in lesson.text


def test_a_task_that_passes_in_round_1_leaves_a_lesson_too() -> None:
    only = make_round(1, {"q1": True}, prompt="four purple squares").model_copy(
        update={"layout": _layout((0.1, 0.1, 0.4, 0.4), (0.55, 0.1, 0.85, 0.4))})
    (lesson,) = extract_lessons(_task("four purple squares", "Are there exactly four purple squares?", "count", [only]))
    assert lesson.text.startswith("Passed in round 1") and "layout: 2 boxes about 0.30 x 0.30" in lesson.text


def test_recall_ranks_lessons_of_the_same_kind_of_task_before_shared_words() -> None:
    count = extract_lessons(_task("four purple squares", "Are there exactly four purple squares?", "count",
                                  [make_round(1, {"q1": True}, prompt="four purple squares")]))
    position = extract_lessons(_task("a red circle to the left of a blue circle", "Is the red circle left of the "
                                     "blue circle?", "position", [make_round(1, {"q1": True}, prompt="x")]))
    lessons = position + count

    assert recall_lessons(lessons, "four red circles")[0].lesson.intent == "four purple squares"
    assert [h.lesson.intent for h in recall_lessons(lessons, "three blue squares")] == ["four purple squares"]
