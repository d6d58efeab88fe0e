"""The MCP surface through a real client (in-process): tools, results, progress, errors, resources."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import anyio
import pytest
from mcp import Client
from PIL import Image

from gems_mcp.config import load_settings
from gems_mcp.errors import GenerationError
from gems_mcp.images import ImageStore
from gems_mcp.loop import AgentLoop
from gems_mcp.memory.store import MemoryBusy, MemoryStore
from gems_mcp.results import candidate_labels
from gems_mcp.server import create_server
from tests.fakes import FakeGenerator, ScriptedJudge

pytestmark = pytest.mark.anyio

QUESTIONS = ["Is there a red circle?", "Is the sky blue?"]


def make(generator=None, judge=None, **settings):
    s = load_settings(**settings)
    loop = AgentLoop(s, generator=generator or FakeGenerator(), judge=judge)
    return create_server(s, loop), loop


async def session(coro_fn, server):
    async with Client(server) as client:
        return await coro_fn(client)


async def test_tools_list_has_the_loop_tools_with_truthful_annotations():
    server, _ = make()

    async def go(client):
        return {t.name: t for t in (await client.list_tools()).tools}

    tools = await session(go, server)
    assert {"generate", "refine", "critique", "recall_memory", "close_trajectory"} <= set(tools)
    assert tools["recall_memory"].annotations.read_only_hint is True
    assert tools["generate"].annotations.read_only_hint is False
    assert tools["generate"].annotations.destructive_hint is False
    assert "prompt" in tools["generate"].input_schema["required"]
    assert tools["generate"].output_schema is None
    assert tools["critique"].output_schema is not None
    assert any(name.startswith("skill_") for name in tools)


async def test_generate_returns_summary_thumbnail_and_links_without_structured_content():
    server, _ = make(judge=ScriptedJudge([[True, False]]), thumbnail_size=64)

    async def go(client):
        return await client.call_tool("generate", {"prompt": "a red circle", "requirements": QUESTIONS, "n": 3, "width": 256, "height": 256})

    result = await session(go, server)
    assert not result.is_error
    assert result.structured_content is None
    kinds = [b.type for b in result.content]
    assert kinds == ["text", "image", "resource_link", "resource_link", "resource_link", "resource_link"]
    # the last link names the trajectory, so a client finds its id without reading the text
    tid = result.content[0].text.split()[1]
    assert result.content[-1].uri == f"gems://trajectories/{tid}"
    text = result.content[0].text
    assert "round 1/5" in text and "1/2 passed" in text and "✗ q2 Is the sky blue?" in text
    thumb = Image.open(io.BytesIO(base64.b64decode(result.content[1].data)))
    assert max(thumb.size) <= 64
    assert len(base64.b64decode(result.content[1].data)) < 300_000


async def test_progress_reports_every_denoising_step():
    server, _ = make()
    seen = []

    async def go(client):
        async def on_progress(progress, total, message):
            seen.append(message)

        return await client.call_tool("generate", {"prompt": "x", "steps": 6}, progress_callback=on_progress)

    await session(go, server)
    assert [m for m in seen if m.startswith("step")] == [f"step {i}/6" for i in range(1, 7)]


async def test_cancelling_a_call_stops_denoising_within_a_step():
    generator = FakeGenerator(step_delay=0.05)
    server, _ = make(generator)

    async def go(client):
        started = anyio.Event()

        async def on_progress(progress, total, message):
            if message == "step 2/40":
                started.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("generate", {"prompt": "x", "steps": 40}, progress_callback=on_progress))
            await started.wait()
            tg.cancel_scope.cancel()
        assert await anyio.to_thread.run_sync(generator.stop_seen.wait, 5)

    await session(go, server)
    assert generator.stopped == 1
    assert generator.steps_run < 10


async def test_concurrent_calls_run_one_at_a_time_and_report_their_place():
    generator = FakeGenerator(step_delay=0.02)
    server, _ = make(generator)
    messages: list[str] = []

    async def go(client):
        async def on_progress(progress, total, message):
            messages.append(message)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: client.call_tool("generate", {"prompt": "x", "steps": 5}, progress_callback=on_progress))

    await session(go, server)
    assert generator.max_active == 1
    assert len(generator.calls) == 3
    assert any(m.startswith("queued: ") for m in messages)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "x" * 100_000}, "at most 2000"),
        ({"prompt": "x", "n": -1}, "n must be between"),
        ({"prompt": "x", "width": 10**6}, "width must be a multiple of 8 between"),
        ({"prompt": "x", "steps": 0}, "steps must be between"),
    ],
)
async def test_bad_arguments_are_is_error_results_and_the_server_keeps_serving(args, message):
    server, _ = make()

    async def go(client):
        bad = await client.call_tool("generate", args)
        good = await client.call_tool("generate", {"prompt": "fine"})
        return bad, good

    bad, good = await session(go, server)
    assert bad.is_error and message in bad.content[0].text
    assert not good.is_error


async def test_unknown_ids_are_clear_errors():
    server, _ = make()

    async def go(client):
        results = [
            await client.call_tool("refine", {"trajectory_id": "t-missing", "prompt": "x"}),
            await client.call_tool("critique", {"trajectory_id": "t-missing"}),
            await client.call_tool("recall_memory", {"trajectory_id": "t-missing"}),
        ]
        with pytest.raises(Exception, match="image id|No image"):
            await client.read_resource("gems://images/0123456789abcdef")
        return results

    for result in await session(go, server):
        assert result.is_error and "t-missing" in result.content[0].text


async def test_agent_verdicts_through_critique_and_recall_are_structured():
    server, _ = make()

    async def go(client):
        gen = await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS})
        tid = gen.content[0].text.split()[1]
        look = await client.call_tool("critique", {"trajectory_id": tid})
        answer = await client.call_tool(
            "critique",
            {"trajectory_id": tid, "verdicts": [{"id": "q1", "passed": True}, {"id": "q2", "passed": False, "note": "grey"}]},
        )
        refined = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "x, blue sky", "experience": "sky grey"})
        recall = await client.call_tool("recall_memory", {"trajectory_id": tid})
        return look, answer, refined, recall

    look, answer, refined, recall = await session(go, server)
    assert "verdicts=" in look.structured_content["message"]
    rows = answer.structured_content["checklist"]
    assert [next(iter(r["answers"].values()))["passed"] for r in rows] == [True, False]
    assert not refined.is_error and "round 2/5" in refined.content[0].text
    view = recall.structured_content["view"]
    assert view is not None and "x" in json.dumps(view)


async def test_resources_serve_images_trajectories_and_the_contact_sheet():
    server, _ = make(judge=ScriptedJudge([[True, False]]))

    async def go(client):
        gen = await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS})
        tid = gen.content[0].text.split()[1]
        link = gen.content[2].uri
        image = await client.read_resource(str(link))
        traj = await client.read_resource(f"gems://trajectories/{tid}")
        sheet = await client.read_resource(f"gems://trajectories/{tid}/sheet.png")
        prompt = await client.get_prompt("gems_loop", {"request": "a red circle"})
        return image, traj, sheet, prompt, tid

    image, traj, sheet, prompt, tid = await session(go, server)
    png = base64.b64decode(image.contents[0].blob)
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert json.loads(traj.contents[0].text)["id"] == tid
    assert Image.open(io.BytesIO(base64.b64decode(sheet.contents[0].blob))).format == "PNG"
    assert "refine" in prompt.messages[0].content.text


async def test_lessons_of_a_finished_trajectory_are_recalled_for_a_similar_prompt():
    server, _ = make(judge=ScriptedJudge([[True, False], [True, True]]))

    async def go(client):
        gen = await client.call_tool("generate", {"prompt": "three red circles left of a blue square", "requirements": ["Are there exactly three red circles?", "Is the blue square to the right of the circles?"]})
        tid = gen.content[0].text.split()[1]
        await client.call_tool("refine", {"trajectory_id": tid, "prompt": "3 red circles, blue square on the right", "experience": "Writing the count as a digit and naming the side fixed the layout."})
        similar = await client.call_tool("recall_memory", {"query": "three red circles left of a green triangle"})
        unrelated = await client.call_tool("recall_memory", {"query": "a watercolor portrait of an old fisherman"})
        recent = await client.call_tool("recall_memory", {})
        return similar, unrelated, recent, tid

    similar, unrelated, recent, tid = await session(go, server)
    lessons = similar.structured_content["lessons"]
    assert lessons and "digit" in lessons[0]["lesson"]["text"]
    assert "digit" in similar.content[0].text
    assert unrelated.structured_content["lessons"] == []
    assert recent.structured_content["recent"][0]["id"] == tid


class _OddSizeGenerator(FakeGenerator):
    """Refuses sizes in the worker thread, as SD3's own checks refuse sizes not divisible by 16."""

    def generate(self, request, on_step=None, should_stop=None):
        if request.params.width % 16:
            raise GenerationError(f"the pipeline refused the request: width must be divisible by 16, got {request.params.width}")
        return super().generate(request, on_step, should_stop)


