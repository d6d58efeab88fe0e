"""The embedded model: a word-level text encoder and a pixel-space UNet over 2x2 patches, plus DDIM sampling.

The UNet also reads a layout map (gems_mcp.shapes.layout: per native pixel a one-hot color, a one-hot
shape, "object here", "keep empty"), folded like the image and concatenated to its input. Weights
saved before the layout input existed load with those input channels zero, which is the old model
exactly whenever the map is empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from torch import nn

from gems_mcp.shapes.layout import LAYOUT_CHANNELS
from gems_mcp.shapes.world import COLORS, RELATIONS, SHAPES, SIZE, SceneSpec

PATCH = 2
"""Images are folded into PATCH x PATCH patches: 3x32x32 becomes 12x16x16 (3.8x faster steps)."""

# ---------------------------------------------------------------- tokenizer

PAD, NULL = 0, 1
_WORDS = ["<pad>", "<null>", "1", "2", "3", "4", *COLORS, "any", *SHAPES, "and", *RELATIONS]
VOCAB = {word: i for i, word in enumerate(_WORDS)}
MAX_TOKENS = 16


def tokenize(spec: SceneSpec) -> list[int]:
    """Canonical word ids of a spec (count, color, shape per group; 'and' or the relation between)."""
    ids: list[int] = []
    joiner = VOCAB[spec.relation] if spec.relation else VOCAB["and"]
    for i, group in enumerate(spec.groups):
        if i:
            ids.append(joiner)
        ids += [VOCAB[str(group.count)], VOCAB[group.color or "any"], VOCAB[group.shape]]
    return ids + [PAD] * (MAX_TOKENS - len(ids))


def null_tokens() -> list[int]:
    """The unconditional caption used for classifier-free guidance."""
    return [NULL] * MAX_TOKENS


# ---------------------------------------------------------------- architecture


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the text encoder and UNet; 'small' is what ships, 'large' is for a GPU."""

    channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    text_width: int = 64
    text_layers: int = 2
    heads: int = 4
    layout_channels: int = LAYOUT_CHANNELS
    """Layout-map channels per native pixel (0: a model without layout input, the format before layouts)."""

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        """A named size: tiny (tests), small (CPU, shipped), large (GPU)."""
        presets = {
            "tiny": cls(channels=(16, 16, 16), text_width=16, text_layers=1, heads=2),
            "small": cls(),
            "large": cls(channels=(64, 128, 256), layers_per_block=2, text_width=128, text_layers=4),
        }
        if name not in presets:
            raise ValueError(f"unknown model size {name!r}; choose from {sorted(presets)}")
        return presets[name]


class TextEncoder(nn.Module):
    """A small transformer over the canonical word ids; trained jointly with the UNet."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), width)
        self.position = nn.Parameter(torch.zeros(1, MAX_TOKENS, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=width * 4, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(self.encoder(self.embed(ids) + self.position))
        return out


class ShapesModel(nn.Module):
    """Text encoder + UNet predicting v for 2x2-folded 32x32 images, with xy coordinate channels."""

    coords: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.text = TextEncoder(config.text_width, config.text_layers, config.heads)
        self.unet = _build_unet(config)
        side = SIZE // PATCH
        ramp = torch.linspace(-1, 1, side)
        # explicit coordinates give cross-attention a handle on "left"/"above" at every level
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="xy"))[None], persistent=False)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, ids: torch.Tensor, layout: torch.Tensor | None = None
    ) -> torch.Tensor:
        """v prediction for folded images x (B, 12, 16, 16) at timesteps t given word ids and a layout.

        layout: (B, layout_channels, 32, 32) in {0, 1} at native resolution, or None for no layout.
        """
        context = self.text(ids)
        parts = [x, self.coords.expand(x.shape[0], -1, -1, -1)]
        if self.config.layout_channels:
            if layout is None:
                shape = (x.shape[0], self.config.layout_channels * PATCH * PATCH, *x.shape[2:])
                parts.append(x.new_zeros(shape))
            else:
                parts.append(fold(layout.to(x.dtype)))
        elif layout is not None and bool(layout.any()):
            raise ValueError("this model has no layout input")
        v: torch.Tensor = self.unet(torch.cat(parts, dim=1), t, encoder_hidden_states=context).sample
        return v


def _build_unet(config: ModelConfig) -> UNet2DConditionModel:
    channels = tuple(config.channels)
    down = ("CrossAttnDownBlock2D",) * (len(channels) - 1) + ("DownBlock2D",)
    up = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(channels) - 1)
    return UNet2DConditionModel(
        sample_size=SIZE // PATCH,
        in_channels=(3 + config.layout_channels) * PATCH * PATCH + 2,
        out_channels=3 * PATCH * PATCH,
        block_out_channels=channels,
        layers_per_block=config.layers_per_block,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=config.text_width,
        attention_head_dim=max(channels[0] // 8, 1),
        norm_num_groups=min(8, channels[0]),
    )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- pixels <-> model space


def fold(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 32, 32) in [-1, 1] -> (B, 12, 16, 16)."""
    return F.pixel_unshuffle(images, PATCH)


def unfold(x: torch.Tensor) -> torch.Tensor:
    return F.pixel_shuffle(x, PATCH)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, 32, 32, 3) -> float (B, 3, 32, 32) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, 32, 32) in [-1, 1] -> uint8 (B, 32, 32, 3)."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------- schedulers


