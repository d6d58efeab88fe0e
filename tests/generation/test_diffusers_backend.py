"""DiffusersGenerator on a tiny random Stable Diffusion pipeline saved to disk and loaded back."""

from __future__ import annotations

import json
import shutil
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from gems_mcp.boxes import to_pixels as pixel_box
from gems_mcp.errors import InvalidRequest, Unsupported
from gems_mcp.generation.base import GenerationCancelled, GenerationError, GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.generation.regions import ERASE_PROMPT, blend_mask, cell_box, model_mask, plan_passes
from gems_mcp.types import GenerationParams, Region


@pytest.fixture(scope="session")
def generator(tiny_model):
    return DiffusersGenerator(str(tiny_model))


def request(prompt="a red circle", seeds=(1,), init_image=None, layout=(), background=None, edits=(), **params):
    params = {"width": 64, "height": 64, "steps": 3, "guidance": 2.0, **params}
    return GenerationRequest(
        prompt=prompt, seeds=list(seeds), params=GenerationParams(**params), init_image=init_image,
        layout=list(layout), background=background, edits=list(edits),
    )


def pixels(image):
    return np.asarray(image)


def test_defaults_come_from_the_loaded_pipeline(generator):
    caps = generator.capabilities()
    assert (caps.width, caps.height) == (64, 64)
    assert caps.steps == 50 and caps.guidance == 7.5
    assert {"negative_prompt", "guidance"} <= caps.features
    assert {"edit", "inpaint", "layout"} <= caps.features
    assert caps.name == "StableDiffusionPipeline"


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
    assert "edit" in generator.capabilities().features
    img2img, generic = generator.levers().get("image-to-image", "edit")
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline" and not generic
    assert img2img.unet is generator._pipe.unet
    assert img2img.vae is generator._pipe.vae
    assert edited.size == (64, 64)
    assert not np.array_equal(pixels(source), pixels(edited))


def test_an_argument_the_pipeline_does_not_take_is_refused():
    generator = DiffusersGenerator("no-negative")
    generator._pipe, generator._torch_generator_device = _NoInterruptPipeline(), "cpu"
    with pytest.raises(Unsupported, match="_NoInterruptPipeline does not take 'negative_prompt'"):
        generator.generate(request(guidance=None, negative_prompt="blurry"))


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
        DiffusersGenerator(str(tmp_path / "nowhere")).capabilities()
    (tmp_path / "notes").mkdir()
    with pytest.raises(GenerationError, match="no model_index.json"):
        DiffusersGenerator(str(tmp_path / "notes")).capabilities()


@pytest.mark.anyio
async def test_server_runs_the_real_pipeline_and_survives_a_bad_model(tiny_model, tmp_path):
    from mcp import Client

    from gems_mcp.config import load_settings
    from gems_mcp.server import create_server

    good = create_server(load_settings(model=str(tiny_model)))
    bad = create_server(load_settings(model=str(tmp_path / "missing-model")))

    async with Client(good) as client:
        ok = await client.call_tool("generate", {"prompt": "a red circle", "n": 2, "steps": 2, "seed": 1})
    async with Client(bad) as client:
        failed = await client.call_tool("generate", {"prompt": "a red circle"})
        tools = await client.list_tools()
    assert not ok.is_error and [b.type for b in ok.content].count("resource_link") == 3  # two images, then the trajectory
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

    config: ClassVar[dict[str, object]] = {}  # what from_pipe reads before it finds no counterpart of this class

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


# -- region edits (inpaint) and layouts ----------------------------------------------------------

APPLE = Region(prompt="a red apple", box=(0.3, 0.2, 0.55, 0.45))  # 19.2..35.2 x 12.8..28.8 px at 64x64
CUP = Region(prompt="a blue cup", box=(0.5, 0.5, 0.875, 1.0))


def wholly(boxes, width, height, inside):
    """Pixels wholly inside (or wholly outside) the union of 0..1 boxes, computed from pixel edges."""
    xs, ys = np.arange(width), np.arange(height)
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        if inside:
            cols = (xs >= x0 * width) & (xs + 1 <= x1 * width)
            rows = (ys >= y0 * height) & (ys + 1 <= y1 * height)
        else:  # touched at all
            cols = (xs + 1 > x0 * width) & (xs < x1 * width)
            rows = (ys + 1 > y0 * height) & (ys < y1 * height)
        covered |= rows[:, None] & cols[None, :]
    return covered if inside else ~covered


def test_boxes_become_latent_cell_masks_for_the_model_and_exact_masks_for_the_blend():
    assert pixel_box(APPLE.box, 64, 64) == (19, 12, 36, 29)
    assert cell_box(APPLE.box, 64, 64, 8) == (16, 8, 40, 32)
    assert pixel_box((0.1, 0.0, 0.35, 1.0), 40, 8) == (4, 0, 14, 8)  # 0.35 * 40 is 14.000000000000002, not 15 px
    assert pixel_box((0.35, 0.0, 0.35000001, 1.0), 40, 8) == (14, 0, 15, 8)  # never empty
    model, exact = model_mask([APPLE.box], 64, 64, 8), blend_mask([APPLE.box], 64, 64)
    assert model.mode == exact.mode == "L" and model.size == exact.size == (64, 64)
    assert model.getbbox() == (16, 8, 40, 32) and exact.getbbox() == (19, 12, 36, 29)
    assert set(np.unique(np.asarray(exact))) == {0, 255}


