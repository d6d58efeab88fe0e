"""CombinedJudge: the detector decides what boxes can decide, the VLM answers the rest."""

from __future__ import annotations

from PIL import Image

from gems_mcp.critique.base import Judgement
from gems_mcp.critique.detect import DetectorJudge, objects
from gems_mcp.critique.vlm import VLMJudge
from gems_mcp.types import Requirement


class CombinedJudge:
    """detect:<model>,vlm:<model>: object, count and position checks from boxes; colors, text and free questions by P(yes)."""

    def __init__(self, detector: DetectorJudge, vlm: VLMJudge) -> None:
        self.detector = detector
        self.vlm = vlm
        self.name = f"{detector.name},{vlm.name}"
        self.device = vlm.device

    def covers(self, requirement: Requirement) -> bool:
        return True

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        """One judgement per image: each question by the judge that takes it, in checklist order, and the boxes."""
        boxed = [r for r in checklist if self.detector.covers(r)]
        asked = [r for r in checklist if not self.detector.covers(r)]
        # Every object the checklist names is looked for, so region edits have boxes for colored ones too.
        found = self.detector.find(images, objects(checklist))
        answered = self.vlm.verify(images, asked) if asked else [Judgement([]) for _ in images]
        judgements = []
        for dets, judged in zip(found, answered, strict=True):
            by_id = {v.requirement_id: v for v in judged.verdicts}
            by_id.update({r.id: self.detector.decide(r, dets) for r in boxed})
            judgements.append(Judgement([by_id[r.id] for r in checklist], dets))
        return judgements
