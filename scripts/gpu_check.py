"""Device smoke check: full-size random-weight SDXL and SD3 (a DiT) through the server and directly.

Builds each pipeline from its published architecture (no download: random weights, a small
tokenizer vocabulary), saves it, loads it through GEMS_MODEL's path, and prints per pipeline:
- MCP overhead: a `generate` tool call through an in-process MCP client / the raw diffusers call;
- images/s at n=1 and n=4, batched (one call) and sequential (four calls);
- peak VRAM with GEMS_OFFLOAD=none and =model.

Usage: python scripts/gpu_check.py [--steps 8] [--repeats 2] [--only sdxl,sd3] [--keep DIR] [--compile]
       python scripts/gpu_check.py --tiny        (tiny pipelines on the CPU: checks the script itself)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anyio
import torch

from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.types import GenerationParams


def tokenizer(max_length: int) -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ".,'!?-":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length, bos_token="<|startoftext|>",
                         eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")


def clip(hidden: int, layers: int, heads: int, projection: int | None, tiny: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers, num_attention_heads=heads,
        vocab_size=128 if tiny else 49408, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        projection_dim=projection or hidden, hidden_act="gelu",
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def vae(latent_channels: int, tiny: bool, **more: Any) -> Any:
    from diffusers import AutoencoderKL

    blocks = (8, 8) if tiny else (128, 256, 512, 512)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=blocks,
        down_block_types=("DownEncoderBlock2D",) * len(blocks), up_block_types=("UpDecoderBlock2D",) * len(blocks),
        layers_per_block=1 if tiny else 2, norm_num_groups=4 if tiny else 32, **more,
    )


def build_sdxl(tiny: bool) -> Any:
    """SDXL base 1.0's architecture: 2.6B UNet, CLIP ViT-L and OpenCLIP bigG text encoders."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    if tiny:
        unet = UNet2DConditionModel(
            sample_size=32, block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=32,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=16 + 6 * 8, norm_num_groups=4,
        )
        encoders = clip(16, 1, 2, None, True), clip(16, 1, 2, 16, True)
    else:
        unet = UNet2DConditionModel(
            sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
        )
        encoders = clip(768, 12, 12, None, False), clip(1280, 32, 20, 1280, False)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    return StableDiffusionXLPipeline(
        unet=unet, vae=vae(4, tiny, scaling_factor=0.13025), text_encoder=encoders[0], text_encoder_2=encoders[1],
        tokenizer=tokenizer(77), tokenizer_2=tokenizer(77), scheduler=scheduler,
    )


