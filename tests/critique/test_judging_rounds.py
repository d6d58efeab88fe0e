"""The server judge inside the loop: it waits in the device queue, a failure keeps the round, critique retries."""

from __future__ import annotations

import pytest

from gems_mcp.checks import Exactly
from gems_mcp.config import load_settings
from gems_mcp.critique.base import Judgement
from gems_mcp.errors import JudgeError
from gems_mcp.generation.queue import current_device
from gems_mcp.loop import AgentLoop
from gems_mcp.types import ImageParams, Verdict
from tests.fakes import FakeGenerator


class FlakyJudge:
    """Fails while `broken` (like a model folder not there yet), then passes everything; notes where it ran."""

    name = "flaky"

    def __init__(self) -> None:
        self.broken = True
        self.ran_on: list[str | None] = []

    def covers(self, requirement):
        return True

    def verify(self, images, checklist):
        self.ran_on.append(current_device())
        if self.broken:
            raise JudgeError("GEMS_JUDGE=vlm:/models/q does not exist; give a local model folder or a hub id")
        return [Judgement([Verdict(requirement_id=r.id, passed=True, judge=self.name, probability=0.9)
                           for r in checklist]) for _ in images]


@pytest.mark.anyio
async def test_a_failing_judge_keeps_the_round_and_its_images_and_critique_retries():
    judge = FlakyJudge()
    loop = AgentLoop(load_settings(), generator=FakeGenerator(), judge=judge)

    result = await loop.generate("a red circle", requirements=["Is there a red circle?"], n=2, seed=1)
    stored = loop.trajectory(result.trajectory.id)
    with pytest.raises(JudgeError, match="does not exist"):
        await loop.critique(stored.id)
    judge.broken = False
    after, rnd, _ = await loop.critique(stored.id)
    assert any("server judge failed" in note and "critique" in note for note in result.notes)
    assert len(stored.rounds) == 1 and not stored.rounds[0].judged
    assert all(loop.images.load(c.image_id).size == (64, 64) for c in stored.rounds[0].candidates)
    assert rnd.judged and after.status == "done" and after.done_reason == "all_passed"
    assert rnd.candidates[0].verdicts[0].probability == 0.9


@pytest.mark.anyio
async def test_the_judge_runs_as_a_job_of_the_device_queue():
    judge = FlakyJudge()
    judge.broken = False
    loop = AgentLoop(load_settings(), generator=FakeGenerator(), judge=judge)
    await loop.generate("a red circle", requirements=["Is there a red circle?"], seed=1)
    assert judge.ran_on == ["default"]  # outside the queue there is no device: None


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_detector_judges_a_real_pipelines_round_from_the_checklist_it_derived(tmp_path, grid_detector):
    from tests.tiny_pipeline import build_tiny_pipeline

    model = build_tiny_pipeline(tmp_path / "sd")
    settings = load_settings(model=str(model), judge=f"detect:{grid_detector}", judge_threshold=0.5, device="cpu")
    loop = AgentLoop(settings)
    result = await loop.generate("two dogs", seed=1, params=ImageParams(steps=2))
    (question,) = result.trajectory.checklist
    assert question.check == Exactly(object="dog", n=2)
    candidate = result.round.candidates[0]
    # The grid detector sees a dog in each of its 16 cells: two dogs were asked for, so the verdict is no.
    assert len(candidate.detections) == 16 and all(0 <= v <= 1 for d in candidate.detections for v in d.box)
    assert candidate.verdicts[0].passed is False and candidate.verdicts[0].judge == f"detect:{grid_detector}"
    assert "judge_s" in result.round.timings


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_model_judge_answers_the_agents_own_questions_with_p_yes(tmp_path, tiny_vlm):
    from mcp import Client

    from gems_mcp.server import create_server
    from tests.tiny_pipeline import build_tiny_pipeline

    model = build_tiny_pipeline(tmp_path / "sd")
    settings = load_settings(model=str(model), judge=f"vlm:{tiny_vlm}", device="cpu")
    mine = ["Is the dog asleep on a red sofa?", "Are there exactly two dogs?"]
    async with Client(create_server(settings, AgentLoop(settings))) as client:
        made = await client.call_tool("generate", {"prompt": "two dogs on a sofa", "requirements": mine,
                                                   "steps": 2, "seed": 1})
        tid = made.content[0].text.split()[1]
        critique = await client.call_tool("critique", {"trajectory_id": tid})
    rows = critique.structured_content["checklist"]
    assert [r["question"] for r in rows] == mine, "the agent's questions are the checklist, kept as written"
    answers = [a for r in rows for a in r["answers"].values()]
    assert all(r["answered_by"] == "judge" for r in rows) and "for you" not in made.content[0].text
    assert all(a["judge"] == f"vlm:{tiny_vlm}" and 0 < a["probability"] < 1 for a in answers)
    assert all(a["passed"] == (a["probability"] >= 0.5) for a in answers)
