"""VLMJudge on a tiny random LLaVA saved to disk: load, batch, P(yes) from the first token's logits, verdicts."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gems_mcp.critique.loading import JudgeOptions
from gems_mcp.critique.vlm import INSTRUCTION, VLMJudge, answer_token_ids, p_yes
from gems_mcp.errors import JudgeError
from gems_mcp.types import Requirement
from tests.critique.tiny_models import build_tiny_vlm

QUESTIONS = [Requirement(id="q1", question="Is there a cat?"), Requirement(id="q2", question="Is the cat red?")]


def images():
    return [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (80, 48), "blue"), Image.new("RGB", (64, 64), (0, 90, 0))]


def manual_p_yes(folder, image, question):
    """The Soft-TIFA answer computed by hand: one prompt, the last position's softmax, yes against no."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"{question} {INSTRUCTION}"}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    with torch.no_grad():
        probs = model(**processor(text=text, images=image, return_tensors="pt")).logits[0, -1].softmax(-1)
    tok = processor.tokenizer
    yes = sum(probs[tok.convert_tokens_to_ids(w)] for w in ("yes", "Yes", "YES") if w in tok.get_vocab())
    no = sum(probs[tok.convert_tokens_to_ids(w)] for w in ("no", "No", "NO") if w in tok.get_vocab())
    return float(yes / (yes + no))


def test_p_yes_weighs_yes_against_no_and_ignores_other_tokens():
    logits = torch.tensor([[2.0, 0.0, 9.0, 0.0], [0.0, 2.0, 9.0, 0.0], [1.0, 1.0, 0.0, 5.0]])
    found = p_yes(logits, yes=[0], no=[1])
    assert found[0] == pytest.approx(1 / (1 + torch.e ** -2), abs=1e-6)
    assert found[1] == pytest.approx(1 - found[0], abs=1e-6)
    assert found[2] == pytest.approx(0.5)
    # every spelling of yes counts: two yes tokens at 0 against one no token at 0 is 2/3
    assert p_yes(torch.zeros(1, 4), yes=[0, 2], no=[1])[0] == pytest.approx(2 / 3)


def test_yes_and_no_token_ids_are_read_from_the_tokenizer(tiny_vlm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_vlm)
    yes = answer_token_ids(tok, ("yes", "Yes", " yes"))
    assert sorted(yes) == sorted({tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("Yes")})
    assert all(tok.decode([i]).lower() == "yes" for i in yes)  # ' yes' is two tokens here, so it is left out


def test_the_judge_loads_lazily_and_answers_every_question_for_every_image_in_batches(tiny_vlm):
    judge = VLMJudge(str(tiny_vlm), JudgeOptions(batch=4))
    assert not judge.slot.loaded  # constructing a judge loads nothing
    judgements = judge.verify(images(), QUESTIONS)
    assert judge.slot.loaded
    assert len(judgements) == 3
    for judgement in judgements:
        assert [v.requirement_id for v in judgement.verdicts] == ["q1", "q2"]
        for v in judgement.verdicts:
            assert v.judge == f"vlm:{tiny_vlm}"
            assert 0.0 < v.probability < 1.0
            assert v.passed == (v.probability >= 0.5)
            assert v.note == f"P(yes)={v.probability:.2f}"


def test_batched_answers_equal_one_prompt_at_a_time_computed_by_hand(tiny_vlm):
    batched = VLMJudge(str(tiny_vlm), JudgeOptions(batch=6)).verify(images(), QUESTIONS)
    for image, judgement in zip(images(), batched, strict=True):
        for req, verdict in zip(QUESTIONS, judgement.verdicts, strict=True):
            assert verdict.probability == pytest.approx(manual_p_yes(tiny_vlm, image, req.question), abs=2e-4)


def test_the_probability_decides_the_verdict_at_one_half(tiny_vlm):
    judge = VLMJudge(str(tiny_vlm))
    assert judge.verdict(QUESTIONS[0], 0.5).passed
    assert not judge.verdict(QUESTIONS[0], 0.4999).passed
    assert judge.verdict(QUESTIONS[0], 0.93).model_dump()["probability"] == 0.93


def test_a_missing_folder_is_a_clear_error_and_a_later_call_can_retry(tmp_path):
    judge = VLMJudge(str(tmp_path / "no-such-model"))
    with pytest.raises(JudgeError, match=r"GEMS_JUDGE=vlm:.*no-such-model does not exist"):
        judge.verify(images()[:1], QUESTIONS)
    build_tiny_vlm(tmp_path / "no-such-model")
    assert len(judge.verify(images()[:1], QUESTIONS)) == 1


def test_a_folder_that_is_not_a_vlm_says_so(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(JudgeError, match="could not be loaded as an image-text-to-text model"):
        VLMJudge(str(tmp_path / "broken")).verify(images()[:1], QUESTIONS)


def test_a_tokenizer_without_a_one_token_yes_is_refused(tmp_path):
    folder = build_tiny_vlm(tmp_path / "no-yes", merges=[("N", "o"), ("n", "o")])
    with pytest.raises(JudgeError, match="no single token for 'yes'"):
        VLMJudge(str(folder)).verify(images()[:1], QUESTIONS)


def test_the_dtype_setting_is_honoured(tiny_vlm):
    judge = VLMJudge(str(tiny_vlm), JudgeOptions(dtype=torch.bfloat16))
    half = judge.verify(images()[:1], QUESTIONS)[0].verdicts
    full = VLMJudge(str(tiny_vlm)).verify(images()[:1], QUESTIONS)[0].verdicts
    assert judge.slot.get()[0].dtype == torch.bfloat16
    assert [v.probability for v in half] == pytest.approx([v.probability for v in full], abs=0.02)
