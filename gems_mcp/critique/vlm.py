"""VLMJudge: each checklist question asked of a vision-language model, answered by P(yes) from one token.

The Soft-TIFA recipe (GenEval 2): one question per prompt, and the answer is the probability the model
puts on "yes" against "no" as its first generated token. Every (image, question) pair of a round goes
through the model in batches; no text is generated.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

from PIL import Image

from gems_mcp.critique.base import Judgement
from gems_mcp.critique.loading import JudgeOptions, ModelSlot, model_device
from gems_mcp.errors import JudgeError, first_line
from gems_mcp.types import Requirement, Verdict

log = logging.getLogger(__name__)

PASS_AT = 0.5
"""A question passes when P(yes) is at least this."""

INSTRUCTION = "Answer with yes or no."
_YES = ("yes", "Yes", "YES", " yes", " Yes")
_NO = ("no", "No", "NO", " no", " No")


def _load(source: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(source)
    if getattr(processor, "chat_template", None) is None:
        raise JudgeError(f"the processor of {source} has no chat template, so questions cannot be put to it")
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype) if dtype is not None else \
        AutoModelForImageTextToText.from_pretrained(source)
    return model, processor


def answer_token_ids(tokenizer: Any, words: tuple[str, ...]) -> list[int]:
    """The ids of every spelling of an answer word that the tokenizer keeps as one token."""
    ids: list[int] = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids


def p_yes(logits: Any, yes: list[int], no: list[int]) -> list[float]:
    """P(yes) against P(no) per row of next-token logits: sigmoid(logsumexp(yes) - logsumexp(no))."""
    import torch

    scores = torch.log_softmax(logits.float(), dim=-1)
    margin = torch.logsumexp(scores[:, yes], dim=-1) - torch.logsumexp(scores[:, no], dim=-1)
    return [float(p) for p in torch.sigmoid(margin)]


class VLMJudge:
    """Answers every question (free text or typed) with a local image-text-to-text model."""

    def __init__(self, model: str, options: JudgeOptions | None = None) -> None:
        self.name = f"vlm:{model}"
        self.options = options or JudgeOptions()
        self.device = self.options.device
        self.slot = ModelSlot(model, "vlm", "an image-text-to-text model", self.options, _load)
        self._answers: tuple[list[int], list[int]] | None = None

    def covers(self, requirement: Requirement) -> bool:
        return True

    def verify(self, images: list[Image.Image], checklist: list[Requirement]) -> list[Judgement]:
        """One judgement per image: a verdict per question carrying P(yes)."""
        pairs = [(image, req.question) for image in images for req in checklist]
        probabilities = self.probabilities(pairs) if pairs else []
        judgements = []
        for i in range(len(images)):
            row = probabilities[i * len(checklist):(i + 1) * len(checklist)]
            judgements.append(Judgement([self.verdict(req, p) for req, p in zip(checklist, row, strict=True)]))
        return judgements

    def verdict(self, requirement: Requirement, probability: float) -> Verdict:
        return Verdict(
            requirement_id=requirement.id, passed=probability >= PASS_AT, note=f"P(yes)={probability:.2f}",
            judge=self.name, probability=round(probability, 4),
        )

    def probabilities(self, pairs: list[tuple[Image.Image, str]]) -> list[float]:
        """P(yes) for each (image, question), in batches of GEMS_JUDGE_BATCH pairs."""
        with self.slot.use() as (model, processor):
            yes, no = self._answer_ids(processor)
            found: list[float] = []
            size = self.options.batch
            for start in range(0, len(pairs), size):
                found += self._batch(model, processor, pairs[start:start + size], yes, no)
            return found

    def _answer_ids(self, processor: Any) -> tuple[list[int], list[int]]:
        if self._answers is None:
            tokenizer = getattr(processor, "tokenizer", processor)
            yes, no = answer_token_ids(tokenizer, _YES), answer_token_ids(tokenizer, _NO)
            if not yes or not no:
                missing = "yes" if not yes else "no"
                raise JudgeError(f"the tokenizer of {self.name} has no single token for '{missing}', so P(yes) cannot be read")
            self._answers = (yes, no)
        return self._answers

    def _batch(self, model: Any, processor: Any, pairs: list[tuple[Image.Image, str]], yes: list[int],
               no: list[int]) -> list[float]:
        import torch

        conversations = [
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"{question} {INSTRUCTION}"}]}]
            for _, question in pairs
        ]
        # Our own code stays outside the try: only what the processor and the model do becomes a JudgeError.
        device, extra = model_device(model), {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
        try:
            texts = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
            tokenizer = getattr(processor, "tokenizer", None)
            if tokenizer is not None:
                tokenizer.padding_side = "left"  # the next token's logits are then the last column for every row
            inputs = processor(
                text=texts, images=[[image.convert("RGB")] for image, _ in pairs], padding=True, return_tensors="pt"
            )
            inputs = inputs.to(device, dtype=model.dtype)
            with torch.inference_mode():
                logits = model(**inputs, **extra).logits[:, -1, :]
        except Exception as exc:  # a processor or model that refuses the batch: the round is kept, the trace logged
            log.warning("%s could not answer a batch", self.name, exc_info=True)
            raise JudgeError(f"{self.name} could not answer: {first_line(exc)}") from exc
        found = p_yes(logits, yes, no)
        if any(math.isnan(p) for p in found):
            raise JudgeError(f"{self.name} gave no usable answer (its logits are not numbers); try GEMS_DTYPE=float32")
        return found


def _accepts(model: Any, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
