"""DetectorJudge: a tiny OWLv2 saved to disk gives boxes as 0..1 fractions; typed checks are decided from boxes."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gems_mcp.checks import AtLeast, Detection, Exactly, Only, RelationCheck, Target
from gems_mcp.critique.combined import CombinedJudge
from gems_mcp.critique.detect import DetectorJudge, color_name, suppress, to_detections
from gems_mcp.critique.loading import JudgeOptions
from gems_mcp.critique.vlm import VLMJudge
from gems_mcp.errors import JudgeError
from gems_mcp.types import Requirement

CAT_LEFT = Detection(object="cat", box=(0.05, 0.40, 0.30, 0.70), score=0.9)
DOG_RIGHT = Detection(object="dog", box=(0.60, 0.35, 0.95, 0.75), score=0.8)
DOG_TOP = Detection(object="dog", box=(0.40, 0.02, 0.60, 0.20), score=0.7)


def req(i, check, question="?"):
    return Requirement(id=f"q{i}", question=question, check=check)


def test_counts_and_positions_are_decided_from_the_boxes_given():
    judge = DetectorJudge("unused")  # deciding needs no model: nothing is loaded
    found = [CAT_LEFT, DOG_RIGHT, DOG_TOP]
    checks = [
        (Exactly(object="dog", n=2), True), (Exactly(object="dog", n=3), False), (AtLeast(object="cat"), True),
        (AtLeast(object="bird"), False),
        (RelationCheck(relation="left", a=Target(object="cat"), b=Target(object="dog")), True),
        (RelationCheck(relation="right", a=Target(object="cat"), b=Target(object="dog")), False),
        (RelationCheck(relation="above", a=Target(object="dog"), b=Target(object="cat")), True),
        (RelationCheck(relation="below", a=Target(object="cat"), b=Target(object="dog")), True),
    ]
    verdicts = [judge.decide(req(i, check), found) for i, (check, _) in enumerate(checks)]
    assert [v.passed for v in verdicts] == [want for _, want in checks]
    assert "dog at [0.60, 0.35, 0.95, 0.75]" in verdicts[0].note
    assert not judge.slot.loaded


def test_the_same_boxes_always_give_the_same_verdicts():
    judge = DetectorJudge("unused")
    question = req(1, Exactly(object="dog", n=2))
    assert {judge.decide(question, [DOG_TOP, DOG_RIGHT, CAT_LEFT]).passed for _ in range(5)} == {True}


def test_colored_checks_count_only_boxes_of_that_color():
    judge = DetectorJudge("unused")
    found = [CAT_LEFT.model_copy(update={"color": "black"}), DOG_RIGHT.model_copy(update={"color": "brown"})]
    assert judge.decide(req(1, AtLeast(object="dog", color="brown")), found).passed
    assert not judge.decide(req(2, AtLeast(object="dog", color="white")), found).passed


def test_questions_boxes_cannot_decide_are_left_to_others():
    alone, beside_a_vlm = DetectorJudge("unused"), DetectorJudge("unused", colors=False)
    free = Requirement(id="q1", question="Is it sunny?")
    nothing_else = req(2, Only(groups=[]))
    colored = req(3, AtLeast(object="car", color="red"))
    assert not alone.covers(free) and not alone.covers(nothing_else) and alone.covers(colored)
    assert not beside_a_vlm.covers(colored) and beside_a_vlm.covers(req(4, Exactly(object="car", n=2)))


def test_duplicate_boxes_of_one_object_count_once():
    twin = DOG_RIGHT.model_copy(update={"box": (0.61, 0.36, 0.95, 0.76), "score": 0.5})
    kept = suppress([twin, DOG_RIGHT, DOG_TOP])
    assert kept == [DOG_RIGHT, DOG_TOP]


def test_pixel_boxes_become_fractions_clipped_to_the_image():
    result = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 40.0], [-5.0, 0.0, 300.0, 30.0], [5.0, 5.0, 5.0, 9.0]]),
              "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([1, 0, 0])}
    found = to_detections(result, ["cat", "dog"], width=200, height=100)
    assert [(d.object, d.box) for d in found] == [("dog", (0.05, 0.2, 0.25, 0.4)), ("cat", (0.0, 0.0, 1.0, 0.3))]


def test_a_phrase_label_is_matched_back_to_the_object_asked_for():
    result = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "scores": torch.tensor([0.6]), "text_labels": ["a dog"]}
    assert to_detections(result, ["cat", "dog"], 10, 10)[0].object == "dog"


def test_color_names_come_from_the_pixels_in_the_middle_of_the_box():
    image = Image.new("RGB", (100, 100), "white")
    image.paste((220, 30, 30), (10, 10, 50, 50))
    image.paste((30, 60, 200), (60, 60, 95, 95))
    assert color_name(image, (0.05, 0.05, 0.55, 0.55)) == "red"
    assert color_name(image, (0.6, 0.6, 0.95, 0.95)) == "blue"
    assert color_name(image, (0.0, 0.55, 0.5, 1.0)) == "white"


def test_a_real_detector_reports_every_box_as_fractions_of_the_image(grid_detector):
    judge = DetectorJudge(str(grid_detector), JudgeOptions(threshold=0.5, batch=2))
    # (OWLv2 gives each box its best label only; with one label asked for, every cell is a dog.)
    checks = [req(1, Exactly(object="dog", n=16)), req(2, RelationCheck(relation="left", a=Target(object="dog"),
                                                                      b=Target(object="dog")))]
    square, wide, red = Image.new("RGB", (64, 64), "blue"), Image.new("RGB", (128, 64), "blue"), Image.new("RGB", (64, 64), "red")
    judgements = judge.verify([square, wide, red], checks)
    # OWLv2 puts box centres on the patch grid's corners ((i + 1) / 4) and sizes them to one patch (0.25).
    cells = sorted((round((i + 1) / 4 - 0.125, 3), round((j + 1) / 4 - 0.125, 3)) for i in range(4) for j in range(4))
    dogs = [d for d in judgements[0].detections if d.object == "dog"]
    assert sorted((round(d.box[0], 3), round(d.box[1], 3)) for d in dogs) == cells
    assert all(d.box[2] - d.box[0] == pytest.approx(0.25, abs=1e-3) for d in dogs if d.box[2] < 1)
    assert sum(d.box[2] == 1.0 for d in dogs) == 4  # the last column is cut at the image's edge
    assert all(d.color == "blue" for d in dogs) and {d.color for d in judgements[2].detections} == {"red"}
    assert [v.passed for v in judgements[0].verdicts] == [True, True]
    # A wide image is padded square at the bottom: boxes in the padding are dropped, the others stay in 0..1.
    assert 0 < len([d for d in judgements[1].detections if d.object == "dog"]) < 16
    assert all(0 <= v <= 1 for d in judgements[1].detections for v in d.box)
    assert judgements[1].verdicts[0].passed is False


def test_a_missing_detector_is_a_clear_error(tmp_path):
    judge = DetectorJudge(str(tmp_path / "owl"))
    with pytest.raises(JudgeError, match=r"GEMS_JUDGE=detect:.*owl does not exist"):
        judge.verify([Image.new("RGB", (64, 64))], [req(1, AtLeast(object="cat"))])


def test_detector_and_vlm_together_split_the_questions(grid_detector, tiny_vlm):
    combined = CombinedJudge(DetectorJudge(str(grid_detector), JudgeOptions(threshold=0.5), colors=False),
                             VLMJudge(str(tiny_vlm)))
    checklist = [req(1, Exactly(object="dog", n=16)), Requirement(id="q2", question="Is it sunny?"),
                 req(3, AtLeast(object="dog", color="red"))]
    (judgement,) = combined.verify([Image.new("RGB", (64, 64), "red")], checklist)
    assert [v.requirement_id for v in judgement.verdicts] == ["q1", "q2", "q3"]
    assert judgement.verdicts[0].judge.startswith("detect:") and judgement.verdicts[0].probability is None
    assert all(v.judge.startswith("vlm:") and v.probability is not None for v in judgement.verdicts[1:])
    assert len(judgement.detections) == 16  # boxes for every object the checklist names