async def test_an_error_the_backend_raises_while_generating_reaches_the_agent_as_its_sentence():
    server, _ = make(_OddSizeGenerator())

    async def go(client):
        bad = await client.call_tool("generate", {"prompt": "x", "width": 72})
        good = await client.call_tool("generate", {"prompt": "x", "width": 64})
        return bad, good

    bad, good = await session(go, server)
    assert bad.is_error and "divisible by 16, got 72" in bad.content[0].text
    assert not good.is_error


class _Gate:
    """A step a fake stops at (loading a model, saving a PNG) until the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def pass_through(self) -> None:
        self.reached.set()
        self.opened.wait(30)

    async def wait_reached(self) -> None:
        assert await anyio.to_thread.run_sync(self.reached.wait, 30)


class _SlowLoadingGenerator(FakeGenerator):
    """Loads its model on first use until the test lets it finish, as a real pipeline takes a while to."""

    def __init__(self, gate: _Gate) -> None:
        super().__init__()
        self.gate = gate
        self.loaded = False

    def capabilities(self):
        if not self.loaded:
            self.gate.pass_through()
            self.loaded = True
        return super().capabilities()


async def list_tools_while_generating(server, gate: _Gate) -> float:
    """Seconds tools/list takes while a generate call is held at `gate`."""
    waited = []

    async def go(client):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("generate", {"prompt": "x"}))
            await gate.wait_reached()
            t0 = time.monotonic()
            await client.list_tools()
            waited.append(time.monotonic() - t0)
            gate.opened.set()

    await session(go, server)
    return waited[0]


async def test_the_server_keeps_answering_while_the_model_loads():
    gate = _Gate()
    server, _ = make(_SlowLoadingGenerator(gate))
    assert await list_tools_while_generating(server, gate) < 0.5


async def test_judge_exact_without_an_exact_judge_is_refused_before_any_image_is_made():
    generator = FakeGenerator()
    s = load_settings(judge="exact")
    server = create_server(s, AgentLoop(s, generator=generator))

    async def go(client):
        return await client.call_tool("generate", {"prompt": "x", "requirements": QUESTIONS})

    result = await session(go, server)
    assert result.is_error and "GEMS_JUDGE=exact" in result.content[0].text
    assert generator.calls == []


class _MissingModelGenerator(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.tried = threading.Event()

    def capabilities(self):
        self.tried.set()
        raise GenerationError("GEMS_MODEL='/nope' does not exist; give a diffusers pipeline folder or a hub id.")


async def test_a_model_that_fails_to_preload_is_a_clear_error_and_the_server_keeps_serving():
    s = load_settings(preload=True)
    generator = _MissingModelGenerator()
    server = create_server(s, AgentLoop(s, generator=generator))

    async def go(client):
        assert await anyio.to_thread.run_sync(generator.tried.wait, 30)  # the preload tried and failed
        tools = await client.list_tools()
        return tools, await client.call_tool("generate", {"prompt": "x"})

    tools, result = await session(go, server)
    assert any(t.name == "generate" for t in tools.tools)
    assert result.is_error and "GEMS_MODEL='/nope' does not exist" in result.content[0].text


async def test_a_contact_sheet_whose_image_was_deleted_is_a_clear_error():
    server, loop = make()

    async def go(client):
        gen = await client.call_tool("generate", {"prompt": "x"})
        tid = gen.content[0].text.split()[1]
        loop.images.path(gen.content[2].uri.split("/")[-1]).unlink()
        with pytest.raises(Exception, match="No image"):
            await client.read_resource(f"gems://trajectories/{tid}/sheet.png")

    await session(go, server)


class _BusyStore(MemoryStore):
    def save_trajectory(self, traj):
        raise MemoryBusy("The memory database is locked by another gems-mcp process; try again in a moment.")


async def test_a_busy_memory_database_is_reported_in_its_own_words():
    s = load_settings()
    server = create_server(s, AgentLoop(s, generator=FakeGenerator(), judge=None, store=_BusyStore(s.home)))

    async def go(client):
        return await client.call_tool("generate", {"prompt": "x"})

    result = await session(go, server)
    assert result.is_error and "locked by another gems-mcp process" in result.content[0].text


async def test_contact_sheet_labels_show_scores_only_for_judged_candidates():
    unjudged = await make()[1].generate("x", QUESTIONS, n=2)
    judged = await make(judge=ScriptedJudge([[True, False]]))[1].generate("x", QUESTIONS, n=2)
    assert candidate_labels(unjudged.trajectory, unjudged.round) == ["1", "2"]
    assert candidate_labels(judged.trajectory, judged.round) == ["1: 1/2 passed", "2: 1/2 passed"]


class _SlowImageStore(ImageStore):
    """Encodes until the test lets it finish, as a batch of large PNGs takes seconds."""

    def __init__(self, root, gate: _Gate) -> None:
        super().__init__(root)
        self.gate = gate

    def save(self, image, params=None):
        self.gate.pass_through()
        return super().save(image, params)


async def test_the_server_keeps_answering_while_a_round_is_saved():
    s = load_settings()
    gate = _Gate()
    loop = AgentLoop(s, generator=FakeGenerator(), judge=None, images=_SlowImageStore(s.home / "images", gate))
    server = create_server(s, loop)
    assert await list_tools_while_generating(server, gate) < 0.5


async def test_cancelling_a_call_while_the_model_loads_returns_at_once_and_the_load_goes_on():
    gate = _Gate()
    generator = _SlowLoadingGenerator(gate)
    server, _ = make(generator)
    took = []

    async def go(client):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("generate", {"prompt": "x"}))
            await gate.wait_reached()
            t0 = time.monotonic()
            tg.cancel_scope.cancel()
        await client.list_tools()
        took.append(time.monotonic() - t0)
        gate.opened.set()  # the load goes on after its call was cancelled
        return await client.call_tool("generate", {"prompt": "x"})

    result = await session(go, server)
    assert took[0] < 0.5
    assert not result.is_error and generator.loaded


async def test_a_call_after_a_cancelled_one_reports_it_is_queued_while_the_device_finishes_the_step():
    generator = FakeGenerator(step_delay=0.5)
    server, _ = make(generator)
    messages: list[str] = []

    async def go(client):
        started = anyio.Event()

        async def first_progress(progress, total, message):
            if message == "started":
                started.set()

        async def second_progress(progress, total, message):
            messages.append(message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("generate", {"prompt": "x", "steps": 20},
                                                   progress_callback=first_progress))
            await started.wait()
            tg.cancel_scope.cancel()
        return await client.call_tool("generate", {"prompt": "y", "steps": 1}, progress_callback=second_progress)

    result = await session(go, server)
    assert not result.is_error and generator.max_active == 1
    assert messages[0] == "queued: 1 job ahead"
