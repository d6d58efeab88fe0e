"""Every family's tiny pipeline behind a real `gems-mcp serve` over stdio (GEMS_MODEL=<saved folder>), the way
Claude Code launches it: generate n=2, an edit, a repaint that leaves every pixel outside its box alone, a layout."""

from __future__ import annotations

import base64
import io
import os
import sys

import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from PIL import Image

from tests.families.builders import FAMILIES

BOX = [0.25, 0.25, 0.75, 0.75]
SIZE = {"width": 64, "height": 64, "steps": 2}

pytestmark = pytest.mark.anyio


def image_ids(result) -> list[str]:
    return [str(c.uri).rsplit("/", 1)[-1] for c in result.content if c.type == "resource_link" and "/images/" in str(c.uri)]


def trajectory_id(result) -> str:
    return str(result.content[-1].uri).rsplit("/", 1)[-1]


async def pixels(client, image_id: str) -> np.ndarray:
    resource = await client.read_resource(f"gems://images/{image_id}")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(resource.contents[0].blob))).convert("RGB"))


async def every_lever(client) -> dict:
    """Drive the four levers as an agent would and collect what it would see."""
    first = await client.call_tool("generate", {"prompt": "a red circle", "n": 2, "seed": 1, **SIZE})
    assert not first.is_error, first.content[0].text
    tid, drawn = trajectory_id(first), image_ids(first)
    edit = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a red circle at dusk", "mode": "edit",
                                             "strength": 0.6, "image_id": drawn[0], "seed": 5})
    assert not edit.is_error, edit.content[0].text
    repaint = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a red circle", "mode": "inpaint",
                                                "image_id": drawn[0], "seed": 6,
                                                "edits": [{"box": BOX, "prompt": "a blue square"}]})
    assert not repaint.is_error, repaint.content[0].text
    layout = await client.call_tool("generate", {"prompt": "a blue square on a table", "seed": 2, **SIZE,
                                                 "layout": [{"prompt": "a blue square", "box": BOX}]})
    assert not layout.is_error, layout.content[0].text
    return {
        "drawn": [await pixels(client, i) for i in drawn],
        "edited": await pixels(client, image_ids(edit)[0]),
        "repainted": await pixels(client, image_ids(repaint)[0]),
        "laid_out": await pixels(client, image_ids(layout)[0]),
        "layout_text": layout.content[0].text,
    }


def serve(folder, home) -> StdioServerParameters:
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_MODEL": str(folder), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return StdioServerParameters(command=sys.executable, args=["-m", "gems_mcp", "serve"], env=env)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
async def test_every_lever_over_stdio(name, family_folder, tmp_path):
    async with Client(serve(family_folder(name), tmp_path / "home")) as client:
        seen = await every_lever(client)
    drawn = seen["drawn"]
    assert [d.shape for d in drawn] == [(64, 64, 3)] * 2 and not np.array_equal(drawn[0], drawn[1])
    assert seen["edited"].shape == (64, 64, 3) and not np.array_equal(seen["edited"], drawn[0])
    outside = np.ones((64, 64), bool)
    outside[16:48, 16:48] = False
    assert np.array_equal(seen["repainted"][outside], drawn[0][outside])  # nothing outside the box changed
    assert not np.array_equal(seen["repainted"][~outside], drawn[0][~outside])
    assert seen["laid_out"].shape == (64, 64, 3) and "layout: a blue square" in seen["layout_text"]
