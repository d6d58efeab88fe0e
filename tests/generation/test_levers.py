"""Which pipeline runs each lever: diffusers' own class for the family, else the generic latent path."""

from __future__ import annotations

import diffusers
import pytest

from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.generation.levers import own_class


@pytest.mark.parametrize(
    ("family", "img2img", "inpaint"),
    [
        ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
        ("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"),
        ("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline"),
        ("PixArtSigmaPipeline", None, None),
        ("SanaPipeline", None, None),
        ("Lumina2Pipeline", None, None),
        ("CogView4Pipeline", None, None),
    ],
)
def test_own_classes_are_read_from_diffusers_autopipeline_tables(family, img2img, inpaint):
    """Private use: diffusers.pipelines.auto_pipeline's AUTO_*_PIPELINES_MAPPING and SUPPORTED_TASKS_MAPPINGS.
    When this fails, diffusers renamed or moved those tables: every family then falls to the generic path."""
    cls = getattr(diffusers, family)
    assert getattr(own_class(cls, "image-to-image"), "__name__", None) == img2img
    assert getattr(own_class(cls, "inpainting"), "__name__", None) == inpaint


def test_an_unrelated_failure_is_raised_and_never_taken_for_a_missing_lever(tiny_model, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline

    failing = classmethod(lambda cls, pipe, **kw: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")))
    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "from_pipe", failing)
    generator = DiffusersGenerator(str(tiny_model), device="cpu", offload="none")
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        generator.capabilities()
    monkeypatch.undo()
    assert "edit" in generator.capabilities().features
    assert "edit: StableDiffusionImg2ImgPipeline (from_pipe)" in generator.report
