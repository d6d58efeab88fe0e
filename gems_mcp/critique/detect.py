"""DetectorJudge: object, count and position questions decided from an open-vocabulary detector's boxes.

Any model transformers loads for zero-shot object detection (OWLv2, Grounding DINO) is asked for the
objects the checklist's typed checks name; its boxes, as 0..1 fractions of the image like the exact
judge's, decide the checks through `checks.answer` and are reported so region edits can be aimed.
Colors are read from the pixels inside each box (the detector's own attribute binding is weak).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from gems_mcp.boxes import area, overlap
from gems_mcp.checks import AtLeast, Check, Detection, Exactly, RelationCheck, Target, answer
from gems_mcp.critique.base import Judgement
from gems_mcp.critique.loading import JudgeOptions, ModelSlot, model_device
from gems_mcp.errors import JudgeError, first_line
from gems_mcp.types import Requirement, Verdict

log = logging.getLogger(__name__)

NMS_IOU = 0.5
"""Two boxes of the same object overlapping more than this are one object (detectors report duplicates)."""


def _load(source: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(source)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return AutoModelForZeroShotObjectDetection.from_pretrained(source, **kwargs), processor


def targets(check: Check) -> list[Target]:
    """The object groups a check counts or places."""
    if isinstance(check, RelationCheck):
        return [check.a, check.b]
    if isinstance(check, AtLeast | Exactly):
        return [check]
    return list(check.groups)


def decidable(check: Check | None, colors: bool = True) -> bool:
    """Whether boxes decide the check: presence, counts and relations; not 'nothing else' (a detector sees
    only what it is asked for), and not colors when another judge reads them."""
    if check is None or not isinstance(check, AtLeast | Exactly | RelationCheck):
        return False
    return colors or all(t.color is None for t in targets(check))


def objects(checklist: list[Requirement]) -> list[str]:
    """Every object noun the checklist's typed checks name, in order, once."""
    return list(dict.fromkeys(t.object for r in checklist if r.check is not None for t in targets(r.check)))


