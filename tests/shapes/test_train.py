"""Training the embedded model: a tiny config runs, checkpoints and resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gems_mcp.shapes.model import load_weights
from gems_mcp.shapes.train import CHECKPOINT, EMA_DIR, TrainConfig, make_batch, train


def _config(out: Path, steps: int) -> TrainConfig:
    return TrainConfig(
        out=out, size="tiny", batch=8, max_steps=steps, minutes=5, warmup=2, schedule_steps=10, device="cpu"
    )


def test_tiny_training_run_has_finite_loss_and_writes_loadable_weights(tmp_path: Path) -> None:
    state = train(_config(tmp_path, 3))
    assert state.step == 3
    assert (tmp_path / CHECKPOINT).exists()
    model, config = load_weights(tmp_path / EMA_DIR)
    assert math.isfinite(config["loss"])
    assert config["step"] == 3
    out = model(torch.zeros(1, 12, 16, 16), torch.tensor([10]), torch.zeros(1, 16, dtype=torch.long))
    assert out.shape == (1, 12, 16, 16)


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path: Path) -> None:
    straight = train(_config(tmp_path / "straight", 4))
    train(_config(tmp_path / "split", 2))
    resumed = train(_config(tmp_path / "split", 4), resume=True)
    assert resumed.step == 4
    for (name, a), b in zip(straight.ema.state_dict().items(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_batches_depend_only_on_seed_and_step() -> None:
    images, ids = make_batch(0, 7, 4)
    again, same_ids = make_batch(0, 7, 4)
    other, _ = make_batch(0, 8, 4)
    assert np.array_equal(images, again) and ids == same_ids
    assert not np.array_equal(images, other)
