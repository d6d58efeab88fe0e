"""Case 7: an agent's verdicts are kept beside a server judge's, never over them; closed trajectories are final."""

from __future__ import annotations

import pytest

from tests.hardening._client import QUESTIONS, ScriptedJudge, make, session, text

pytestmark = pytest.mark.anyio


def _tid(result):
    return result.content[-1].uri.rsplit("/", 1)[-1]


def _verdicts(*passes):
    return [{"id": f"q{i}", "passed": p} for i, p in enumerate(passes, start=1)]


async def test_agent_verdicts_do_not_overwrite_the_server_judges_and_both_are_kept_labelled():
    server, loop = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        tid = _tid(await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS}))
        result = await client.call_tool("critique", {"trajectory_id": tid, "verdicts": _verdicts(False, True)})
        return tid, result

    tid, result = await session(go, server)
    assert not result.is_error, text(result)
    assert "server judge" in text(result)
    candidate = loop.store.get_trajectory(tid).rounds[0].candidates[0]
    assert [(v.requirement_id, v.passed, v.judge) for v in candidate.verdicts] == [("q1", True, "scripted"),
                                                                                   ("q2", False, "scripted")]
    assert [(v.requirement_id, v.passed, v.judge) for v in candidate.agent_verdicts] == [("q1", False, "agent"),
                                                                                         ("q2", True, "agent")]


async def test_the_best_round_is_chosen_by_the_server_judge():
    # round 1: the judge passes q1; round 2: the judge passes nothing, the agent claims both
    server, loop = make(judge=ScriptedJudge([[True, False], [False, False]]))

    async def go(client):
        tid = _tid(await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS}))
        await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a red circle, again"})
        await client.call_tool("critique", {"trajectory_id": tid, "verdicts": _verdicts(True, True)})
        return tid

    trajectory = loop.store.get_trajectory(await session(go, server))
    assert trajectory.status == "active"  # the agent's 2/2 did not end it
    assert trajectory.best_round().index == 1


async def test_agent_verdicts_fill_questions_no_server_judge_covers():
    server, loop = make(judge=None)

    async def go(client):
        tid = _tid(await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS}))
        return tid, await client.call_tool("critique", {"trajectory_id": tid, "verdicts": _verdicts(True, False)})

    tid, result = await session(go, server)
    assert not result.is_error, text(result)
    trajectory = loop.store.get_trajectory(tid)
    assert trajectory.best_round().passed == 1
    assert [v.judge for v in trajectory.rounds[0].candidates[0].verdicts] == ["agent", "agent"]


async def test_verdicts_on_a_closed_trajectory_are_refused_and_change_nothing():
    server, loop = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        tid = _tid(await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS}))
        await client.call_tool("close_trajectory", {"trajectory_id": tid})
        before = loop.store.get_trajectory(tid)
        return before, await client.call_tool("critique", {"trajectory_id": tid, "verdicts": _verdicts(True, True)})

    before, result = await session(go, server)
    assert result.is_error and "closed" in text(result)
    assert loop.store.get_trajectory(before.id) == before
