"""Tiny judge models built once per session and saved to disk, loaded back through from_pretrained."""

from __future__ import annotations

import pytest

from tests.critique.tiny_models import build_tiny_owlv2, build_tiny_vlm


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("judges") / "tiny-llava")


@pytest.fixture(scope="session")
def grid_detector(tmp_path_factory):
    """An OWLv2 whose boxes are its 4x4 patch grid, every label scoring ~1."""
    return build_tiny_owlv2(tmp_path_factory.mktemp("judges") / "tiny-owlv2-grid", grid=True)
