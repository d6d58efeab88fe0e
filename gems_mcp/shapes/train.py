"""Train the embedded model: `python -m gems_mcp.shapes.train --minutes N --out DIR [--resume]`."""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gems_mcp.shapes import world
from gems_mcp.shapes.model import (
    ModelConfig,
    ShapesModel,
    fold,
    null_tokens,
    parameter_count,
    save_weights,
    to_tensor,
    tokenize,
    train_scheduler,
)

CHECKPOINT = "checkpoint.pt"
EMA_DIR = "ema"


@dataclass
class TrainConfig:
    """Everything that decides a run; the same config and seed give the same weights on one device."""

    out: Path
    minutes: float = 80.0
    max_steps: int | None = None
    schedule_steps: int = 8000
    size: str = "small"
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    caption_dropout: float = 0.15
    seed: int = 0
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    device: str = "auto"


@dataclass
class State:
    model: ShapesModel
    ema: ShapesModel
    optimizer: torch.optim.Optimizer
    step: int = 0
    elapsed: float = 0.0


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_batch(seed: int, step: int, size: int) -> tuple[np.ndarray, list[list[int]]]:
    """Rendered images and word ids for one step; a pure function of (seed, step) so resuming is exact."""
    rng = np.random.default_rng([seed, step])
    images, ids = [], []
    for _ in range(size):
        spec, objects = world.sample_training_scene(rng)
        images.append(world.render(objects))
        ids.append(tokenize(spec))
    return np.stack(images), ids


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to a tenth over schedule_steps."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.schedule_steps - config.warmup))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_at(state: State, config: TrainConfig, device: torch.device) -> torch.Tensor:
    """Plain v-prediction MSE on one freshly sampled batch."""
    images, ids = make_batch(config.seed, state.step, config.batch)
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + state.step)
    x0 = fold(to_tensor(images))
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, 1000, (config.batch,), generator=gen)
    # caption dropout trains the unconditional branch that classifier-free guidance needs
    drop = torch.rand(config.batch, generator=gen) < config.caption_dropout
    tokens = torch.tensor(ids)
    tokens[drop] = torch.tensor(null_tokens())
    scheduler = train_scheduler()
    noisy = scheduler.add_noise(x0, noise, t)
    target = scheduler.get_velocity(x0, noise, t)
    pred = state.model(noisy.to(device), t.to(device), tokens.to(device))
    return F.mse_loss(pred, target.to(device))


def train_step(state: State, config: TrainConfig, device: torch.device) -> float:
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(config, state.step)
    loss = loss_at(state, config, device)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), 1.0)
    state.optimizer.step()
    _update_ema(state, config)
    state.step += 1
    return loss.item()


@torch.no_grad()
def _update_ema(state: State, config: TrainConfig) -> None:
    decay = min(config.ema_decay, (1 + state.step) / (10 + state.step))
    for ema, live in zip(state.ema.parameters(), state.model.parameters(), strict=True):
        ema.lerp_(live, 1 - decay)


def new_state(config: TrainConfig, device: torch.device) -> State:
    torch.manual_seed(config.seed)
    model = ShapesModel(ModelConfig.preset(config.size)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    return State(model, copy.deepcopy(model).eval(), optimizer)


def save_checkpoint(state: State, config: TrainConfig, loss: float) -> None:
    """Model, EMA, optimizer, step and RNG to checkpoint.pt (atomically) and the EMA weights to ema/."""
    payload = {
        "model": state.model.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "step": state.step,
        "elapsed": state.elapsed,
        "rng": torch.get_rng_state(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }
    tmp = config.out / (CHECKPOINT + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, config.out / CHECKPOINT)
    info = {
        "step": state.step,
        "train_minutes": round(state.elapsed / 60, 1),
        "loss": round(loss, 5),
        "batch": config.batch,
        "parameters": parameter_count(state.model),
        "device": str(next(state.model.parameters()).device),
    }
    save_weights(state.ema, config.out / EMA_DIR, info)


def load_checkpoint(config: TrainConfig, device: torch.device) -> State:
    state = new_state(config, device)
    payload = torch.load(config.out / CHECKPOINT, map_location=device, weights_only=False)
    state.model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step, state.elapsed = payload["step"], payload["elapsed"]
    torch.set_rng_state(payload["rng"])
    return state


def train(config: TrainConfig, resume: bool = False) -> State:
    """Run until `minutes` pass or `max_steps` is reached, checkpointing on the way and at the end."""
    device = pick_device(config.device)
    config.out.mkdir(parents=True, exist_ok=True)
    have_checkpoint = (config.out / CHECKPOINT).exists()
    state = load_checkpoint(config, device) if resume and have_checkpoint else new_state(config, device)
    _log(f"device {device}, {parameter_count(state.model):,} parameters, starting at step {state.step}")
    start = last_save = time.monotonic()
    first = state.step
    losses: list[float] = []
    while not _done(state, config, start):
        step_start = time.monotonic()
        losses.append(train_step(state, config, device))
        state.elapsed += time.monotonic() - step_start
        if state.step % config.log_every == 0:
            _log_progress(state, config, losses[-config.log_every :], start, first)
        if time.monotonic() - last_save >= config.checkpoint_minutes * 60:
            save_checkpoint(state, config, float(np.mean(losses[-config.log_every :])))
            last_save = time.monotonic()
    save_checkpoint(state, config, float(np.mean(losses[-config.log_every :])) if losses else float("nan"))
    return state


def _done(state: State, config: TrainConfig, start: float) -> bool:
    if config.max_steps is not None and state.step >= config.max_steps:
        return True
    return time.monotonic() - start >= config.minutes * 60


def _log_progress(state: State, config: TrainConfig, losses: list[float], start: float, first: int) -> None:
    wall = time.monotonic() - start
    _log(
        f"step {state.step} loss {np.mean(losses):.5f} lr {learning_rate(config, state.step):.2e} "
        f"{(state.step - first) / max(wall, 1e-9):.2f} steps/s, {wall / 60:.1f} min this run, "
        f"{state.elapsed / 60:.1f} min total"
    )


def _log(message: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=80.0, help="Wall-clock budget of this run.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for checkpoint.pt and ema/.")
    parser.add_argument("--resume", action="store_true", help="Continue from OUT/checkpoint.pt.")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--schedule-steps", type=int, default=8000, help="Steps of the LR decay.")
    parser.add_argument("--size", default=None, help="tiny, small or large (default: large on cuda).")
    parser.add_argument("--batch", type=int, default=None, help="Default 64 on CPU, 256 on cuda.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = pick_device(args.device).type == "cuda"
    config = TrainConfig(
        out=args.out,
        minutes=args.minutes,
        max_steps=args.max_steps,
        schedule_steps=args.schedule_steps,
        size=args.size or ("large" if cuda else "small"),
        batch=args.batch or (256 if cuda else 64),
        seed=args.seed,
        device=args.device,
    )
    train(config, resume=args.resume)


if __name__ == "__main__":
    main()