def build_sd3(tiny: bool) -> Any:
    """SD3 medium's architecture (a 2B MMDiT) with its two CLIP encoders; no T5, as SD3 allows."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    if tiny:
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=1, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64,
        )
        encoders, latent = (clip(32, 1, 4, 32, True), clip(32, 1, 4, 32, True)), 4
    else:
        transformer = SD3Transformer2DModel(
            sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
            num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
            pos_embed_max_size=192,
        )
        encoders, latent = (clip(768, 12, 12, 768, False), clip(1280, 32, 20, 1280, False)), 16
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae(latent, tiny, scaling_factor=1.5305, shift_factor=0.0609,
                                         use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=encoders[0], text_encoder_2=encoders[1], tokenizer=tokenizer(77), tokenizer_2=tokenizer(77),
        text_encoder_3=None, tokenizer_3=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


def save(build: Any, folder: Path, tiny: bool, device: str) -> Path:
    """Random weights made on the device (fast), saved in bf16 (fp32 on the CPU) like a downloaded model."""
    began = time.perf_counter()
    with torch.device(device):
        pipe = build(tiny)
    pipe.to(dtype=torch.float32 if tiny else torch.bfloat16).save_pretrained(folder)
    del pipe
    release(device)
    print(f"  built and saved {folder.name} in {time.perf_counter() - began:.0f} s", flush=True)
    return folder


def release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def median(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def raw_call(generator: DiffusersGenerator, side: int, steps: int, n: int) -> None:
    """The pipeline called as a diffusers user would: no queue, no PNGs, no MCP."""
    pipe = generator.load()
    device = generator._torch_generator_device
    seeds = [torch.Generator(device).manual_seed(s) for s in range(n)]
    with torch.inference_mode():
        pipe("a red circle", num_inference_steps=steps, width=side, height=side, num_images_per_prompt=n,
             generator=seeds, output_type="pil")


def server_call(server: Any, side: int, steps: int, n: int) -> None:
    from mcp import Client

    async def go() -> None:
        async with Client(server) as client:
            result = await client.call_tool("generate", {"prompt": "a red circle", "n": n, "steps": steps, "seed": 1,
                                                         "width": side, "height": side})
            assert not result.is_error, result.content[0].text

    anyio.run(go)


def peak_vram(model: str, offload: str, side: int | None, steps: int, device: str) -> str:
    """Peak GPU memory of load + one n=1 generation with this offload mode."""
    if not device.startswith("cuda"):
        return "n/a (no CUDA)"
    release(device)
    torch.cuda.reset_peak_memory_stats()
    generator = DiffusersGenerator(model, offload=offload)
    side = side or generator.capabilities().width
    params = GenerationParams(width=side, height=side, steps=steps, guidance=None)
    generator.generate(GenerationRequest(prompt="a red circle", seeds=[0], params=params))
    peak = torch.cuda.max_memory_allocated() / 2**30
    del generator
    release(device)
    return f"{peak:.1f} GiB"


def check(model: str, args: argparse.Namespace, device: str) -> None:
    speed(model, args)
    release(device)
    for offload in ("none", "model"):
        print(f"  peak VRAM, GEMS_OFFLOAD={offload:<5}   {peak_vram(model, offload, args.side, args.steps, device)}")


def speed(model: str, args: argparse.Namespace) -> None:
    from gems_mcp.config import load_settings
    from gems_mcp.loop import AgentLoop
    from gems_mcp.server import create_server

    generator = DiffusersGenerator(model, offload="none", compile=args.compile)
    caps = generator.capabilities()
    side = args.side or caps.width
    settings = load_settings(model=model, offload="none", max_candidates=8)
    server = create_server(settings, AgentLoop(settings, generator=generator, judge=None))
    steps, repeats = args.steps, args.repeats
    params = GenerationParams(width=side, height=side, steps=steps, guidance=None)

    def direct(n: int) -> None:
        generator.generate(GenerationRequest(prompt="a red circle", seeds=list(range(n)), params=params))

    raw_call(generator, side, steps, 1)  # warm-up: kernels, allocator
    server_call(server, side, steps, 1)
    raw = median(lambda: raw_call(generator, side, steps, 1), repeats)
    via_server = median(lambda: server_call(server, side, steps, 1), repeats)
    one = median(lambda: direct(1), repeats)
    batched = median(lambda: direct(4), repeats)
    sequential = median(lambda: [direct(1) for _ in range(4)], repeats)
    print(f"  {generator.report}")
    print(f"  {side}x{side}, {steps} steps, median of {repeats}")
    print(f"  raw diffusers call n=1        {raw:8.3f} s")
    print(f"  MCP generate n=1              {via_server:8.3f} s   overhead {100 * (via_server / raw - 1):+.1f}%")
    print(f"  images/s n=1                  {1 / one:8.3f}")
    print(f"  images/s n=4 batched          {4 / batched:8.3f}   ({sequential / batched:.2f}x the sequential rate)")
    print(f"  images/s n=4 sequential       {4 / sequential:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny pipelines on the CPU (checks the script)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", type=int, default=None, help="image side (default: the model's)")
    parser.add_argument("--only", default="sdxl,sd3", help="pipelines to check, comma-separated")
    parser.add_argument("--keep", type=Path, default=None, help="build into (and reuse) this folder")
    parser.add_argument("--compile", action="store_true", help="time the denoiser compiled (GEMS_COMPILE=1)")
    args = parser.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA device: run with --tiny to check the script on the CPU")
    builders = {"sdxl": build_sdxl, "sd3": build_sd3}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        root = args.keep or Path(scratch)
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            folder = root / f"{name}{'-tiny' if args.tiny else ''}"
            print(f"{name} ({'tiny, CPU' if args.tiny else torch.cuda.get_device_name()}):", flush=True)
            if not (folder / "model_index.json").is_file():
                save(builders[name], folder, args.tiny, device)
            check(str(folder), args, device)


if __name__ == "__main__":
    main()
