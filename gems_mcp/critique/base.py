"""The Judge protocol: answers a trajectory's yes/no questions for a batch of images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from gems_mcp.checks import Detection
from gems_mcp.types import Requirement, Verdict


@dataclass
class Judgement:
    """A judge's answer for one image: one verdict per covered question, and what it found where."""

    verdicts: list[Verdict]
    detections: list[Detection] | None = None


@runtime_checkable
class Judge(Protocol):
    name: str

    def covers(self, requirement: Requirement) -> bool:
        """Whether this judge can answer the question (others are left to the agent)."""

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        """One Judgement per image; each holds one verdict per requirement, in checklist order."""
