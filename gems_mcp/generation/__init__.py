"""Backends that turn prompts into images: the Generator protocol, the device queue, the diffusers backend."""

from __future__ import annotations

from gems_mcp.generation.base import (
    Capabilities,
    GenerationCancelled,
    GenerationError,
    GenerationRequest,
    Generator,
)

__all__ = ["Capabilities", "GenerationCancelled", "GenerationError", "GenerationRequest", "Generator"]
