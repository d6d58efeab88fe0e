"""Typed questions from free-form prompts, the GEMS_JUDGE setting, and when the server derives a checklist."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gems_mcp.backends import load_judge
from gems_mcp.checklist import build_checklist
from gems_mcp.checks import AtLeast, Exactly, RelationCheck, Target
from gems_mcp.config import load_settings
from gems_mcp.critique.combined import CombinedJudge
from gems_mcp.critique.detect import DetectorJudge
from gems_mcp.critique.questions import prompt_questions
from gems_mcp.critique.vlm import VLMJudge
from tests.fakes import FakeGenerator


def asked(prompt):
    return [(r.kind, r.question, r.check) for r in prompt_questions(prompt)]


def test_objects_counts_and_colors_become_typed_questions():
    assert asked("a photo of two dogs and a red car") == [
        ("count", "Are there exactly two dogs?", Exactly(object="dog", n=2)),
        ("object", "Is there a car?", AtLeast(object="car")),
        ("color", "Is there a red car?", AtLeast(object="car", color="red")),
    ]


def test_a_relation_becomes_a_position_check():
    position = asked("a brown dog to the right of a black cat")[-1]
    assert position == (
        "position", "Is the brown dog to the right of the black cat?",
        RelationCheck(relation="right", a=Target(object="dog", color="brown"), b=Target(object="cat", color="black")),
    )


def test_quoted_text_is_a_question_for_a_reader_not_a_detector():
    text = asked('a neon sign that says "OPEN" above a door')[0]
    assert text == ("text", 'Does the image show the text "OPEN"?', None)


def test_plurals_are_counted_by_their_singular_noun():
    assert [c for _, _, c in asked("three boxes, four people")] == [Exactly(object="box", n=3), Exactly(object="person", n=4)]


def test_words_the_parser_does_not_know_give_no_typed_questions_rather_than_wrong_ones():
    whole = 'Does the image match the description "an astronaut riding a horse on the moon, oil painting"?'
    assert asked("an astronaut riding a horse on the moon, oil painting") == [
        ("object", "Is there an astronaut?", AtLeast(object="astronaut")), ("other", whole, None)
    ]
    assert asked("make it moody and cinematic, 4k") == [("other", 'Does the image match the description "make it moody and cinematic, 4k"?', None)]
    assert asked("a red car, ultra detailed")[-1] == ("other", 'Does the image match the description "a red car, ultra detailed"?', None)
    # a prompt the parser reads whole needs no free-text question
    assert [k for k, _, _ in asked("a photo of two dogs to the left of a red car")] == ["count", "object", "color", "position"]


def test_gems_judge_accepts_model_judges_and_refuses_anything_else():
    assert load_settings(judge="detect:google/owlv2-base-patch16-ensemble,vlm:/models/qwen").judge_models == {
        "detect": "google/owlv2-base-patch16-ensemble", "vlm": "/models/qwen"}
    for bad in ("vlm", "vlm:", "clip:x", "vlm:a,vlm:b", "exact,vlm:a"):
        with pytest.raises(ValidationError, match="GEMS_JUDGE"):
            load_settings(judge=bad)


def test_the_setting_picks_the_judge_without_loading_a_model():
    vlm = load_judge(load_settings(judge="vlm:some/vlm", device="cpu"))
    both = load_judge(load_settings(judge="detect:some/owl,vlm:some/vlm", device="cpu", judge_offload=True))
    assert isinstance(vlm, VLMJudge) and vlm.name == "vlm:some/vlm" and not vlm.slot.loaded
    assert isinstance(both, CombinedJudge) and not both.detector.colors and both.vlm.options.offload
    assert isinstance(load_judge(load_settings(judge="detect:some/owl", device="cpu")), DetectorJudge)
    assert load_judge(load_settings(judge="none"), FakeGenerator()) is None


def test_with_a_model_judge_and_no_requirements_the_checklist_comes_from_the_prompt():
    derived, notes = build_checklist(FakeGenerator(), "two dogs and a red car", None, None, derive=True)
    assert [r.id for r in derived] == ["q1", "q2", "q3"] and all(r.source == "prompt" for r in derived)
    assert "derived from the prompt" in notes[0]
    # what the parser cannot type is asked whole, as free text, last
    riding, _ = build_checklist(FakeGenerator(), "an astronaut riding a horse.", None, None, derive=True)
    assert [r.question for r in riding] == ["Is there an astronaut?", 'Does the image match the description "an astronaut riding a horse."?']
    assert riding[-1].check is None
    sofa, _ = build_checklist(FakeGenerator(), "a cat on a sofa, oil painting", None, None, derive=True)
    assert [r.question for r in sofa] == ["Is there a cat?", 'Does the image match the description "a cat on a sofa, oil painting"?']
    long_prompt = "a red car, " + ", ".join(["ultra detailed"] * 30)  # too long to ask whole; style words skipped
    checklist, _ = build_checklist(FakeGenerator(), long_prompt, None, None, derive=True)
    assert [r.question for r in checklist] == ["Is there a car?", "Is there a red car?"]
    given, _ = build_checklist(FakeGenerator(), "two dogs and a red car", ["Is it sunny?"], None, derive=True)
    assert [r.question for r in given] == ["Is it sunny?"]
    none, _ = build_checklist(FakeGenerator(), "two dogs and a red car", None, None, derive=False)
    assert none == []


def test_agent_questions_in_the_derived_forms_get_typed_checks_others_stay_free_text():
    given = ["Are there exactly two dogs?", "Is the red car to the left of the bench?", "Is there a dog playing fetch?",
             "Is the mood cheerful?"]
    checklist, _ = build_checklist(FakeGenerator(), "a park", given, None, derive=True)
    assert [(r.kind, r.check) for r in checklist] == [
        ("count", Exactly(object="dog", n=2)),
        ("position", RelationCheck(relation="left", a=Target(object="car", color="red"), b=Target(object="bench"))),
        ("object", None), (checklist[3].kind, None),
    ]
    # Typed whatever judge runs: the embedded model's exact judge reads the agent's typed questions too.
    typed, _ = build_checklist(FakeGenerator(), "a park", given[:1], None, derive=False)
    assert typed[0].check == Exactly(object="dog", n=2)
