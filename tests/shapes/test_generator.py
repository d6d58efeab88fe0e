"""EmbeddedGenerator with the shipped weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gems_mcp.errors import GenerationCancelled, InvalidRequest, Unsupported
from gems_mcp.generation.base import GenerationRequest, Generator
from gems_mcp.shapes import world
from gems_mcp.shapes.generator import EmbeddedGenerator
from gems_mcp.shapes.judge import ExactJudge, find_objects
from gems_mcp.types import ImageParams, Region

STEPS = 10


@pytest.fixture(scope="module")
def generator() -> EmbeddedGenerator:
    return EmbeddedGenerator()


def _request(
    prompt: str = "a red circle",
    seeds: tuple[int, ...] = (0,),
    strength: float | None = None,
    init_image: Image.Image | None = None,
    **kw: object,
) -> GenerationRequest:
    wanted = ImageParams(**({"width": 256, "height": 256, "steps": STEPS} | kw))  # type: ignore[arg-type]
    params = EmbeddedGenerator().capabilities().resolve(wanted, strength)
    return GenerationRequest(prompt, list(seeds), params, init_image=init_image)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_it_is_a_generator_with_the_documented_defaults(generator: EmbeddedGenerator) -> None:
    assert isinstance(generator, Generator)
    assert generator.name == "embedded-shapes"
    caps = generator.capabilities()
    assert (caps.width, caps.height, caps.steps) == (256, 256, 20)
    assert caps.guidance is not None and caps.guidance >= 1.0
    for feature in ("guidance", "edit", "layout", "inpaint"):
        assert feature in caps.features
    assert "negative_prompt" not in caps.features
    assert caps.max_regions == 8
    assert isinstance(generator.judge(), ExactJudge)
    assert generator.checklist("a red circle")[-1].question == "Are there exactly 1 red circle, and nothing else?"


def test_same_seed_gives_the_same_pixels(generator: EmbeddedGenerator) -> None:
    first = generator.generate(_request(seeds=(7,)))[0]
    second = generator.generate(_request(seeds=(7,)))[0]
    other = generator.generate(_request(seeds=(8,)))[0]
    assert np.array_equal(_pixels(first), _pixels(second))
    assert not np.array_equal(_pixels(first), _pixels(other))


def test_a_batch_gives_one_image_per_seed_independent_of_the_batch(generator: EmbeddedGenerator) -> None:
    images = generator.generate(_request(seeds=(1, 2, 3), width=64, height=96))
    assert [im.size for im in images] == [(64, 96)] * 3
    alone = generator.generate(_request(seeds=(2,), width=64, height=96))[0]
    # batched float math may differ in the last bit; a pixel never moves by more than one level
    assert np.abs(_pixels(images[1]) - _pixels(alone)).max() <= 1


def test_progress_is_reported_every_step(generator: EmbeddedGenerator) -> None:
    calls: list[tuple[int, int]] = []
    generator.generate(_request(), on_step=lambda step, total: calls.append((step, total)))
    assert calls == [(i, STEPS) for i in range(1, STEPS + 1)]


def test_should_stop_cancels_during_denoising(generator: EmbeddedGenerator) -> None:
    calls: list[int] = []
    with pytest.raises(GenerationCancelled):
        generator.generate(
            _request(), on_step=lambda step, total: calls.append(step), should_stop=lambda: len(calls) >= 3
        )
    assert calls == [1, 2, 3]


def test_edit_with_low_strength_keeps_the_init_image(generator: EmbeddedGenerator) -> None:
    scene = world.place(world.parse("a green square and a yellow triangle"), np.random.default_rng(0))
    init = Image.fromarray(world.render(scene)).resize((256, 256), Image.Resampling.NEAREST)
    steps: list[int] = []
    edited = generator.generate(
        _request("a green square and a yellow triangle", strength=0.3, init_image=init),
        on_step=lambda step, total: steps.append(total),
    )[0]
    assert steps[-1] == 3  # 30% of the schedule
    kept = sorted((o.color, o.object) for o in find_objects(edited))
    assert kept == [("green", "square"), ("yellow", "triangle")]
    fresh = generator.generate(_request("a green square and a yellow triangle"))[0]
    assert np.abs(_pixels(edited) - _pixels(init)).mean() < np.abs(_pixels(fresh) - _pixels(init)).mean()


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("a cat wearing a hat", "not a shape"), ("", "empty"), ("five red circles", "at most 4")],
)
def test_prompts_outside_the_world_raise_unsupported(generator: EmbeddedGenerator, prompt: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        generator.generate(_request(prompt))


@pytest.mark.parametrize(
    ("params", "strength", "message"),
    [
        ({"width": 100}, None, "multiple of 32"),
        ({"height": 2048}, None, "multiple of 32"),
        ({"steps": 0}, None, "steps must be"),
        ({}, 0.0, "strength"),
        ({"negative_prompt": "blurry"}, None, "negative prompt"),
    ],
)
def test_bad_parameters_are_refused_by_the_capabilities(
    generator: EmbeddedGenerator, params: dict[str, object], strength: float | None, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        generator.capabilities().resolve(ImageParams(**params), strength)  # type: ignore[arg-type]


def test_validate_prompt_uses_the_world_grammar(generator: EmbeddedGenerator) -> None:
    generator.validate_prompt("two blue squares and a red circle")
    with pytest.raises(Unsupported, match="a red circle"):
        generator.validate_prompt("a sunset over the sea")


def test_a_red_circle_prompt_mostly_draws_a_red_object(generator: EmbeddedGenerator) -> None:
    images = generator.generate(_request(seeds=tuple(range(8)), steps=20, width=32, height=32))
    red = sum(any(o.color == "red" for o in find_objects(im)) for im in images)
    assert red >= 6


# ---------------------------------------------------------------- layouts and region edits


def _scene() -> tuple[list[world.Placed], Image.Image]:
    objects = [world.Placed("circle", "red", 3, 10, 9), world.Placed("square", "blue", 19, 11, 9)]
    return objects, Image.fromarray(world.render(objects)).resize((256, 256), Image.Resampling.NEAREST)


def _box_of(obj: world.Placed, pad: int = 1) -> tuple[float, float, float, float]:
    return ((obj.x0 - pad) / 32, (obj.y0 - pad) / 32, (obj.x0 + obj.side + pad) / 32, (obj.y0 + obj.side + pad) / 32)


def _centred_in(box: tuple[float, float, float, float], image: Image.Image) -> list[str]:
    found = []
    for d in find_objects(image):
        cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
            found.append(f"{d.color} {d.object}")
    return found


def _layout_request(prompt: str, regions: list[Region], **kw: object) -> GenerationRequest:
    request = _request(prompt, **kw)  # type: ignore[arg-type]
    request.layout = regions
    return request


def test_inpaint_keeps_every_pixel_outside_the_boxes_byte_identical(generator: EmbeddedGenerator) -> None:
    rng = np.random.default_rng(0)
    # an init image of another size than the output, with noise so that every pixel is distinct
    init = Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    boxes = [(0.13, 0.27, 0.61, 0.55), (0.7, 0.71, 0.93, 0.99)]
    request = _request("a red circle", seeds=(0, 1), width=160, height=96, init_image=init)
    request.edits = [Region(prompt="a blue square", box=boxes[0]), Region(prompt="", box=boxes[1])]
    images = generator.generate(request)
    expected = np.asarray(init.resize((160, 96), Image.Resampling.NEAREST))
    xs, ys = np.arange(160), np.arange(96)
    inside = np.zeros((96, 160), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= ((ys + 1 > y0 * 96) & (ys < y1 * 96))[:, None] & ((xs + 1 > x0 * 160) & (xs < x1 * 160))[None]
    for image in images:
        assert image.size == (160, 96)
        pixels = np.asarray(image)
        assert np.array_equal(pixels[~inside], expected[~inside])
        assert not np.array_equal(pixels[inside], expected[inside])  # the boxes were repainted


def test_inpaint_at_the_init_size_keeps_the_init_pixels_and_is_deterministic(generator: EmbeddedGenerator) -> None:
    objects, init = _scene()
    request = _request("a red circle", seeds=(5,), init_image=init)
    request.edits = [Region(prompt="", box=_box_of(objects[1]))]
    first, again = generator.generate(request)[0], generator.generate(request)[0]
    assert np.array_equal(np.asarray(first), np.asarray(again))
    # the red circle, outside the box, is untouched
    assert _centred_in(_box_of(objects[0]), first) == ["red circle"]


@pytest.mark.slow
def test_erasing_a_box_leaves_no_object_centred_in_it(generator: EmbeddedGenerator) -> None:
    objects, init = _scene()
    box = _box_of(objects[1])
    request = _request("a red circle", seeds=tuple(range(4)), init_image=init)
    request.edits = [Region(prompt="", box=box)]
    for image in generator.generate(request):
        assert _centred_in(box, image) == []
        assert sorted(f"{d.color} {d.object}" for d in find_objects(image)) == ["red circle"]


def _layout_trained() -> bool:
    import json

    from gems_mcp.shapes.generator import WEIGHTS

    return "layout_share" in json.loads((WEIGHTS / "config.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(not _layout_trained(), reason="the shipped weights were trained without layouts")
def test_a_recolor_edit_draws_the_new_object_in_its_box_in_most_seeds(generator: EmbeddedGenerator) -> None:
    objects, init = _scene()
    box = _box_of(objects[1])
    request = _request("a red circle and a green square", seeds=tuple(range(8)), init_image=init, steps=20)
    request.edits = [Region(prompt="a green square", box=box)]
    hits = sum(_centred_in(box, image) == ["green square"] for image in generator.generate(request))
    assert hits >= 6


@pytest.mark.slow
@pytest.mark.skipif(not _layout_trained(), reason="the shipped weights were trained without layouts")
def test_a_layout_puts_each_object_in_its_box_in_most_seeds(generator: EmbeddedGenerator) -> None:
    regions = [
        Region(prompt="a yellow triangle", box=(0.05, 0.6, 0.35, 0.9)),
        Region(prompt="a purple circle", box=(0.6, 0.1, 0.9, 0.4)),
    ]
    images = generator.generate(
        _layout_request("a yellow triangle and a purple circle", regions, seeds=tuple(range(8)), steps=20)
    )
    hits = sum(
        _centred_in(regions[0].box, im) == ["yellow triangle"] and _centred_in(regions[1].box, im) == ["purple circle"]
        for im in images
    )
    assert hits >= 6


def test_a_layout_request_draws_at_the_requested_size(generator: EmbeddedGenerator) -> None:
    regions = [
        Region(prompt="red circle", box=(0.1, 0.1, 0.4, 0.4)),
        Region(prompt="a square", box=(0.3, 0.3, 0.6, 0.6)),
    ]
    images = generator.generate(
        _layout_request("a red circle and a square", regions, seeds=(0, 1), width=64, height=64)
    )
    assert [im.size for im in images] == [(64, 64)] * 2  # overlapping boxes are allowed: the later one wins


@pytest.mark.parametrize(
    ("region", "error", "message"),
    [
        ("two red circles", Unsupported, "one object"),
        ("a red circle and a blue square", Unsupported, "one object"),
        ("a dog", Unsupported, "one object"),
        ("", InvalidRequest, "needs a prompt"),
    ],
)
def test_layout_regions_outside_the_grammar_are_refused(
    generator: EmbeddedGenerator, region: str, error: type[Exception], message: str
) -> None:
    request = _layout_request("a red circle", [Region(prompt=region, box=(0.1, 0.1, 0.4, 0.4))])
    with pytest.raises(error, match=message):
        generator.generate(request)


def test_too_many_regions_or_edits_without_an_image_are_refused(generator: EmbeddedGenerator) -> None:
    nine = [Region(prompt="a circle", box=(i / 10, 0.0, (i + 1) / 10, 0.1)) for i in range(9)]
    with pytest.raises(InvalidRequest, match="at most 8"):
        generator.generate(_layout_request("a circle", nine))
    request = _request("a circle")
    request.edits = nine[:1]
    with pytest.raises(InvalidRequest, match="init_image"):
        generator.generate(request)


def test_a_background_prompt_is_accepted_and_changes_nothing(generator: EmbeddedGenerator) -> None:
    regions = [Region(prompt="a red circle", box=(0.1, 0.1, 0.4, 0.4))]
    plain = generator.generate(_layout_request("a red circle", regions, width=32, height=32))[0]
    request = _layout_request("a red circle", regions, width=32, height=32)
    request.background = "a sunny beach"
    assert np.array_equal(np.asarray(generator.generate(request)[0]), np.asarray(plain))


def test_weights_without_layout_input_load_and_draw_the_same_with_an_empty_layout(tmp_path: Path) -> None:
    import torch

    from gems_mcp.shapes.layout import LAYOUT_CHANNELS
    from gems_mcp.shapes.model import ModelConfig, SampleJob, ShapesModel, load_weights, sample, save_weights, tokenize

    torch.manual_seed(0)
    old = ShapesModel(replace(ModelConfig.preset("tiny"), layout_channels=0)).eval()
    with torch.no_grad():  # a non-trivial output layer, so that the comparison means something
        for p in old.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    save_weights(old, tmp_path, {"guidance": 2.0})
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model"]["layout_channels"]  # the format written before layouts existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    new, _ = load_weights(tmp_path)
    assert new.config.layout_channels == LAYOUT_CHANNELS
    assert new.unet.conv_in.weight[:, 14:].abs().sum() == 0
    ids = [tokenize(world.parse("a red circle above a blue square"))] * 2
    before = sample(old, SampleJob(ids, [0, 1], 4, 2.0))
    after = sample(new, SampleJob(ids, [0, 1], 4, 2.0))
    zeros = torch.zeros(2, LAYOUT_CHANNELS, 32, 32)
    with_empty_map = sample(new, SampleJob(ids, [0, 1], 4, 2.0, layout=zeros))
    assert torch.allclose(before, after, atol=1e-5)
    assert torch.allclose(before, with_empty_map, atol=1e-5)
