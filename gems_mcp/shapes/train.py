"""Train the embedded model: `python -m gems_mcp.shapes.train --minutes N --out DIR [--resume]`.

Fine-tune with layouts from the shipped weights:
`python -m gems_mcp.shapes.train --init-from gems_mcp/shapes/weights --minutes 7 --out DIR --workers 8`.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from gems_mcp.shapes.data import make_batch
from gems_mcp.shapes.model import (
    ModelConfig,
    ShapesModel,
    fold,
    load_weights,
    null_tokens,
    parameter_count,
    save_weights,
    to_tensor,
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
    schedule_steps: int | None = 8000
    """Steps of the LR decay; None: fit the decay to the time budget (measured after 20 steps)."""
    size: str = "small"
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    caption_dropout: float = 0.15
    layout_share: float = 0.6
    """Share of examples that get the layout map of (some of) their objects."""
    uncond_dropout: float = 0.1
    """Share of examples with neither caption nor layout: the unconditional branch of guidance."""
    seed: int = 0
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    device: str = "auto"
    init_from: Path | None = None
    """Start from these weights (EMA folder; older weights without layout input get one, zero-initialised)."""
    workers: int = 0
    """DataLoader worker processes rendering batches ahead of the model (0: render in the main process)."""


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


# ---------------------------------------------------------------- data


@dataclass
class Batch:
    """Everything one step feeds the model, on the CPU; a pure function of (config, step)."""

    x0: torch.Tensor
    noise: torch.Tensor
    t: torch.Tensor
    tokens: torch.Tensor
    layout: torch.Tensor

    def pin_memory(self) -> Batch:
        return Batch(*(v.pin_memory() for v in (self.x0, self.noise, self.t, self.tokens, self.layout)))

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(*(v.to(device, non_blocking=nb) for v in (self.x0, self.noise, self.t, self.tokens, self.layout)))


def prepare_batch(config: TrainConfig, step: int) -> Batch:
    """Render step `step`'s scenes and draw its noise, timesteps and dropouts (CPU, worker-safe)."""
    images, ids, layouts = make_batch(config.seed, step, config.batch, config.layout_share)
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    x0 = fold(to_tensor(images))
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, 1000, (config.batch,), generator=gen)
    # caption dropout trains text-free (layout-only) sampling; joint dropout trains the unconditional
    # branch of classifier-free guidance, which sees neither caption nor layout
    drop_caption = torch.rand(config.batch, generator=gen) < config.caption_dropout
    drop_all = torch.rand(config.batch, generator=gen) < config.uncond_dropout
    tokens = torch.tensor(ids)
    tokens[drop_caption | drop_all] = torch.tensor(null_tokens())
    layout = torch.from_numpy(layouts)
    layout[drop_all] = 0
    return Batch(x0, noise, t, tokens, layout)


class _Batches(torch.utils.data.Dataset[Batch]):
    """Batch k of the run at index k, for a DataLoader whose workers render ahead."""

    def __init__(self, config: TrainConfig, first: int, last: int) -> None:
        self.config, self.first, self.last = config, first, last

    def __len__(self) -> int:
        return self.last - self.first

    def __getitem__(self, index: int) -> Batch:
        return prepare_batch(self.config, self.first + index)


def _identity(batch: Any) -> Any:
    return batch  # batch_size=None: each item is already a whole Batch


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def batches(config: TrainConfig, first: int, last: int = 10**9) -> Iterator[Batch]:
    """Batches first, first+1, ... in order; rendered by `config.workers` processes when > 0."""
    if config.workers <= 0:
        return (prepare_batch(config, step) for step in range(first, last))
    loader = torch.utils.data.DataLoader(
        _Batches(config, first, last),
        batch_size=None,
        shuffle=False,
        num_workers=config.workers,
        prefetch_factor=4,
        persistent_workers=False,
        worker_init_fn=_worker_init,
        pin_memory=pick_device(config.device).type == "cuda",
        collate_fn=_identity,
    )
    return iter(loader)


# ---------------------------------------------------------------- optimisation


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to a tenth over schedule_steps."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    total = config.schedule_steps or max(step + 1, 10**6)
    progress = min(1.0, (step - config.warmup) / max(1, total - config.warmup))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@functools.cache
def _scheduler() -> Any:
    """One training scheduler per process (it caches its alphas on the device after the first step)."""
    return train_scheduler()


def loss_at(state: State, batch: Batch, device: torch.device) -> torch.Tensor:
    """Plain v-prediction MSE on one batch."""
    batch = batch.to(device)
    scheduler = _scheduler()
    noisy = scheduler.add_noise(batch.x0, batch.noise, batch.t)
    target = scheduler.get_velocity(batch.x0, batch.noise, batch.t)
    pred = state.model(noisy, batch.t, batch.tokens, batch.layout)
    return F.mse_loss(pred, target)


def train_step(state: State, config: TrainConfig, device: torch.device, batch: Batch | None = None) -> torch.Tensor:
    """One optimiser step; returns the loss as a tensor on the device (reading it would sync a GPU)."""
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(config, state.step)
    loss = loss_at(state, batch if batch is not None else prepare_batch(config, state.step), device)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), 1.0)
    state.optimizer.step()
    _update_ema(state, config)
    state.step += 1
    return loss.detach()


@torch.no_grad()
def _update_ema(state: State, config: TrainConfig) -> None:
    decay = min(config.ema_decay, (1 + state.step) / (10 + state.step))
    torch._foreach_lerp_(list(state.ema.parameters()), list(state.model.parameters()), 1 - decay)


