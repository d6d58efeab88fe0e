"""The generator as a Ray Serve deployment on a local cluster behaves as the in-process backend does.

One cluster (2 CPUs) and one deployment of the tiny pipeline serve the whole module.
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from gems_mcp.backends import load_generator
from gems_mcp.config import load_settings
from gems_mcp.errors import GenerationCancelled, GenerationError, InvalidRequest
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.generation.ray_backend import GENERATOR_APP, RayGenerator
from gems_mcp.types import GenerationParams, Region
from tests.tiny_pipeline import build_tiny_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="module")
def remote(tiny_model):
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    generator = load_generator(load_settings(model=str(tiny_model), backend="ray", offload="none"))
    assert isinstance(generator, RayGenerator)
    yield generator
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tiny_model):
    return DiffusersGenerator(str(tiny_model), device="cpu", offload="none")


def request(seeds=(1, 2), steps=3, **more):
    params = GenerationParams(width=64, height=64, steps=steps, guidance=2.0)
    return GenerationRequest(prompt="a red circle", seeds=list(seeds), params=params, **more)


def test_ray_draws_the_same_images_with_the_same_progress_as_in_process(remote, local):
    assert remote.capabilities() == local.capabilities()
    assert remote.devices == ["ray:0"]  # one replica on a cluster without GPUs
    far, near = [], []
    images = remote.generate(request(), on_step=lambda s, n: far.append((s, n)))
    same = local.generate(request(), on_step=lambda s, n: near.append((s, n)))
    assert far == near == [(1, 3), (2, 3), (3, 3)]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, same, strict=True))


def test_a_stop_cancels_within_a_step_and_the_next_call_runs(remote, local):
    for generator in (remote, local):
        seen = []
        with pytest.raises(GenerationCancelled):
            generator.generate(request(steps=30), on_step=lambda s, n, seen=seen: seen.append(s),
                               should_stop=lambda seen=seen: len(seen) >= 2)
        assert seen == [1, 2]
        assert len(generator.generate(request(seeds=[5]))) == 1


def test_an_error_in_the_replica_comes_back_as_the_same_error_and_sentence(remote, local):
    caught = []
    for generator in (remote, local):
        with pytest.raises(InvalidRequest) as info:
            generator.generate(request(edits=[Region(prompt="a cup", box=(0, 0, 0.5, 0.5))]))
        caught.append((type(info.value), str(info.value)))
    assert caught[0] == caught[1]


def test_a_replica_that_dies_mid_generation_is_a_clear_error_and_serve_replaces_it(remote):
    def kill_replica(step, total):
        if step == 1:
            name = next(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                        if a["name"].startswith("SERVE_REPLICA::") and GENERATOR_APP in a["name"])
            ray.kill(ray.get_actor(name, namespace="serve"))

    with pytest.raises(GenerationError, match="the Ray replica running the generator failed"):
        remote.generate(request(steps=200), on_step=kill_replica)
    assert len(remote.generate(request(seeds=[7]))) == 1  # a new replica took the next call


def test_cluster_errors_go_to_stderr_since_stdout_belongs_to_the_protocol(remote, capfd):
    from ray._private import worker  # where Ray prints "(raylet) ..." cluster errors on the driver

    capfd.readouterr()
    worker.print_to_stdstream({"lines": ["the actor died"], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    out, err = capfd.readouterr()
    assert out == "" and "the actor died" in err


def test_a_judge_runs_as_a_deployment_of_its_own(remote):
    from functools import partial

    from PIL import Image

    from gems_mcp.generation.ray_backend import deploy_judge
    from gems_mcp.types import Requirement
    from tests.fakes import ScriptedJudge

    judge = deploy_judge(partial(ScriptedJudge, [[True, False]]), "scripted", None, replicas=1)
    checklist = [Requirement(id="q1", question="Is there a circle?"), Requirement(id="q2", question="Is it red?")]
    assert judge.covers(checklist[0])
    judgements = judge.verify([Image.new("RGB", (64, 64))] * 2, checklist)
    assert [[v.passed for v in j.verdicts] for j in judgements] == [[True, False], [True, False]]


@pytest.mark.anyio
async def test_the_server_runs_rounds_on_ray_with_progress(remote, tiny_model):
    from mcp import Client

    from gems_mcp.server import create_server

    server = create_server(load_settings(model=str(tiny_model), backend="ray", offload="none"))
    messages = []

    async def progress(step, total, message):
        messages.append(message)

    async with Client(server) as client:
        result = await client.call_tool(
            "generate", {"prompt": "a red circle", "n": 2, "steps": 2, "seed": 1}, progress_callback=progress
        )
    assert not result.is_error, result.content[0].text
    assert [b.type for b in result.content].count("resource_link") == 3
    assert "step 2/2" in messages


def test_a_model_judge_named_in_the_settings_runs_on_the_cluster(remote, tmp_path):
    from PIL import Image
    from ray import serve

    from gems_mcp.backends import load_judge
    from gems_mcp.checks import AtLeast
    from gems_mcp.generation.ray_backend import JUDGE_APP, RemoteJudge
    from gems_mcp.types import Requirement
    from tests.critique.tiny_models import build_tiny_owlv2

    for app in list(serve.status().applications):  # the 2-CPU cluster holds the generator and one judge
        if app.startswith(JUDGE_APP):
            serve.delete(app)
    detector = build_tiny_owlv2(tmp_path / "owl", grid=True)
    judge = load_judge(load_settings(backend="ray", judge=f"detect:{detector}"))
    assert isinstance(judge, RemoteJudge)
    question = Requirement(id="q1", question="Is there a circle?", check=AtLeast(object="circle"))
    assert judge.covers(question)
    [judgement] = judge.verify([Image.new("RGB", (64, 64))], [question])
    assert [v.requirement_id for v in judgement.verdicts] == ["q1"]
    assert judgement.verdicts[0].judge.startswith("detect:")
