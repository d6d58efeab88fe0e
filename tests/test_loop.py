"""AgentLoop without MCP: the trajectory, the checklist, the stop rule and persistence."""

from __future__ import annotations

import gc
import json

import pytest
from PIL import Image

from gems_mcp.config import load_settings
from gems_mcp.errors import GemsError as LoopError
from gems_mcp.errors import GenerationError
from gems_mcp.images import PARAMS_KEY
from gems_mcp.loop import AgentLoop, VerdictInput
from gems_mcp.types import ImageParams, Trajectory
from tests.fakes import FakeGenerator, ScriptedJudge

pytestmark = pytest.mark.anyio

QUESTIONS = ["Is there a red circle?", "Is the sky blue?"]


def make_loop(judge=None, **settings):
    return AgentLoop(load_settings(**settings), generator=FakeGenerator(), judge=judge)


async def test_generate_fixes_the_checklist_and_stores_each_candidate():
    loop = make_loop()
    result = await loop.generate("a red circle under a blue sky", requirements=QUESTIONS, n=3, seed=10)
    traj = result.trajectory
    assert [r.question for r in traj.checklist] == QUESTIONS
    assert [r.id for r in traj.checklist] == ["q1", "q2"]
    assert [c.seed for c in result.round.candidates] == [10, 11, 12]
    for c in result.round.candidates:
        assert loop.images.path(c.image_id).exists()
        with Image.open(loop.images.path(c.image_id)) as png:  # the parameters travel with the PNG
            assert json.loads(png.text[PARAMS_KEY])["seed"] == c.seed
    assert traj.intent == "a red circle under a blue sky"


async def test_same_seed_and_params_give_the_same_image():
    loop = make_loop()
    a = await loop.generate("a cat", seed=5)
    b = await loop.generate("a cat", seed=5)
    assert a.round.candidates[0].image_id == b.round.candidates[0].image_id


async def test_server_judge_runs_each_round_and_all_pass_ends_the_trajectory():
    judge = ScriptedJudge([[True, False], [True, True]])
    loop = make_loop(judge)
    first = await loop.generate("a red circle", requirements=QUESTIONS)
    assert first.round.passed == 1 and first.trajectory.status == "active"
    second = await loop.refine(first.trajectory.id, "a big red circle, blue sky", experience="sky was grey")
    assert second.trajectory.status == "done" and second.trajectory.done_reason == "all_passed"
    assert second.trajectory.rounds[0].experience == "sky was grey"
    assert second.trajectory.best_round().index == 2
    with pytest.raises(LoopError, match="done"):
        await loop.refine(first.trajectory.id, "again")


async def test_budget_spent_stops_the_loop_and_best_round_is_the_earliest_of_the_most_passes():
    judge = ScriptedJudge([[True, False], [False, False], [True, False]])
    loop = make_loop(judge, max_rounds=3)
    tid = (await loop.generate("x", requirements=QUESTIONS)).trajectory.id
    await loop.refine(tid, "y")
    last = await loop.refine(tid, "z")
    assert last.trajectory.done_reason == "budget_spent"
    assert last.trajectory.best_round().index == 1
    # No experience given: the server derived one for the rounds that led on.
    assert all(r.experience for r in last.trajectory.rounds[:2])
    assert last.trajectory.rounds[0].experience_source == "derived"


async def test_without_judge_agent_verdicts_are_validated_and_recorded():
    loop = make_loop()
    tid = (await loop.generate("x", requirements=QUESTIONS)).trajectory.id
    with pytest.raises(LoopError, match="no verdicts yet"):
        await loop.refine(tid, "y")
    with pytest.raises(LoopError, match="missing: q2"):
        await loop.critique(tid, verdicts=[VerdictInput(id="q1", passed=True)])
    with pytest.raises(LoopError, match="not a question"):
        await loop.critique(tid, verdicts=[VerdictInput(id="q9", passed=True)])
    traj, rnd, _ = await loop.critique(tid, verdicts=[VerdictInput(id="q1", passed=True), VerdictInput(id="q2", passed=True, note="ok")])
    assert rnd.passed == 2 and traj.status == "done"
    assert all(v.judge == "agent" for v in rnd.candidates[0].verdicts)


async def test_edit_mode_starts_from_the_best_image():
    judge = ScriptedJudge([[True, False], [False, False], [True, True]])
    loop = make_loop(judge)
    first = await loop.generate("x", requirements=QUESTIONS)
    await loop.refine(first.trajectory.id, "y")
    edited = await loop.refine(first.trajectory.id, "x, sharper", mode="edit", strength=0.4)
    assert edited.round.params.source_image_id == first.round.candidates[0].image_id
    assert edited.round.params.strength == 0.4
    assert loop.generator.calls[-1].init_image is not None


