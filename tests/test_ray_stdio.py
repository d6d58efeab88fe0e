"""`gems-mcp serve` over stdio with GEMS_BACKEND=ray and a model judge: both run as Serve deployments on a local
cluster the server starts, and every Serve call is awaited off the event loop."""

from __future__ import annotations

import os
import sys

import pytest
from mcp import Client, StdioServerParameters

from tests.critique.tiny_models import build_tiny_vlm

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_on_ray_generate_and_critique_answer_every_question_with_p_yes(tmp_path):
    vlm = build_tiny_vlm(tmp_path / "tiny-vlm")
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "GEMS_BACKEND": "ray", "GEMS_JUDGE": f"vlm:{vlm}",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "RAY_DISABLE_USAGE_STATS": "1"}
    env.pop("RAY_ADDRESS", None)
    params = StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)

    async with Client(params) as client:
        generated = await client.call_tool("generate", {"prompt": "a red circle", "seed": 3, "n": 2})
        assert not generated.is_error, generated.content[0].text
        uri = next(str(b.uri) for b in generated.content if str(getattr(b, "uri", "")).startswith("gems://traj"))
        critique = await client.call_tool("critique", {"trajectory_id": uri.rsplit("/", 1)[1]})
    assert "failed" not in generated.content[0].text  # the round was judged on the cluster, not left unjudged
    assert not critique.is_error, critique.content[0].text
    rows = critique.structured_content["checklist"]
    answers = [a for r in rows for a in r["answers"].values()]
    assert rows and len(answers) == 2 * len(rows)  # every question, for both images
    assert all(a["judge"] == f"vlm:{vlm}" and 0 < a["probability"] < 1 for a in answers)