def new_state(config: TrainConfig, device: torch.device) -> State:
    torch.manual_seed(config.seed)
    if config.init_from is not None:
        model, _ = load_weights(Path(config.init_from), device)
        model.train()
    else:
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
        "layout_share": config.layout_share,
        "init_from": str(config.init_from) if config.init_from else None,
        **_inherited(config),
    }
    save_weights(state.ema, config.out / EMA_DIR, info)


def _inherited(config: TrainConfig) -> dict[str, object]:
    """Settings a fine-tuned model keeps from the weights it started from (the tuned guidance)."""
    if config.init_from is None:
        return {}
    try:
        parent = json.loads((Path(config.init_from) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return {key: parent[key] for key in ("guidance", "native_size") if key in parent}


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
    _log(
        f"device {device}, {parameter_count(state.model):,} parameters, batch {config.batch}, "
        f"{config.workers} data workers, starting at step {state.step}"
        + (f" from {config.init_from}" if config.init_from and state.step == 0 else "")
    )
    start = last_save = time.monotonic()
    first = state.step
    losses: list[torch.Tensor] = []
    feed = batches(config, state.step, config.max_steps if config.max_steps is not None else 10**9)
    fit_schedule = config.schedule_steps is None
    clock = start
    # A bar on a terminal; log lines (below) in files and CI.
    total = config.max_steps - first if config.max_steps is not None else None
    bar = tqdm(total=total, unit="step", desc="training", leave=False, disable=not sys.stderr.isatty())
    while not _done(state, config, start):
        step_start = time.monotonic()
        batch = next(feed)
        losses.append(train_step(state, config, device, batch))
        bar.update(1)
        del losses[: -config.log_every]
        state.elapsed += time.monotonic() - step_start
        if fit_schedule and state.step - first == 20:
            clock = time.monotonic()
        if fit_schedule and state.step - first == 40:
            # decay the LR over the steps the time budget leaves, measured over steps 20-40
            rate = 20 / max(time.monotonic() - clock, 1e-9)
            left = config.minutes * 60 - (time.monotonic() - start)
            config.schedule_steps = state.step + int(rate * left)
            _log(f"{rate:.1f} steps/s: the LR decays over {config.schedule_steps} steps")
        if state.step % config.log_every == 0:
            loss = _mean(losses[-config.log_every :])
            bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
            _log_progress(state, config, loss, start, first)
        if time.monotonic() - last_save >= config.checkpoint_minutes * 60:
            save_checkpoint(state, config, _mean(losses[-config.log_every :]))
            last_save = time.monotonic()
    del feed
    bar.close()
    wall = time.monotonic() - start
    _log(f"done: {state.step - first} steps in {wall:.0f} s ({(state.step - first) / max(wall, 1e-9):.2f} steps/s)")
    save_checkpoint(state, config, _mean(losses[-config.log_every :]) if losses else float("nan"))
    return state


def _mean(losses: list[torch.Tensor]) -> float:
    return float(torch.stack(losses).mean().item()) if losses else float("nan")


def _done(state: State, config: TrainConfig, start: float) -> bool:
    if config.max_steps is not None and state.step >= config.max_steps:
        return True
    return time.monotonic() - start >= config.minutes * 60


def _log_progress(state: State, config: TrainConfig, loss: float, start: float, first: int) -> None:
    wall = time.monotonic() - start
    _log(
        f"step {state.step} loss {loss:.5f} lr {learning_rate(config, state.step):.2e} "
        f"{(state.step - first) / max(wall, 1e-9):.2f} steps/s, {wall / 60:.1f} min this run, "
        f"{state.elapsed / 60:.1f} min total"
    )


def _log(message: str) -> None:
    tqdm.write(f"[train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=80.0, help="Wall-clock budget of this run.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for checkpoint.pt and ema/.")
    parser.add_argument("--resume", action="store_true", help="Continue from OUT/checkpoint.pt.")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument(
        "--schedule-steps", default="8000", help="Steps of the LR decay, or 'auto' to fit it to --minutes."
    )
    parser.add_argument("--size", default=None, help="tiny, small or large (default: large on cuda).")
    parser.add_argument("--batch", type=int, default=None, help="Default 64 on CPU, 256 on cuda.")
    parser.add_argument("--lr", type=float, default=None, help="Peak LR (default 1e-3, 3e-4 with --init-from).")
    parser.add_argument("--warmup", type=int, default=None, help="Warmup steps (default 200, 100 with --init-from).")
    parser.add_argument("--layout-share", type=float, default=0.6)
    parser.add_argument("--init-from", type=Path, default=None, help="Fine-tune from these weights.")
    parser.add_argument("--workers", type=int, default=0, help="Data worker processes (0: main process).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    finetune = args.init_from is not None
    config = TrainConfig(
        out=args.out,
        minutes=args.minutes,
        max_steps=args.max_steps,
        schedule_steps=None if args.schedule_steps == "auto" else int(args.schedule_steps),
        size=args.size or ("large" if cuda else "small"),
        batch=args.batch or (256 if cuda else 64),
        lr=args.lr or (3e-4 if finetune else 1e-3),
        warmup=args.warmup if args.warmup is not None else (100 if finetune else 200),
        layout_share=args.layout_share,
        seed=args.seed,
        checkpoint_minutes=args.checkpoint_minutes,
        device=str(device),
        init_from=args.init_from,
        workers=args.workers,
        log_every=args.log_every,
    )
    train(config, resume=args.resume)


if __name__ == "__main__":
    main()