async def test_a_restarted_loop_knows_every_trajectory_and_image(tmp_path):
    loop = make_loop(home=tmp_path)
    result = await loop.generate("x", requirements=QUESTIONS)
    again = AgentLoop(load_settings(home=tmp_path), generator=FakeGenerator())
    traj = again.trajectory(result.trajectory.id)
    assert traj.rounds[0].candidates[0].image_id == result.round.candidates[0].image_id
    assert again.images.load(traj.rounds[0].candidates[0].image_id).size == (64, 64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "x" * 100_000}, "at most 2000"),
        ({"prompt": "x", "n": 0}, "n must be between 1 and 8"),
        ({"prompt": "x", "n": 1000}, "n must be between 1 and 8"),
        ({"prompt": "x", "seed": -1}, "seed must be between"),
        ({"prompt": "x", "params": ImageParams(width=-64)}, "width must be a multiple of 8 between"),
        ({"prompt": "x", "params": ImageParams(height=100_000)}, "height must be a multiple of 8 between"),
        ({"prompt": "x", "params": ImageParams(steps=10_000)}, "steps must be between"),
        ({"prompt": "x", "params": ImageParams(guidance=-3)}, "guidance must be between"),
        ({"prompt": "forbidden fruit"}, "cannot draw"),
        ({"prompt": "x", "skill": "no-such-skill"}, "no-such-skill"),
    ],
)
async def test_bad_generate_arguments_are_one_clear_error(kwargs, message):
    loop = make_loop()
    with pytest.raises(LoopError, match=message):
        await loop.generate(**kwargs)
    assert loop.generator.calls == []


async def test_unknown_trajectory_is_a_clear_error():
    loop = make_loop()
    with pytest.raises(LoopError, match="t-nope"):
        await loop.refine("t-nope", "x")


async def test_long_experience_is_refused():
    loop = make_loop(ScriptedJudge([[False, False]]))
    tid = (await loop.generate("x", requirements=QUESTIONS)).trajectory.id
    with pytest.raises(LoopError, match="under 100"):
        await loop.refine(tid, "y", experience="word " * 150)


async def test_skill_adds_its_questions_and_fills_unset_defaults():
    loop = make_loop()
    body = loop.skills.body("text-rendering")
    result = await loop.generate('a sign that says "OPEN"', requirements=["Is there a sign?"], skill="text-rendering")
    traj = result.trajectory
    assert traj.skill == "text-rendering"
    assert [r.question for r in traj.checklist][1:] == body.checklist
    assert all(r.source == "skill" for r in traj.checklist[1:])
    defaults = body.defaults.model_dump(exclude_none=True)
    if "steps" in defaults:
        assert result.round.params.steps == defaults["steps"]
    given = await loop.generate("x", skill="text-rendering", params=ImageParams(steps=3))
    assert given.round.params.steps == 3


async def test_without_a_checklist_the_round_budget_still_ends_the_trajectory():
    loop = make_loop(max_rounds=2)
    tid = (await loop.generate("x")).trajectory.id
    last = await loop.refine(tid, "y")
    assert (last.trajectory.status, last.trajectory.done_reason) == ("done", "budget_spent")
    with pytest.raises(LoopError, match="2-round budget"):
        await loop.refine(tid, "z")


class _FailingGenerator(FakeGenerator):
    def generate(self, request, on_step=None, should_stop=None):
        raise GenerationError("width and height must be multiples of 8, got 60x60.")


async def test_a_failed_first_round_leaves_no_trajectory_behind():
    loop = AgentLoop(load_settings(), generator=_FailingGenerator(), judge=None)
    with pytest.raises(LoopError, match="multiples of 8"):
        await loop.generate("x", requirements=QUESTIONS)
    assert loop.recall().recent == []


async def test_refining_a_trajectory_without_rounds_is_a_clear_error():
    loop = make_loop()
    empty = Trajectory(intent="x", checklist=[])
    loop.store.save_trajectory(empty)  # as an older version left it when round 1 was cancelled
    with pytest.raises(LoopError, match="no rounds to continue from"):
        await loop.refine(empty.id, "y")


async def test_verdicts_for_a_trajectory_without_a_checklist_are_refused_in_words():
    loop = make_loop()
    tid = (await loop.generate("x")).trajectory.id
    with pytest.raises(LoopError, match="has no checklist"):
        await loop.critique(tid, verdicts=[VerdictInput(id="q1", passed=True)])


async def test_calls_on_made_up_trajectory_ids_leave_nothing_behind():
    loop = make_loop()
    for i in range(50):
        with pytest.raises(LoopError):
            await loop.refine(f"t-made-up-{i}" * 100, "x")
    gc.collect()
    assert len(loop._locks) == 0


async def test_skill_defaults_the_model_cannot_take_are_left_out_with_a_note():
    loop = AgentLoop(load_settings(), generator=FakeGenerator(negative=False), judge=None)
    result = await loop.generate("a cat", skill="logo-icon")  # 1024 px and a negative prompt
    params = result.round.params
    assert (params.width, params.height, params.negative_prompt) == (64, 64, None)
    assert params.steps == 35 and params.guidance == 7.5
    assert any("width, height" in n and "negative_prompt" in n for n in result.notes)
