"""Backends that turn prompts into images: diffusers pipelines and the embedded shapes-world model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gems_mcp.generation.base import (
    GenerationCancelled,
    GenerationDefaults,
    GenerationError,
    GenerationRequest,
    Generator,
)

if TYPE_CHECKING:
    from gems_mcp.config import Settings

__all__ = [
    "GenerationCancelled",
    "GenerationDefaults",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "load_generator",
]


def load_generator(settings: Settings) -> Generator:
    """The backend the settings name: GEMS_MODEL's pipeline, or the embedded model when unset."""
    if settings.model:
        from gems_mcp.generation.diffusers_backend import DiffusersGenerator

        return DiffusersGenerator(settings.model, device=settings.device, dtype=settings.dtype)
    from gems_mcp.generation.diffusers_backend import pick_device
    from gems_mcp.generation.embedded.generator import EmbeddedGenerator

    return EmbeddedGenerator(device=pick_device(settings.device))
