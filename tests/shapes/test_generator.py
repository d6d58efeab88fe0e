"""EmbeddedGenerator with the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gems_mcp.shapes.judge import ExactJudge, find_objects
from gems_mcp.generation.base import (
    GenerationCancelled,
    GenerationError,
    GenerationRequest,
    Generator,
)
from gems_mcp.shapes import world
from gems_mcp.shapes.generator import EmbeddedGenerator

STEPS = 10


@pytest.fixture(scope="module")
def generator() -> EmbeddedGenerator:
    return EmbeddedGenerator()


def _request(prompt: str = "a red circle", seeds: tuple[int, ...] = (0,), **kw: object) -> GenerationRequest:
    params = {"width": 256, "height": 256, "steps": STEPS} | kw
    return GenerationRequest(prompt, list(seeds), **params)  # type: ignore[arg-type]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_it_is_a_generator_with_the_documented_defaults(generator: EmbeddedGenerator) -> None:
    assert isinstance(generator, Generator)
    assert generator.name == "embedded-shapes"
    defaults = generator.defaults()
    assert (defaults.width, defaults.height, defaults.steps) == (256, 256, 20)
    assert defaults.guidance is not None and defaults.guidance >= 1.0
    assert generator.supports("guidance") and generator.supports("edit")
    assert not generator.supports("negative_prompt")
    assert isinstance(generator.judge(), ExactJudge)
    assert generator.checklist("a red circle")[-1].question == "Are there no other objects?"


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
    kept = sorted((o.color, o.shape) for o in find_objects(edited))
    assert kept == [("green", "square"), ("yellow", "triangle")]
    fresh = generator.generate(_request("a green square and a yellow triangle"))[0]
    assert np.abs(_pixels(edited) - _pixels(init)).mean() < np.abs(_pixels(fresh) - _pixels(init)).mean()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": "a cat wearing a hat"}, "not a shape"),
        ({"prompt": ""}, "empty"),
        ({"prompt": "five red circles"}, "at most 4"),
        ({"width": 100}, "multiples of 32"),
        ({"height": 2048}, "multiples of 32"),
        ({"steps": 0}, "steps must be"),
        ({"strength": 0.0}, "strength"),
        ({"negative_prompt": "blurry"}, "negative prompts"),
    ],
)
def test_bad_requests_raise_a_clear_generation_error(
    generator: EmbeddedGenerator, changes: dict[str, object], message: str
) -> None:
    request = _request()
    for key, value in changes.items():
        setattr(request, key, value)
    with pytest.raises(GenerationError, match=message):
        generator.generate(request)


def test_validate_prompt_uses_the_world_grammar(generator: EmbeddedGenerator) -> None:
    generator.validate_prompt("two blue squares and a red circle")
    with pytest.raises(GenerationError, match="a red circle"):
        generator.validate_prompt("a sunset over the sea")


def test_a_red_circle_prompt_mostly_draws_a_red_object(generator: EmbeddedGenerator) -> None:
    images = generator.generate(_request(seeds=tuple(range(8)), steps=20, width=32, height=32))
    red = sum(any(o.color == "red" for o in find_objects(im)) for im in images)
    assert red >= 6
