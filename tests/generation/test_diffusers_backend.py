"""DiffusersGenerator on a tiny random Stable Diffusion pipeline saved to disk and loaded back."""

from __future__ import annotations

import json
import shutil

import anyio
import numpy as np
import pytest
from mcp import Client

from gems_mcp.config import load_settings
from gems_mcp.generation.base import GenerationCancelled, GenerationError, GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.server import create_server
from tests.tiny_pipeline import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def generator(tiny_model):
    return DiffusersGenerator(str(tiny_model))


def request(**kw):
    base = dict(prompt="a red circle", seeds=[1], width=64, height=64, steps=3, guidance=2.0)
    return GenerationRequest(**{**base, **kw})


def pixels(image):
    return np.asarray(image)


def test_defaults_come_from_the_loaded_pipeline(generator):
    d = generator.defaults()
    assert (d.width, d.height) == (64, 64)
    assert d.steps == 50 and d.guidance == 7.5
    assert generator.supports("negative_prompt") and generator.supports("guidance")


def test_one_batched_call_makes_one_image_per_seed_reproducibly(generator):
    first = generator.generate(request(seeds=[3, 4, 5]))
    again = generator.generate(request(seeds=[3, 4, 5]))
    assert len(first) == 3 and all(im.size == (64, 64) for im in first)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first, again))
    assert not np.array_equal(pixels(first[0]), pixels(first[1]))


def test_every_step_is_reported_and_stop_interrupts(generator):
    steps = []
    generator.generate(request(steps=4), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    seen = []
    with pytest.raises(GenerationCancelled):
        generator.generate(request(steps=6), on_step=lambda s, n: seen.append(s), should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2


def test_edit_shares_the_loaded_weights_and_changes_the_image(generator):
    source = generator.generate(request(seeds=[9]))[0]
    edited = generator.generate(request(seeds=[10], init_image=source, strength=0.5, steps=4))[0]
    assert generator.supports("edit")
    assert generator._img2img.unet is generator._pipe.unet
    assert generator._img2img.vae is generator._pipe.vae
    assert edited.size == (64, 64)
    assert not np.array_equal(pixels(source), pixels(edited))


def test_an_argument_the_pipeline_does_not_take_is_refused(generator):
    with pytest.raises(GenerationError, match="does not take 'clip_skip_typo'"):
        generator.generate(request(extra={"clip_skip_typo": 2}))


def test_a_folder_missing_optional_components_still_loads(tiny_model, tmp_path):
    folder = tmp_path / "no-extras"
    shutil.copytree(tiny_model, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    (folder / "model_index.json").write_text(json.dumps(index))
    images = DiffusersGenerator(str(folder)).generate(request())
    assert len(images) == 1


def test_a_missing_model_or_a_folder_that_is_no_pipeline_gives_a_clear_error(tmp_path):
    with pytest.raises(GenerationError, match="does not exist"):
        DiffusersGenerator(str(tmp_path / "nowhere")).defaults()
    (tmp_path / "notes").mkdir()
    with pytest.raises(GenerationError, match="no model_index.json"):
        DiffusersGenerator(str(tmp_path / "notes")).defaults()


def test_server_runs_the_real_pipeline_and_survives_a_bad_model(tiny_model, tmp_path):
    good = create_server(load_settings(model=str(tiny_model)))
    bad = create_server(load_settings(model=str(tmp_path / "missing-model")))

    async def go():
        async with Client(good) as client:
            ok = await client.call_tool("generate", {"prompt": "a red circle", "n": 2, "steps": 2, "seed": 1})
        async with Client(bad) as client:
            failed = await client.call_tool("generate", {"prompt": "a red circle"})
            tools = await client.list_tools()
        return ok, failed, tools

    ok, failed, tools = anyio.run(go)
    assert not ok.is_error and [b.type for b in ok.content].count("resource_link") == 2
    assert failed.is_error and "does not exist" in failed.content[0].text
    assert any(t.name == "generate" for t in tools.tools)


class _PickyPipeline:
    """Stands in for a loaded pipeline whose input checks refuse the request, as SD3's do for sizes."""

    def __call__(self, prompt, num_images_per_prompt=1, num_inference_steps=28, output_type="pil", width=None,
                 height=None, generator=None, callback_on_step_end=None):
        raise ValueError(f"`height` and `width` have to be divisible by 16 but are {height} and {width}.\nmore detail")


def test_a_request_the_pipeline_refuses_is_a_clear_error():
    generator = DiffusersGenerator("picky")
    generator._pipe, generator._torch_generator_device = _PickyPipeline(), "cpu"
    refused = "_PickyPipeline refused the request: `height` and `width` have to be divisible by 16 but are 72 and 72.$"
    with pytest.raises(GenerationError, match=refused):
        generator.generate(request(width=72, height=72, guidance=None))


class _ShortSchedulePipeline:
    """Runs fewer timesteps than asked, as img2img does after strength trims the schedule."""

    def __call__(self, prompt, num_images_per_prompt=1, num_inference_steps=28, output_type="pil", width=None,
                 height=None, generator=None, callback_on_step_end=None):
        from PIL import Image

        self._num_timesteps = 3
        for i in range(self._num_timesteps):
            callback_on_step_end(self, i, 0, {})
        return type("Output", (), {"images": [Image.new("RGB", (width, height))] * num_images_per_prompt})()


def test_progress_counts_the_steps_the_pipeline_really_runs():
    generator = DiffusersGenerator("short")
    generator._pipe, generator._torch_generator_device = _ShortSchedulePipeline(), "cpu"
    steps = []
    generator.generate(request(steps=5, guidance=None), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


class _NoInterruptPipeline:
    """Calls back every step but never reads an interrupt flag, like Kandinsky 3 or Stable Cascade."""

    def __call__(self, prompt, num_images_per_prompt=1, num_inference_steps=28, output_type="pil", width=None,
                 height=None, generator=None, callback_on_step_end=None):
        from PIL import Image

        for i in range(num_inference_steps):
            callback_on_step_end(self, i, 0, {})
        return type("Output", (), {"images": [Image.new("RGB", (width, height))] * num_images_per_prompt})()


def test_stop_ends_denoising_within_a_step_even_where_the_pipeline_ignores_interrupt():
    generator = DiffusersGenerator("no-interrupt")
    generator._pipe, generator._torch_generator_device = _NoInterruptPipeline(), "cpu"
    seen = []
    with pytest.raises(GenerationCancelled):
        generator.generate(request(steps=10, guidance=None), on_step=lambda s, n: seen.append(s),
                           should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2]