def suppress(found: list[Detection], iou: float = NMS_IOU) -> list[Detection]:
    """Greedy non-maximum suppression per object: the best-scoring box of each overlapping cluster stays."""
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: -(d.score or 0.0)):
        same = (k for k in kept if k.object == det.object)
        if all(_iou(det.box, k.box) <= iou for k in same):
            kept.append(det)
    return kept


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    inter = overlap(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def to_detections(result: dict[str, Any], labels: list[str], width: int, height: int) -> list[Detection]:
    """A post-processed detector result (pixel boxes) as Detections with 0..1 boxes; empty or unknown ones dropped."""
    found = []
    names = result.get("text_labels")
    if names is None:
        names = result.get("labels", [])
    names = names.tolist() if hasattr(names, "tolist") else list(names)
    for box, score, name in zip(result["boxes"].tolist(), result["scores"].tolist(), names, strict=False):
        label = _label(name, labels)
        x0, y0, x1, y1 = (min(1.0, max(0.0, v / s)) for v, s in zip(box, (width, height, width, height), strict=True))
        if label is None or x1 - x0 < 1e-6 or y1 - y0 < 1e-6:
            continue
        found.append(Detection(object=label, box=(x0, y0, x1, y1), score=round(float(score), 4)))
    return found


def _label(name: Any, labels: list[str]) -> str | None:
    """The queried label a result names: by index (OWLv2) or by text (Grounding DINO may return a phrase)."""
    if not isinstance(name, str):
        index = int(name)
        return labels[index] if 0 <= index < len(labels) else None
    text = name.strip().lower().rstrip(".")
    if text in labels:
        return text
    return next((label for label in labels if label in text or (text and text in label)), None)




def color_name(image: Image.Image, box: tuple[float, float, float, float]) -> str:
    """The most common named color in the middle half of a box (where the object, not the background, is)."""
    w, h = image.size
    x0, y0, x1, y1 = box
    cx0, cx1 = x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4
    cy0, cy1 = y0 + (y1 - y0) / 4, y1 - (y1 - y0) / 4
    crop = image.convert("RGB").crop((int(cx0 * w), int(cy0 * h), max(int(cx0 * w) + 1, int(cx1 * w)),
                                      max(int(cy0 * h) + 1, int(cy1 * h))))
    hsv = np.asarray(crop.convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255.0
    names = [_pixel_color(*px) for px in hsv[:: max(1, len(hsv) // 4096)]]
    return max(set(names), key=names.count)


def _pixel_color(hue: float, sat: float, val: float) -> str:
    if val < 0.2:
        return "black"
    if sat < 0.18:
        return "white" if val > 0.8 else "gray"
    degrees = hue * 360
    if degrees < 15 or degrees >= 340:
        return "pink" if sat < 0.5 and val > 0.7 else ("brown" if val < 0.45 else "red")
    if degrees < 40:
        return "brown" if val < 0.6 else "orange"
    if degrees < 70:
        return "yellow"
    if degrees < 165:
        return "green"
    if degrees < 255:
        return "blue"
    if degrees < 290:
        return "purple"
    return "pink"


class DetectorJudge:
    """Decides typed object, count and position checks from a zero-shot detector's boxes."""

    def __init__(self, model: str, options: JudgeOptions | None = None, colors: bool = True) -> None:
        self.name = f"detect:{model}"
        self.options = options or JudgeOptions()
        self.colors = colors
        self.device = self.options.device
        self.slot = ModelSlot(model, "detect", "a zero-shot object detector", self.options, _load)

    def covers(self, requirement: Requirement) -> bool:
        return decidable(requirement.check, self.colors)

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        """One judgement per image: a verdict per requirement, and every object found with its box."""
        found = self.find(images, objects(checklist))
        return [Judgement([self.decide(r, dets) for r in checklist], dets) for dets in found]

    def decide(self, requirement: Requirement, found: list[Detection]) -> Verdict:
        """A verdict from detections alone (deterministic: the same boxes give the same answer)."""
        if not decidable(requirement.check, self.colors):
            note = "The detector cannot decide this question (no object, count or position check); answer it yourself."
            return Verdict(requirement_id=requirement.id, passed=False, note=note, judge=self.name)
        assert requirement.check is not None
        names = {t.object for t in targets(requirement.check)}
        seen = "; ".join(d.describe() for d in found if d.object in names) or "nothing it asked about"
        return Verdict(
            requirement_id=requirement.id, passed=answer(requirement.check, found), note=f"found: {seen}", judge=self.name
        )

    def find(self, images: list[Image.Image], labels: list[str]) -> list[list[Detection]]:
        """The objects named by `labels` in each image, after suppression of duplicate boxes."""
        if not labels:
            return [[] for _ in images]
        found: list[list[Detection]] = []
        with self.slot.use() as (model, processor):
            size = self.options.batch
            for start in range(0, len(images), size):
                found += self._batch(model, processor, images[start:start + size], labels)
        return found

    def _batch(self, model: Any, processor: Any, images: list[Image.Image], labels: list[str]) -> list[list[Detection]]:
        import torch

        pictures = [im.convert("RGB") for im in images]
        device = model_device(model)  # our own code stays outside the try: only the library's failures are JudgeErrors
        try:
            inputs = processor(text=[labels] * len(pictures), images=pictures, return_tensors="pt")
            inputs = inputs.to(device, dtype=model.dtype)
            with torch.inference_mode():
                outputs = model(**inputs)
            results = processor.post_process_grounded_object_detection(
                outputs, threshold=self.options.threshold, target_sizes=[(im.height, im.width) for im in pictures],
                text_labels=[labels] * len(pictures),
            )
        except Exception as exc:  # a processor or model that refuses the batch: the round is kept, the trace logged
            log.warning("%s could not detect in a batch", self.name, exc_info=True)
            raise JudgeError(f"{self.name} could not detect: {first_line(exc)}") from exc
        batch = []
        for image, result in zip(pictures, results, strict=True):
            dets = suppress(to_detections(_to_cpu(result), labels, image.width, image.height))
            if self.colors:
                dets = [d.model_copy(update={"color": color_name(image, d.box)}) for d in dets]
            batch.append(dets)
        return batch


def _to_cpu(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v.float().cpu() if hasattr(v, "cpu") and v.is_floating_point() else v for k, v in result.items()}
