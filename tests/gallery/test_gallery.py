"""The gallery over HTTP and the MCP App, as a browser or a host would reach them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import httpx2 as httpx
import pytest
from mcp import Client
from PIL import Image

from gems_mcp.config import load_settings
from gems_mcp.gallery import APP_URI, announced, gallery_url, standalone_app
from gems_mcp.loop import AgentLoop
from gems_mcp.server import create_server
from tests.fakes import FakeGenerator, ScriptedJudge

pytestmark = pytest.mark.anyio
QUESTIONS = ["Is there a red circle?", "Is the sky blue?"]


def make(**settings):
    s = load_settings(**settings)
    loop = AgentLoop(s, generator=FakeGenerator(), judge=ScriptedJudge([[True, False]] * 3 + [[True, True]]))
    return create_server(s, loop), loop, s


async def two_rounds(client):
    first = await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS, "n": 2})
    tid = first.content[0].text.split()[1]
    second = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a red circle, blue sky",
                                               "experience": "the sky was grey; say blue sky"})
    return tid, first, second


async def test_generate_and_refine_link_the_trajectory_app_and_critique_does_not():
    server, _, _ = make()
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        app = (await client.read_resource(APP_URI)).contents[0]
    for name in ("generate", "refine"):
        assert tools[name].meta["ui"]["resourceUri"] == APP_URI
    assert not (tools["critique"].meta or {}).get("ui")
    assert app.mime_type == "text/html;profile=mcp-app"
    # one self-contained document: the shared renderer and the host bridge are inlined
    assert "renderTrajectory" in app.text and "ui/initialize" in app.text and "/*" + "APP_JS*/" not in app.text


async def test_results_name_the_gallery_page_of_their_trajectory_only_while_a_gallery_runs(tmp_path):
    server, _, settings = make(home=tmp_path)
    async with Client(server) as client:
        quiet = await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS})
        with announced(settings.home, "http://127.0.0.1:8123/gallery"):
            tid, first, second = await two_rounds(client)
    assert not any("gallery:" in getattr(b, "text", "") for b in quiet.content)
    for result in (first, second):
        assert result.content[-1].text == f"gallery: http://127.0.0.1:8123/gallery#{tid}"
    assert gallery_url(settings.home) is None  # the file goes when the gallery stops


def test_a_gallery_file_left_by_a_dead_process_is_ignored(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / "gallery.json").write_text(json.dumps({"url": "http://127.0.0.1:1/gallery", "pid": int(dead.stdout)}))
    assert gallery_url(tmp_path, "t-1") is None
    (tmp_path / "gallery.json").write_text(json.dumps({"url": "http://127.0.0.1:2/gallery", "pid": os.getpid()}))
    assert gallery_url(tmp_path, "t-1") == "http://127.0.0.1:2/gallery#t-1"


async def test_the_http_server_serves_the_page_the_trajectories_and_every_image():
    server, _, _ = make()
    async with Client(server) as client:
        tid, _, _ = await two_rounds(client)
    app = server.streamable_http_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        page = await http.get("/gallery")
        listing = (await http.get("/gallery/api/trajectories")).json()
        detail = (await http.get(f"/gallery/api/trajectories/{tid}")).json()
        pngs = [await http.get(f"/gallery/images/{c['image_id']}.png")
                for r in detail["trajectory"]["rounds"] for c in r["candidates"]]
        missing = await http.get("/gallery/api/trajectories/t-nope")
        bad_image = await http.get("/gallery/images/..%2fmemory.json")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "renderTrajectory" in page.text and "default-src 'none'" in page.headers["content-security-policy"]
    assert [row["id"] for row in listing] == [tid] and listing[0]["rounds"] == 2
    assert detail["best_round"] == 2
    best = max(detail["trajectory"]["rounds"][1]["candidates"], key=lambda c: sum(v["passed"] for v in c["verdicts"]))
    assert detail["answer"].startswith(f"answer: image {best['image_id']} (round 2, ")
    assert detail["trajectory"]["rounds"][0]["experience"] == "the sky was grey; say blue sky"
    assert len(pngs) == 4 and all(r.status_code == 200 for r in pngs)
    assert Image.open(io.BytesIO(pngs[0].content)).size == (64, 64)
    assert missing.status_code == 404 and "t-nope" in missing.json()["error"]
    assert bad_image.status_code == 404


async def test_the_gallery_shows_lessons_recalled_from_earlier_tasks_and_the_lessons_left(tmp_path):
    server, _, settings = make(home=tmp_path)
    async with Client(server) as client:
        first, _, _ = await two_rounds(client)
        later = await client.call_tool("generate", {"prompt": "a red circle under a blue sky", "requirements": QUESTIONS})
    later_id = later.content[0].text.split()[1]
    app = standalone_app(settings.home, allowed_hosts=["127.0.0.1", "localhost"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        newest, older = (await http.get("/gallery/api/trajectories")).json()
        recalled = (await http.get(f"/gallery/api/trajectories/{later_id}")).json()["lessons_recalled"]
        kept = (await http.get(f"/gallery/api/trajectories/{first}")).json()["lessons_kept"]
        root = await http.get("/")
        rebound = await http.get("/gallery", headers={"host": "evil.example"})
    assert (newest["id"], older["id"]) == (later_id, first)
    assert kept and kept[0]["question"] == "Is the sky blue?"
    assert [lesson["id"] for lesson in recalled] == [kept[0]["id"]]
    assert root.status_code in (302, 307) and root.headers["location"] == "/gallery"
    assert rebound.status_code == 400


async def test_behind_a_token_the_gallery_is_refused_without_it_like_mcp(monkeypatch):
    from gems_mcp.http import build_app

    token = "a-token-of-sixteen-or-more"
    monkeypatch.setenv("GEMS_HTTP_TOKEN", token)
    server, _, settings = make()
    app = build_app(server, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        refused = [(await http.get(path)).status_code for path in ("/gallery", "/gallery/api/trajectories")]
        allowed = await http.get("/gallery/api/trajectories", headers={"authorization": f"Bearer {token}"})
    assert refused == [401, 401]
    assert allowed.status_code == 200 and allowed.json() == []
