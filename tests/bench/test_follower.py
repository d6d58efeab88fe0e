"""The agent that knows only what the server says: its reading of results, and the six tasks over stdio."""

from __future__ import annotations

import re

import pytest

from gems_mcp.bench.follower import Briefing, FollowingAgent, Repairs, Want, own_answer, read_result
from gems_mcp.memory.lessons import recall_lessons
from gems_mcp.memory.store import MemoryStore

RESULT = """trajectory t-0123456789 · round 1/5 · mode generate · model embedded-shapes
verdicts for abc123:
  ✓ q1 Is there a red circle?
  ✗ q2 Is the red circle to the left of the blue square?
  ? q3 Are the two red circles about the same size? (for you: no server judge reads this question; answer it)
found (boxes [x0, y0, x1, y1], 0..1): red circle at [0.60, 0.30, 0.90, 0.60]; blue square at [0.05, 0.30, 0.35, 0.60]
status: active, 4 round(s) left; answer: image abc123 (round 1, 1/3). Call refine to try again."""


def briefing() -> Briefing:
    return Briefing(model="embedded-shapes", shapes=["circle", "square", "triangle"], colors=["red", "blue"],
                    max_objects=4, max_n=8, n=2, y_down=True, schemas={},
                    fixes={"wrong color or shape": "inpaint", "missing": "inpaint", "extra": "inpaint",
                           "wrong place": "inpaint"},
                    synonyms={"crimson ball": "red circle"}, box=0.3, gap=0.06)


def test_a_result_text_is_read_for_marks_found_objects_and_the_answer():
    reading = read_result(RESULT)
    assert reading.trajectory_id == "t-0123456789" and reading.image == "abc123" and not reading.done
    assert [mark for mark, _ in reading.marks.values()] == ["✓", "✗", "?"]
    assert reading.found[0].color == "red" and reading.found[0].box == (0.6, 0.3, 0.9, 0.6)
    assert reading.answer == "answer: image abc123 (round 1, 1/3)"
    assert not own_answer("Is the red circle to the left of the blue square?", reading.found, ["red", "blue"])


def test_requests_are_understood_in_the_words_the_server_gave():
    agent = FollowingAgent(client=None)  # type: ignore[arg-type]
    agent.briefing = briefing()
    wants, relation = agent.understand("a crimson ball to the left of a blue square, please")
    assert agent.prompt_for(wants, relation) == "a red circle to the left of a blue square"
    assert "cannot draw 'a dog on a beach'" in agent.understand("a dog on a beach")
    layout = agent.layout([Want(2, "red", "circle"), Want(1, "blue", "square")], "left")
    assert all(r["box"][2] < layout[-1]["box"][0] for r in layout[:2]), "both circles left of the square"


def test_a_wrong_place_is_fixed_by_erasing_and_adding_where_the_layout_put_it():
    b = briefing()
    planned = [{"prompt": "a red circle", "box": [0.05, 0.3, 0.35, 0.6]},
               {"prompt": "a blue square", "box": [0.65, 0.3, 0.95, 0.6]}]
    failure, edits = Repairs(b, [Want(1, "red", "circle"), Want(1, "blue", "square")], planned).plan(
        read_result(RESULT).found, "left")
    assert failure == "wrong place" and b.fixes[failure] == "inpaint"
    assert {e["prompt"] for e in edits} == {"", "a red circle", "a blue square"}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.anyio
async def test_six_tasks_over_stdio_without_one_refused_call_and_the_count_lesson_first(tmp_path):
    from gems_mcp.bench.six_tasks import run_tasks

    outcomes, transcript, refusals = await run_tasks(tmp_path)
    assert refusals == []
    by_task = {o["task"].split(":")[0]: o for o in outcomes}
    assert by_task["an impossible prompt"]["outcome"] == "declined"
    done = [o for o in outcomes if o["task"] != "an impossible prompt"]
    assert all(o["outcome"] == "done" and o["answer"].startswith("answer: image ") for o in done)
    scores = [re.search(r"(\d+)/(\d+)\)$", o["answer"]).groups() for o in done]  # type: ignore[union-attr]
    assert all(passed == total for passed, total in scores), "every answer passes its whole checklist"
    assert any(lever.startswith("inpaint") for lever in by_task["an inpaint fix"]["levers"])
    assert "**call** `critique`" in transcript, "the questions marked for the agent were answered"
    lessons = MemoryStore(tmp_path).lessons()
    for query in ("four red circles", "three blue squares"):
        first = recall_lessons(lessons, query)[0]
        assert first.lesson.intent == "four purple squares" and first.lesson.kind == "count" and first.task_match