def train_scheduler() -> DDPMScheduler:
    """Cosine schedule, v-prediction (the earlier feasibility run's choice)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"
    )


def sample_scheduler() -> DDIMScheduler:
    # trailing spacing starts sampling at t=999, where the cosine schedule is pure noise
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=True,
    )


# ---------------------------------------------------------------- sampling


@dataclass
class SampleJob:
    """One batched sampling call.

    init (B, 3, 32, 32) with strength turns it into image-to-image. layout (B, L, 32, 32) conditions
    every candidate on a layout map. init with mask (B, 1, 32, 32; 1 = repaint) inpaints: every step
    keeps the known pixels from the init image noised to that step (RePaint without resampling),
    and the result holds the init pixels exactly outside the mask.
    """

    ids: list[list[int]]
    seeds: list[int]
    steps: int
    guidance: float
    init: torch.Tensor | None = None
    strength: float = 1.0
    layout: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def initial_noise(seeds: list[int], device: torch.device) -> torch.Tensor:
    """One noise tensor per seed, drawn from its own generator so a candidate never depends on the batch."""
    shape = (3 * PATCH * PATCH, SIZE // PATCH, SIZE // PATCH)
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return torch.stack(noise).to(device)


@torch.no_grad()
def sample(
    model: ShapesModel,
    job: SampleJob,
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Images (B, 3, 32, 32) in [-1, 1] by DDIM; on_step(step, total) after each step may raise to stop."""
    device = next(model.parameters()).device
    scheduler = sample_scheduler()
    scheduler.set_timesteps(job.steps, device=device)
    timesteps = scheduler.timesteps
    noise = initial_noise(job.seeds, device)
    x = noise
    known: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    if job.init is not None and job.mask is not None:
        known = fold(job.init.to(device))
        keep = fold((1 - job.mask.to(device).float()).expand(-1, 3, -1, -1))
    elif job.init is not None:
        # img2img: start part-way down the schedule from a noised copy of the init image
        steps = max(1, min(job.steps, round(job.steps * job.strength)))
        timesteps = timesteps[job.steps - steps :]
        x = scheduler.add_noise(fold(job.init.to(device)), noise, timesteps[:1].repeat(len(job.seeds)))
    ids, layout = _conditions(model, job, device)
    stride = scheduler.config.num_train_timesteps // job.steps
    for i, t in enumerate(timesteps):
        if known is not None and keep is not None and i == 0:
            x = keep * scheduler.add_noise(known, noise, t.repeat(len(job.seeds))) + (1 - keep) * x
        v = _guided(model, x, t, ids, layout, job.guidance)
        x = scheduler.step(v, int(t), x).prev_sample
        if known is not None and keep is not None:
            previous = int(t) - stride
            if previous >= 0 and i + 1 < len(timesteps):
                ref = scheduler.add_noise(known, noise, torch.full((len(job.seeds),), previous, device=device))
            else:
                ref = known
            x = keep * ref + (1 - keep) * x
        if on_step is not None:
            on_step(i + 1, len(timesteps))
    return unfold(x)


def _conditions(
    model: ShapesModel, job: SampleJob, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Word ids and layout maps, with the unconditional half (no caption, no layout) when guiding."""
    ids = torch.tensor(job.ids, device=device)
    layout = None if job.layout is None else job.layout.to(device).float()
    if job.guidance == 1.0:
        return ids, layout
    ids = torch.cat([ids, torch.tensor([null_tokens()] * len(job.ids), device=device)])
    if layout is not None:
        layout = torch.cat([layout, torch.zeros_like(layout)])
    return ids, layout


def _guided(
    model: ShapesModel,
    x: torch.Tensor,
    t: torch.Tensor,
    ids: torch.Tensor,
    layout: torch.Tensor | None,
    guidance: float,
) -> torch.Tensor:
    if guidance == 1.0:
        v: torch.Tensor = model(x, t.expand(x.shape[0]), ids, layout)
        return v
    both: torch.Tensor = model(torch.cat([x, x]), t.expand(2 * x.shape[0]), ids, layout)
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


# ---------------------------------------------------------------- weights on disk

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_weights(model: ShapesModel, folder: Path, info: dict[str, object]) -> None:
    """Write the weights (safetensors) and a JSON config with the model sizes and `info`."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    config = {"model": asdict(model.config), **info}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def load_weights(folder: Path, device: torch.device | str = "cpu") -> tuple[ShapesModel, dict[str, object]]:
    """The model in eval mode and its JSON config."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    sizes = dict(config["model"])
    sizes["channels"] = tuple(sizes["channels"])
    # weights saved before layouts existed have no layout input: give them one, zero-initialised
    sizes.setdefault("layout_channels", 0)
    stored = ModelConfig(**sizes)
    model = ShapesModel(replace(stored, layout_channels=max(stored.layout_channels, LAYOUT_CHANNELS)))
    load_state(model, load_file(str(folder / WEIGHTS_FILE)))
    return model.to(device).eval(), config


def load_state(model: ShapesModel, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict, zero-padding conv_in when the stored model had fewer input channels (no layout).

    The image and coordinate channels come first in the input and keep their weights; the new layout
    channels get zero weights, so the model computes exactly what the stored one did on an empty map.
    """
    key = "unet.conv_in.weight"
    target = model.state_dict()[key]
    stored = state[key]
    if stored.shape != target.shape:
        if stored.shape[0] != target.shape[0] or stored.shape[1] > target.shape[1]:
            raise ValueError(f"cannot load conv_in of shape {tuple(stored.shape)} into {tuple(target.shape)}")
        padded = torch.zeros_like(target)
        padded[:, : stored.shape[1]] = stored
        state = {**state, key: padded}
    model.load_state_dict(state)
