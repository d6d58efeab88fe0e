"""The reference agent and the loop benchmark, end to end through MCP on the embedded model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from PIL import Image

from gems_mcp.bench.agent import ReferenceAgent, _apply, _canonical, run_prompt
from gems_mcp.bench.loop import run_benchmark, server_env, split_prompts
from gems_mcp.config import load_settings
from gems_mcp.errors import InvalidRequest
from gems_mcp.shapes import world


def test_levers_rewrite_within_the_grammar():
    spec = world.parse("a red circle to the left of a blue square")
    mirrored, mode = _apply("mirror", spec, spec.caption(), spec.caption())
    assert mirrored == "a blue square to the right of a red circle" and mode == "regenerate"
    assert world.parse(mirrored).relation == "right"
    back, _ = _apply("mirror", spec, mirrored, spec.caption())
    assert back == spec.caption()
    groups = world.parse("two red circles and a blue square")
    swapped, _ = _apply("reorder", groups, groups.caption(), groups.caption())
    assert swapped == "a blue square and two red circles"
    assert _apply("edit", spec, "p", "p") == ("p", "edit")
    assert _canonical("An image of a RED circle.") == "a red circle"


def test_splits_are_fixed_disjoint_and_cover_every_category():
    test = split_prompts("test", 12)
    assert test == split_prompts("test", 12)
    assert {c for c, _ in test} == set(world.CATEGORIES)
    assert len(split_prompts("test", None)) >= 200
    assert not {p for _, p in split_prompts("dev", None)} >= {p for _, p in split_prompts("test", None)}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.anyio
async def test_a_small_slice_runs_every_condition_through_a_stdio_server(tmp_path, monkeypatch):
    out = io.StringIO()
    conditions = ["single", "best-of-B", "loop", "gems", "gems+lessons"]
    import gems_mcp.bench.loop as bench

    monkeypatch.setattr(bench, "WARMUP_PROMPTS", 1)
    results = await run_benchmark("test", 2, None, 2, conditions, tmp_path, out, "stdio")
    table = out.getvalue()
    for condition in conditions:
        assert condition in table
        outcomes = results["conditions"][condition]["outcomes"]
        assert len(outcomes) == 2
        assert all(1 <= o["images"] <= 2 for o in outcomes)
        assert all(0.0 <= o["question_fraction"] <= 1.0 for o in outcomes)
    assert json.loads((tmp_path / "results.json").read_text())["budget"] == 2
    assert Image.open(tmp_path / "curve.png").size == (640, 400)


@pytest.mark.slow
def test_run_command_saves_the_best_image_and_a_contact_sheet(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gems_mcp", "run", "a red circle", "--out", str(tmp_path / "out"), "--rounds", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    best = next((tmp_path / "out").glob("*-best.png"))
    sheet = next((tmp_path / "out").glob("*-rounds.png"))
    assert str(best) in done.stdout and str(sheet) in done.stdout
    assert Image.open(best).size == (256, 256)
    assert "round 1:" in done.stderr


def test_run_command_explains_a_prompt_outside_the_world(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gems_mcp", "run", "a dog on a skateboard", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 2
    assert "circle" in done.stderr and "GEMS_MODEL" in done.stderr


class _CannedClient:
    """An MCP client stand-in that records calls and answers with one round that passes everything."""

    def __init__(self):
        self.calls = []

    async def call_tool(self, name, args):
        self.calls.append((name, args))
        text, data = "", {}
        if name == "generate":
            text = "trajectory t-0123456789 · round 1/5"
        elif name == "critique":
            answers = {"img-a": {"passed": True}, "img-b": {"passed": True}}
            data = {"checklist": [{"id": "q1", "question": "Is there a red circle?", "kind": "object",
                                   "answers": answers}], "images": list(answers), "status": "done (all_passed)"}
        content = [SimpleNamespace(type="text", text=text)]
        if name == "generate":
            content.append(SimpleNamespace(type="resource_link", uri="gems://trajectories/t-0123456789"))
        return SimpleNamespace(is_error=False, content=content, structured_content=data)


@pytest.mark.anyio
async def test_the_loop_conditions_ask_for_the_candidates_per_round_they_were_given():
    client = _CannedClient()
    outcome = await ReferenceAgent(client, "gems", budget=3, n=2).solve("a red circle")
    (generate,) = [args for name, args in client.calls if name == "generate"]
    assert generate["n"] == 2
    assert outcome.passed and outcome.images == 2


def test_a_stdio_benchmark_server_accepts_best_of_b_for_any_budget(tmp_path, monkeypatch):
    for name, value in server_env(tmp_path, budget=12).items():
        if name.startswith("GEMS_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.max_rounds == 12 and settings.max_candidates >= 12


@pytest.mark.anyio
async def test_run_refuses_a_model_without_a_judge_before_generating(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMS_MODEL", str(tmp_path / "no-such-model"))
    with pytest.raises(InvalidRequest, match="has no server judge"):
        await run_prompt("a red circle", tmp_path / "out")
