"""Fitting the pipeline on its device: offload hooks, sizes read from disk, VAE tiling, out of memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gems_mcp.generation import offload
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.types import GenerationParams

COMPONENTS = ("text_encoder", "unet", "vae")


def request(seeds=(1, 2), **params):
    params = {"width": 64, "height": 64, "steps": 2, "guidance": 2.0, **params}
    return GenerationRequest(prompt="a red circle", seeds=list(seeds), params=GenerationParams(**params))


@pytest.fixture(scope="module")
def plain(tiny_model):
    return DiffusersGenerator(str(tiny_model), device="cpu", offload="none")


def same_pixels(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def test_model_offload_installs_diffusers_hooks_and_draws_the_same_images(tiny_model, plain):
    generator = DiffusersGenerator(str(tiny_model), device="cpu", offload="model")
    pipe = generator.load()
    # diffusers' own record of model offload: one accelerate hook per component, an offload device.
    assert len(pipe._all_hooks) == len(COMPONENTS)
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in COMPONENTS)
    assert pipe._offload_device == torch.device("cpu:0")
    assert "offload model" in generator.report
    assert same_pixels(generator.generate(request()), plain.generate(request()))


def test_sequential_offload_installs_a_hook_on_every_layer(tiny_model):
    generator = DiffusersGenerator(str(tiny_model), device="cpu", offload="sequential")
    pipe = generator.load()
    for name in COMPONENTS:
        hooked = [m for m in getattr(pipe, name).modules() if getattr(getattr(m, "_hf_hook", None), "execution_device", None)]
        assert hooked, name
    assert pipe._execution_device == torch.device("cpu:0")
    assert next(pipe.unet.parameters()).device == torch.device("meta")  # weights wait in the CPU map, not in place
    assert "offload sequential" in generator.report
    # Not run here: on the CPU diffusers names the execution device "cpu:0", and accelerate's move of a
    # weight from "cpu" to "cpu:0" returns a plain tensor where a Parameter is needed (cuda:0 to cuda:0 is fine).


def test_sizes_read_from_the_weight_files_match_the_loaded_weights(tiny_model, plain):
    on_disk = offload.size_on_disk(tiny_model, itemsize=4)
    loaded = {name: sum(p.numel() * 4 for p in getattr(plain.load(), name).parameters()) for name in COMPONENTS}
    assert on_disk.components == loaded
    half = offload.size_on_disk(tiny_model, itemsize=2)  # bf16 weights take half the bytes of the fp32 files
    assert half.total * 2 == on_disk.total


def test_auto_picks_the_cheapest_offload_the_free_memory_allows():
    size = offload.PipelineSize({"text_encoder": 9 * 2**30, "transformer": 12 * 2**30, "vae": 2**28})
    assert offload.choose("auto", "cuda:0", size, free=80 * 2**30) == "none"
    assert offload.choose("auto", "cuda:0", size, free=20 * 2**30) == "model"
    assert offload.choose("auto", "cuda:0", size, free=8 * 2**30) == "sequential"
    assert offload.choose("auto", "cpu", size, free=None) == "none"  # the CPU has no VRAM to fit
    assert offload.choose("model", "cuda:0", size, free=80 * 2**30) == "model"  # a set mode is kept


def test_auto_installs_model_offload_when_only_the_largest_component_fits(tiny_model, monkeypatch):
    size = offload.size_on_disk(tiny_model, itemsize=4)
    room = int(size.largest * offload.HEADROOM + offload.HEADROOM_BYTES) + 1
    monkeypatch.setattr(offload, "free_memory", lambda device: room)
    generator = DiffusersGenerator(str(tiny_model), device="cpu", offload="auto")
    assert len(generator.load()._all_hooks) == len(COMPONENTS) and generator._offload == "model"


def test_the_vae_decodes_in_slices_and_tiles_only_very_large_images(plain):
    vae = plain.load().vae
    offload.fit_vae(plain.load(), 64, 64)
    assert vae.use_slicing and not vae.use_tiling
    offload.fit_vae(plain.load(), 2048, 2048)
    assert vae.use_tiling
    offload.fit_vae(plain.load(), 64, 64)
    assert not vae.use_tiling


@pytest.mark.anyio
async def test_out_of_memory_in_a_round_names_the_fix_keeps_the_trajectory_and_the_next_call_runs(tiny_model, monkeypatch):
    from diffusers import UNet2DConditionModel
    from mcp import Client

    from gems_mcp.config import load_settings
    from gems_mcp.server import create_server

    server = create_server(load_settings(model=str(tiny_model), offload="none"))
    forward = UNet2DConditionModel.forward
    failures = [1]

    def short_of_memory(self, *args, **kwargs):
        if failures:
            failures.pop()
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, *args, **kwargs)

    async with Client(server) as client:
        first = await client.call_tool("generate", {"prompt": "a red circle", "n": 2, "steps": 2, "seed": 1})
        tid = first.content[0].text.split()[1]
        monkeypatch.setattr(UNet2DConditionModel, "forward", short_of_memory)
        failed = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a blue circle", "n": 2})
        kept = await client.read_resource(f"gems://trajectories/{tid}")
        again = await client.call_tool("refine", {"trajectory_id": tid, "prompt": "a blue circle", "n": 2})
    assert not first.is_error
    assert failed.is_error
    message = failed.content[0].text
    assert "ran out of memory drawing 2 images of 64x64" in message and "GEMS_OFFLOAD=model" in message
    assert [r["index"] for r in json.loads(kept.contents[0].text)["rounds"]] == [1]  # nothing lost, nothing half-made
    assert not again.is_error
    assert len(failures) == 0 and "round 2" in again.content[0].text.lower()


def test_compile_compiles_the_denoiser_in_place_and_warms_it_up_at_load(tiny_model, monkeypatch):
    compiled = []
    # Recorded rather than run: inductor takes minutes on a shared CPU (a real compile is in scripts/gpu_check.py).
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    generator = DiffusersGenerator(str(tiny_model), device="cpu", offload="none", compile=True)
    pipe = generator.load()
    assert compiled == ["UNet2DConditionModel"]
    assert "compiled (warm-up" in generator.report
    assert generator.levers().get("image-to-image", "edit")[0].unet is pipe.unet  # edits run the same compiled module


def test_a_unet_runs_channels_last_on_cuda_only(tiny_model):
    from gems_mcp.generation.loading import _speed_up

    def conv_weight(pipe):
        return next(m.weight for m in pipe.unet.modules() if isinstance(m, torch.nn.Conv2d))

    on_cpu = DiffusersGenerator(str(tiny_model), device="cpu", offload="none").load()
    assert not conv_weight(on_cpu).is_contiguous(memory_format=torch.channels_last)
    _speed_up(on_cpu, "cuda:0", "none", compile_denoiser=False)  # what a CUDA load does (weights stay here)
    assert conv_weight(on_cpu).is_contiguous(memory_format=torch.channels_last)
