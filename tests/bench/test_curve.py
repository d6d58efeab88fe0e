"""What the bench shows: the pass curve as a picture, progress while it runs, a warm-up that fits the run."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from gems_mcp.bench.curve import draw_curve, progress
from gems_mcp.bench.loop import WARMUP_PROMPTS, warmup_size


def test_the_curve_is_a_picture_with_one_line_per_condition(tmp_path):
    results = {"budget": 3, "prompts": 4, "conditions": {
        "single": {"summary": {"overall": {"curve": [0.5, 0.5, 0.5]}}},
        "gems": {"summary": {"overall": {"curve": [0.5, 0.75, 1.0]}}},
    }}
    assert draw_curve(results, tmp_path / "curve.png")
    image = np.asarray(Image.open(tmp_path / "curve.png").convert("RGB")).astype(int)
    assert image.shape[:2] == (400, 640)
    # matplotlib's first two colours (blue, orange) both appear: two lines were drawn
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(image - colour).sum(axis=2) < 30).sum() > 100


def test_progress_off_a_terminal_is_a_line_every_20_prompts_and_at_the_end():
    log = io.StringIO()
    assert list(progress(range(45), "gems", log)) == list(range(45))
    assert log.getvalue().splitlines() == ["  gems: 20/45 prompts", "  gems: 40/45 prompts", "  gems: 45/45 prompts"]


def test_a_small_run_warms_the_memory_up_on_a_few_prompts_and_a_full_run_on_all():
    assert warmup_size(3) == 12
    assert warmup_size(500) == WARMUP_PROMPTS
