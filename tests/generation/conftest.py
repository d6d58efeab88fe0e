"""The tiny random Stable Diffusion pipeline every diffusers test in this folder loads."""

from __future__ import annotations

import pytest

from tests.tiny_pipeline import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


from tests.families.conftest import family_folder  # noqa: F401  (each family's saved tiny pipeline)
