"""The Judge protocol: answers a trajectory's yes/no questions for one image."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from gems_mcp.types import Requirement, Verdict


@runtime_checkable
class Judge(Protocol):
    name: str

    def verify(self, image: Image.Image, checklist: list[Requirement]) -> list[Verdict]:
        """One verdict per requirement, in checklist order."""
