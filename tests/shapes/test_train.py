"""Training the embedded model: a tiny config (with layouts) runs, checkpoints and resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gems_mcp.shapes.data import make_batch
from gems_mcp.shapes.model import load_weights
from gems_mcp.shapes.train import CHECKPOINT, EMA_DIR, TrainConfig, train


def _config(out: Path, steps: int) -> TrainConfig:
    return TrainConfig(
        out=out,
        size="tiny",
        batch=8,
        max_steps=steps,
        minutes=5,
        warmup=2,
        schedule_steps=10,
        device="cpu",
        layout_share=0.6,
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
    layout = torch.zeros(1, model.config.layout_channels, 32, 32)
    assert (
        model(torch.zeros(1, 12, 16, 16), torch.tensor([10]), torch.zeros(1, 16, dtype=torch.long), layout).shape
        == out.shape
    )


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
    images, ids, layouts = make_batch(0, 7, 4, layout_share=0.6)
    again, same_ids, same_layouts = make_batch(0, 7, 4, layout_share=0.6)
    other, _, _ = make_batch(0, 8, 4, layout_share=0.6)
    assert np.array_equal(images, again) and ids == same_ids and np.array_equal(layouts, same_layouts)
    assert not np.array_equal(images, other)


def test_layouts_box_their_objects_and_keep_empty_boxes_clear_of_them() -> None:
    from gems_mcp.shapes import world
    from gems_mcp.shapes.data import training_cells
    from gems_mcp.shapes.layout import EMPTY_CHANNEL, OBJECT_CHANNEL

    rng = np.random.default_rng(0)
    kinds = {"object": 0, "empty": 0, "shape only": 0}
    for _ in range(300):
        spec, objects = world.sample_training_scene(rng)
        cells = training_cells(spec, objects, rng)
        for cell in cells:
            x0, y0, x1, y1 = cell.box
            if cell.empty:
                kinds["empty"] += 1
                assert all(x1 <= o.x0 or o.x0 + o.side <= x0 or y1 <= o.y0 or o.y0 + o.side <= y0 for o in objects)
                continue
            kinds["object"] += 1
            kinds["shape only"] += cell.color is None
            inside = [o for o in objects if x0 <= o.x0 and y0 <= o.y0 and o.x0 + o.side <= x1 and o.y0 + o.side <= y1]
            assert any((o.shape, o.color) == (cell.shape, cell.color or o.color) for o in inside)
            assert max(x1 - x0, y1 - y0) <= 10 + 6
    assert all(n > 20 for n in kinds.values()), kinds
    _, _, layouts = make_batch(0, 3, 32, layout_share=0.0)
    assert not layouts.any()
    _, _, layouts = make_batch(0, 3, 32, layout_share=1.0)
    assert all(m[OBJECT_CHANNEL].any() or m[EMPTY_CHANNEL].any() for m in layouts)


def test_worker_processes_feed_the_same_batches_as_the_main_process(tmp_path: Path) -> None:
    from gems_mcp.shapes.train import batches

    config = _config(tmp_path, 3)
    inline = list(batches(config, 1, 3))
    config.workers = 2
    fed = list(batches(config, 1, 3))
    assert len(fed) == len(inline) == 2
    for a, b in zip(inline, fed, strict=True):
        for name in ("x0", "noise", "t", "tokens", "layout"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_fine_tuning_starts_from_weights_without_layout_input(tmp_path: Path) -> None:
    import json
    from dataclasses import replace

    from gems_mcp.shapes.model import ModelConfig, ShapesModel, save_weights

    old = ShapesModel(replace(ModelConfig.preset("tiny"), layout_channels=0))
    save_weights(old, tmp_path / "old", {"guidance": 2.0})
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    del config["model"]["layout_channels"]
    config_file.write_text(json.dumps(config))
    run = _config(tmp_path / "run", 2)
    run.init_from = tmp_path / "old"
    run.workers = 1
    state = train(run)
    assert state.step == 2
    # the zero-initialised layout weights have started to learn
    assert state.model.unet.conv_in.weight[:, 14:].abs().sum() > 0
    model, info = load_weights(tmp_path / "run" / EMA_DIR)
    assert info["guidance"] == 2.0 and model.config.channels == old.config.channels
