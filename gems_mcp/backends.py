"""The composition root for models: which Generator the settings name.

The one place that knows both the generic diffusers backend and the shapes world; nothing in
generation/ or critique/ imports a concrete world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gems_mcp.config import Settings
    from gems_mcp.generation.base import Generator


def load_generator(settings: Settings) -> Generator:
    """The backend the settings name: GEMS_MODEL's pipeline, or the embedded model when unset."""
    from gems_mcp.generation.diffusers_backend import DiffusersGenerator, pick_device

    if settings.model:
        return DiffusersGenerator(settings.model, device=settings.device, dtype=settings.dtype)
    from gems_mcp.shapes.generator import EmbeddedGenerator

    return EmbeddedGenerator(device=pick_device(settings.device))