def test_one_pass_per_distinct_prompt_and_an_empty_prompt_erases_to_the_background():
    passes = plan_passes([APPLE, CUP, Region(prompt=" a red apple ", box=(0, 0, 0.1, 0.1)), Region(prompt="", box=CUP.box)])
    assert [(p.prompt, len(p.boxes)) for p in passes] == [("a red apple", 2), ("a blue cup", 1), (ERASE_PROMPT, 1)]
    assert plan_passes([Region(prompt="", box=CUP.box)], background="a grassy field")[0].prompt == "a grassy field"


def test_region_edits_share_the_weights_and_repaint_only_inside_the_boxes(generator):
    source = generator.generate(request(seeds=[9]))[0]
    edit = request(seeds=[1, 2], init_image=source, edits=[APPLE, CUP])
    first, again = generator.generate(edit), generator.generate(edit)
    inpaint, _ = generator.levers().get("inpainting", "repaint")
    assert type(inpaint).__name__ == "StableDiffusionInpaintPipeline"
    assert inpaint.unet is generator._pipe.unet and inpaint.vae is generator._pipe.vae
    assert inpaint.text_encoder is generator._pipe.text_encoder
    assert len(first) == 2 and all(im.size == (64, 64) and im.mode == "RGB" for im in first)
    outside = wholly([APPLE.box, CUP.box], 64, 64, inside=False)
    for image in first:
        assert np.array_equal(pixels(image)[outside], pixels(source)[outside])  # byte-identical
        for box in (APPLE.box, CUP.box):
            inside = wholly([box], 64, 64, inside=True)
            assert not np.array_equal(pixels(image)[inside], pixels(source)[inside])
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first, again))
    assert not np.array_equal(pixels(first[0]), pixels(first[1]))


def test_an_erase_edit_inpaints_the_background_prompt_or_a_neutral_one(generator):
    source = generator.generate(request(seeds=[9]))[0]
    box = (0.25, 0.25, 0.75, 0.75)

    def edit(prompt, background=None):
        edits = [Region(prompt=prompt, box=box)]
        return generator.generate(request(seeds=[5], init_image=source, edits=edits, background=background))[0]

    erased = edit("")
    outside, inside = wholly([box], 64, 64, inside=False), wholly([box], 64, 64, inside=True)
    assert np.array_equal(pixels(erased)[outside], pixels(source)[outside])
    assert not np.array_equal(pixels(erased)[inside], pixels(source)[inside])
    assert np.array_equal(pixels(erased), pixels(edit(ERASE_PROMPT)))
    assert np.array_equal(pixels(edit("", background="a grassy field")), pixels(edit("a grassy field")))


def test_a_layout_paints_each_box_over_a_background_render(generator):
    layout = request(prompt="an apple and a cup", seeds=[1, 2], layout=[APPLE, CUP], background="a wooden table",
                     width=64, height=48)
    images = generator.generate(layout)
    assert len(images) == 2 and all(im.size == (64, 48) for im in images)
    background = generator.generate(request(prompt="a wooden table", seeds=[1, 2], width=64, height=48))
    outside = wholly([APPLE.box, CUP.box], 64, 48, inside=False)
    for image, plain in zip(images, background):
        assert np.array_equal(pixels(image)[outside], pixels(plain)[outside])
        assert not np.array_equal(pixels(image), pixels(plain))
    # With no background prompt, the whole prompt draws the background.
    whole = generator.generate(request(prompt="an apple and a cup", seeds=[1], layout=[APPLE], width=64, height=48))[0]
    plain = generator.generate(request(prompt="an apple and a cup", seeds=[1], width=64, height=48))[0]
    outside = wholly([APPLE.box], 64, 48, inside=False)
    assert np.array_equal(pixels(whole)[outside], pixels(plain)[outside])


def test_progress_counts_the_steps_of_every_pass(generator):
    source = generator.generate(request(seeds=[9]))[0]
    edit = {"seeds": [1], "init_image": source, "edits": [APPLE, CUP]}
    steps = []
    generator.generate(request(**edit), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(s, 6) for s in range(1, 7)]
    steps.clear()
    generator.generate(request(**edit, steps=4, strength=0.5), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(s, 4) for s in range(1, 5)]  # int(4 * 0.5) steps in each of two passes
    steps.clear()
    generator.generate(request(layout=[APPLE], steps=2), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]  # the background render, then one inpaint pass


@pytest.mark.parametrize("stop_after", [2, 4], ids=["first-pass", "second-pass"])
def test_stop_ends_a_region_edit_in_any_pass(generator, stop_after):
    source = Image.new("RGB", (64, 64), "gray")
    seen = []
    with pytest.raises(GenerationCancelled):
        generator.generate(request(seeds=[1, 2], init_image=source, edits=[APPLE, CUP]),
                           on_step=lambda s, n: seen.append(s), should_stop=lambda: len(seen) >= stop_after)
    assert seen == list(range(1, stop_after + 1))


def test_region_edits_need_an_image(generator):
    with pytest.raises(InvalidRequest, match="give the image to edit"):
        generator.generate(request(edits=[APPLE]))


def test_a_pipeline_without_an_inpainting_counterpart_says_what_it_cannot_do():
    generator = DiffusersGenerator("no-inpaint")
    generator._pipe, generator._torch_generator_device = _NoInterruptPipeline(), "cpu"
    assert not {"edit", "inpaint", "layout"} & generator.capabilities().features
    source = Image.new("RGB", (64, 64))
    with pytest.raises(Unsupported, match="^_NoInterruptPipeline has no inpainting class in diffusers and takes no "
                                          "'latents', .*, so it cannot repaint regions of an image$"):
        generator.generate(request(guidance=None, init_image=source, edits=[APPLE]))
    with pytest.raises(Unsupported, match="so it cannot draw a layout$"):
        generator.generate(request(guidance=None, layout=[APPLE]))
