"""The generic latent path: edits and repaints on a pipeline's own latents, for families diffusers gives no
img2img or inpaint class (and, to check it against theirs, for the families it does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gems_mcp.errors import GenerationCancelled
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.generation.latent_paint import LatentPaint
from gems_mcp.generation.levers import Levers, step_callback
from gems_mcp.generation.loading import accepts
from gems_mcp.types import GenerationParams, Region
from tests.families.builders import FAMILIES

BOX = Region(prompt="a blue square", box=(0.25, 0.25, 0.75, 0.75))


def request(seeds, **more):
    params = {k: more.pop(k) for k in ("strength",) if k in more}
    steps = more.pop("steps", 2)
    return GenerationRequest(prompt="a red circle", seeds=list(seeds),
                             params=GenerationParams(width=64, height=64, steps=steps, **params), **more)


def generic(folder) -> DiffusersGenerator:
    """A generator whose edits, repaints and layouts all take the generic path, whatever the family."""
    generator = DiffusersGenerator(str(folder), device="cpu", offload="none")
    generator._levers = Levers(generator.load(), prefer_own=False)
    return generator


def checkerboard() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8))


def vae_round_trip(pipe, image) -> np.ndarray:
    """decode(encode(image)) with the raw VAE: no scaling, shift, mean or packing involved."""
    pixels = pipe.image_processor.preprocess(image, height=64, width=64)
    video = pipe.vae.encoder.conv_in.weight.ndim == 5
    encoded = pipe.vae.encode(pixels[:, :, None] if video else pixels)
    latents = encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latent
    decoded = pipe.vae.decode(latents).sample
    return pipe.image_processor.postprocess(decoded[:, :, 0] if video else decoded, output_type="np")[0]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_latents_kept_outside_the_mask_decode_to_the_image_itself(name, family_folder):
    """With nothing to repaint, the last step hands back the image's own latents: the pipeline's decode then
    gives the VAE's round trip of the image, so encoding, normalising and packing undo the pipeline's exactly."""
    pipe = generic(family_folder(name)).load()
    image = checkerboard()
    paint = LatentPaint(pipe, [image], strength=1.0, mask=Image.new("L", (64, 64), 0))
    if step_callback(pipe) == "on_step_end":
        callback = {"callback_on_step_end": paint.on_step_end, "callback_on_step_end_tensor_inputs": ["latents"]}
    else:
        callback = {"callback": lambda i, t, latents: latents.copy_(paint.on_step_end(pipe, i, t, {"latents": latents})["latents"]),
                    "callback_steps": 1}
    if accepts(pipe, "use_resolution_binning"):
        callback["use_resolution_binning"] = False
    with torch.inference_mode(), paint.installed():
        out = pipe("a red circle", width=64, height=64, num_inference_steps=2, output_type="np",
                   generator=torch.Generator().manual_seed(0), **callback).images[0]
        expected = vae_round_trip(pipe, image)
    assert np.abs(out - expected).max() < 1e-4
    assert np.abs(out - 0.5).max() > 0.05  # a picture, not a flat grey that would match anything


@pytest.mark.parametrize("name", ["lumina2", "cogview4"])
def test_a_full_strength_edit_is_the_text_to_image_draw_of_its_seed(name, family_folder):
    """Flow matching's first level is pure noise, and the noise is the pipeline's own draw for the seed."""
    generator = generic(family_folder(name))
    drawn = generator.generate(request([7]))[0]
    edited = generator.generate(request([7], init_image=checkerboard(), strength=1.0))[0]
    halfway = generator.generate(request([7], init_image=checkerboard(), strength=0.5))[0]
    assert np.array_equal(np.asarray(edited), np.asarray(drawn))
    assert not np.array_equal(np.asarray(halfway), np.asarray(drawn))


@pytest.mark.parametrize("name", ["pixart-sigma", "lumina2"])
def test_strength_keeps_the_last_part_of_the_schedule_and_progress_counts_it(name, family_folder):
    generator = generic(family_folder(name))
    steps = []
    generator.generate(request([1], init_image=checkerboard(), strength=0.5, steps=4), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(1, 2), (2, 2)]
    steps.clear()
    generator.generate(request([1], init_image=checkerboard(), edits=[BOX], steps=3), on_step=lambda s, n: steps.append((s, n)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("name", ["pixart-sigma", "sana"])
def test_stop_ends_a_generic_repaint_and_the_pipeline_is_left_as_it_was(name, family_folder):
    generator = generic(family_folder(name))
    pipe = generator.load()
    seen = []
    with pytest.raises(GenerationCancelled):
        generator.generate(request([1, 2], init_image=checkerboard(), edits=[BOX], steps=4),
                           on_step=lambda s, n: seen.append(s), should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2]
    assert "prepare_latents" not in vars(pipe) and "set_timesteps" not in vars(pipe.scheduler)
    assert len(generator.generate(request([1]))) == 1  # and it still draws
