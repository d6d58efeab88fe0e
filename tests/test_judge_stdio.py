"""`gems-mcp serve` over stdio with a tiny diffusers pipeline and a tiny VLM judge: critique needs no agent answers."""

from __future__ import annotations

import os
import sys

import pytest
from mcp import Client, StdioServerParameters

from tests.critique.tiny_models import build_tiny_vlm
from tests.tiny_pipeline import build_tiny_pipeline


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_server_judges_rounds_itself_with_a_vlm(tmp_path):
    model = build_tiny_pipeline(tmp_path / "tiny-sd")
    vlm = build_tiny_vlm(tmp_path / "tiny-vlm")
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "GEMS_MODEL": str(model), "GEMS_JUDGE": f"vlm:{vlm}",
           "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)

    async with Client(params) as client:
        generated = await client.call_tool(
            "generate", {"prompt": "two dogs and a red car", "steps": 2, "seed": 3, "n": 2}
        )
        summary = generated.content[0].text
        trajectory_id = summary.split("trajectory ", 1)[1].split()[0].strip("(),.:")
        critique = await client.call_tool("critique", {"trajectory_id": trajectory_id})
    assert "derived from the prompt" in summary
    assert not critique.is_error, critique.content[0].text
    rows = critique.structured_content["checklist"]
    assert [r["question"] for r in rows] == ["Are there exactly two dogs?", "Is there a car?", "Is there a red car?"]
    answers = [a for r in rows for a in r["answers"].values()]
    assert len(answers) == 6
    assert all(a["judge"] == f"vlm:{vlm}" and 0 < a["probability"] < 1 for a in answers)
    assert all(a["passed"] == (a["probability"] >= 0.5) for a in answers)
