"""What the tools say, as pure functions of trajectories: no MCP, no model."""

from __future__ import annotations

from gems_mcp import results
from gems_mcp.checks import Detection
from gems_mcp.types import Candidate, GenerationParams, Region, Requirement, Round, Trajectory, Verdict


def trajectory(passes: list[list[bool]], **round_fields) -> Trajectory:
    checklist = [Requirement(id="q1", question="Is there a red circle?"), Requirement(id="q2", question="Is it left?")]
    candidates = [
        Candidate(image_id=f"{i:016x}", seed=i,
                  verdicts=[Verdict(requirement_id=f"q{k + 1}", passed=p, judge="exact") for k, p in enumerate(ps)])
        for i, ps in enumerate(passes)
    ]
    rnd = Round(index=1, prompt="a red circle", mode="generate", params=GenerationParams(width=64, height=64, steps=4),
                candidates=candidates, **round_fields)
    return Trajectory(id="t-0000000001", intent="a red circle", checklist=checklist, rounds=[rnd], max_rounds=3)


def test_the_summary_names_the_best_image_its_verdicts_and_where_things_were_found():
    t = trajectory([[True, False], [True, True]], layout=[Region(prompt="a red circle", box=(0.1, 0.2, 0.4, 0.5))])
    t.rounds[0].candidates[1].detections = [Detection(object="circle", color="red", box=(0.125, 0.25, 0.375, 0.5))]
    text = results.round_summary(t, t.rounds[0])
    assert "layout: a red circle [0.10, 0.20, 0.40, 0.50]" in text
    assert f"verdicts for {1:016x}:" in text and "✓ q2 Is it left?" in text
    assert "found (boxes [x0, y0, x1, y1], 0..1): red circle at [0.12, 0.25, 0.38, 0.50]" in text
    assert text.splitlines()[-1].startswith(
        f"status: active, 2 round(s) left; answer: image {1:016x} (round 1, 2/2)")


def test_a_done_trajectory_says_why_and_which_round_is_the_answer():
    t = trajectory([[True, True]])
    t.status, t.done_reason = "done", "all_passed"
    assert results.status_line(t) == f"status: DONE (every question passes); answer: image {0:016x} (round 1, 2/2)."
    assert results.status_text(t) == "done (all_passed)"


def test_critique_structure_carries_each_images_answers_and_detections():
    t = trajectory([[True, False]])
    t.rounds[0].candidates[0].detections = [Detection(object="square", color="blue", box=(0.5, 0.5, 0.75, 0.75))]
    result = results.critique_result(t, t.rounds[0], [])
    image = f"{0:016x}"
    assert result.checklist[1]["answers"][image] == {"passed": False, "note": None, "judge": "exact"}
    assert result.detections[image][0]["box"] == [0.5, 0.5, 0.75, 0.75]
    assert result.best_round == 1 and result.status == "active"


def test_an_unjudged_round_asks_the_agent_for_verdicts():
    t = trajectory([[True, False]])
    t.rounds[0].candidates[0].verdicts = None
    assert "call critique('t-0000000001', verdicts=" in results.critique_result(t, t.rounds[0], []).message
    assert "? q1" in results.round_summary(t, t.rounds[0])


def test_recent_rows_link_each_trajectory():
    (row,) = results.recall_result(None, None, [trajectory([[True, False]])]).recent
    assert row["uri"] == "gems://trajectories/t-0000000001" and row["best"] == "round 1: 1/2"
