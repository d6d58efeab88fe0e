"""Device smoke check: full-size random-weight SDXL, SD3, Z-Image and PixArt-Sigma through the server and directly.

Builds each pipeline from its published architecture (no download: random weights, a small
tokenizer vocabulary), saves it, loads it through GEMS_MODEL's path, and prints per pipeline:
- MCP overhead: a `generate` tool call through an in-process MCP client / the raw diffusers call;
- images/s at n=1 and n=4, batched (one call) and sequential (four calls);
- an edit and a one-box repaint (n=1), with the path each takes: diffusers' own class, or the generic
  latent path (PixArt-Sigma has no img2img or inpaint class);
- peak VRAM with GEMS_OFFLOAD=none and =model.

Usage: python scripts/gpu_check.py [--steps 8] [--repeats 2] [--only sdxl,sd3,z-image,pixart-sigma] [--keep DIR]
                                   [--compile] [--side 1024]
       python scripts/gpu_check.py --tiny        (the matrix's tiny pipelines on the CPU: checks the script itself)
"""

from __future__ import annotations

import argparse
import gc
import statistics
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
    """The tests' character-level CLIP tokenizer: built offline, its vocabulary fits the full-size encoders."""
    from tests.families import text

    return text.clip(max_length)


def clip(hidden: int, layers: int, heads: int, projection: int | None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers, num_attention_heads=heads,
        vocab_size=49408, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        projection_dim=projection or hidden, hidden_act="gelu",
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def vae(latent_channels: int, **more: Any) -> Any:
    from diffusers import AutoencoderKL

    blocks = (128, 256, 512, 512)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=blocks,
        down_block_types=("DownEncoderBlock2D",) * len(blocks), up_block_types=("UpDecoderBlock2D",) * len(blocks),
        layers_per_block=2, norm_num_groups=32, **more,
    )


def build_sdxl() -> Any:
    """SDXL base 1.0's architecture: 2.6B UNet, CLIP ViT-L and OpenCLIP bigG text encoders."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    return StableDiffusionXLPipeline(
        unet=unet, vae=vae(4, scaling_factor=0.13025), text_encoder=clip(768, 12, 12, None),
        text_encoder_2=clip(1280, 32, 20, 1280), tokenizer=tokenizer(77), tokenizer_2=tokenizer(77), scheduler=scheduler,
    )


def build_sd3() -> Any:
    """SD3 medium's architecture (a 2B MMDiT) with its two CLIP encoders; no T5, as SD3 allows."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    transformer = SD3Transformer2DModel(
        sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
        num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
        pos_embed_max_size=192,
    )
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae(16, scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False,
                                         use_post_quant_conv=False),
        text_encoder=clip(768, 12, 12, 768), text_encoder_2=clip(1280, 32, 20, 1280), tokenizer=tokenizer(77),
        tokenizer_2=tokenizer(77), text_encoder_3=None, tokenizer_3=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


def build_z_image() -> Any:
    """Z-Image-Turbo's architecture: a 6B single-stream DiT, the Qwen3-4B text encoder, the Flux VAE."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    from tests.families import text

    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30, n_refiner_layers=2,
        n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True, cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512],
    )
    with torch.no_grad():  # created with torch.empty
        transformer.x_pad_token.normal_()
        transformer.cap_pad_token.normal_()
    encoder = Qwen3Model(Qwen3Config(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                                     num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960))
    return ZImagePipeline(
        transformer=transformer, vae=vae(16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                                         use_post_quant_conv=False),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), text_encoder=encoder, tokenizer=text.qwen(),
    )


def build_pixart_sigma() -> Any:
    """PixArt-Sigma XL 1024's architecture: a 0.6B DiT, the T5-XXL encoder (4.7B), the SDXL VAE. diffusers has no
    img2img or inpaint class for it: its edits and repaints take the generic latent path."""
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    from tests.families import text

    transformer = PixArtTransformer2DModel(
        num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
        cross_attention_dim=1152, caption_channels=4096, sample_size=128, patch_size=2, interpolation_scale=2,
        attention_bias=True, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    )
    encoder = T5EncoderModel(T5Config(d_model=4096, d_ff=10240, d_kv=64, num_layers=24, num_heads=64, vocab_size=32128,
                                      feed_forward_proj="gated-gelu"))
    return PixArtSigmaPipeline(transformer=transformer, vae=vae(4, scaling_factor=0.13025), text_encoder=encoder,
                               tokenizer=text.t5(300), scheduler=DPMSolverMultistepScheduler())


FULL = {"sdxl": build_sdxl, "sd3": build_sd3, "z-image": build_z_image, "pixart-sigma": build_pixart_sigma}


def save(name: str, folder: Path, tiny: bool, device: str) -> Path:
    """Random weights made on the device (fast), saved in bf16 (fp32 on the CPU) like a downloaded model."""
    from tests.families.builders import FAMILIES

    began = time.perf_counter()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32 if tiny else torch.bfloat16)  # full size: built in bf16 (half the memory)
    try:
        with torch.device(device):
            pipe = FAMILIES[name].build() if tiny else FULL[name]()
    finally:
        torch.set_default_dtype(default)
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
    from gems_mcp.generation.loading import accepts

    same = {"use_resolution_binning": False} if accepts(pipe, "use_resolution_binning") else {}  # as the server calls it
    with torch.inference_mode():
        pipe("a red circle", num_inference_steps=steps, width=side, height=side, num_images_per_prompt=n,
             generator=seeds, output_type="pil", **same)


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
    generator = DiffusersGenerator(model, offload="none", compile=args.compile)
    speed(generator, model, args)
    levers(generator, args)
    del generator
    release(device)
    for offload in ("none", "model"):
        print(f"  peak VRAM, GEMS_OFFLOAD={offload:<5}   {peak_vram(model, offload, args.side, args.steps, device)}")


def speed(generator: DiffusersGenerator, model: str, args: argparse.Namespace) -> None:
    from gems_mcp.config import load_settings
    from gems_mcp.loop import AgentLoop
    from gems_mcp.server import create_server

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


def levers(generator: DiffusersGenerator, args: argparse.Namespace) -> None:
    """An edit and a one-box repaint at n=1, timed, with the path the load line names for each."""
    from gems_mcp.types import Region

    side = args.side or generator.capabilities().width
    params = GenerationParams(width=side, height=side, steps=args.steps, guidance=None)
    source = generator.generate(GenerationRequest(prompt="a red circle", seeds=[0], params=params))[0]
    edit = GenerationRequest(prompt="a red circle at dusk", seeds=[1], init_image=source,
                             params=params.model_copy(update={"strength": 0.6}))
    box = Region(prompt="a blue square", box=(0.25, 0.25, 0.75, 0.75))
    repaint = GenerationRequest(prompt="a red circle", seeds=[2], init_image=source, edits=[box], params=params)
    edit_s = median(lambda: generator.generate(edit), args.repeats)
    repaint_s = median(lambda: generator.generate(repaint), args.repeats)
    print(f"  levers: {generator.report.split('; ', 1)[-1]}")
    print(f"  edit n=1 (strength 0.6)       {edit_s:8.3f} s")
    print(f"  repaint n=1 (one box)         {repaint_s:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny pipelines on the CPU (checks the script)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", type=int, default=None, help="image side (default: 1024; --tiny: the model's)")
    parser.add_argument("--only", default=",".join(FULL), help="pipelines to check, comma-separated")
    parser.add_argument("--keep", type=Path, default=None, help="build into (and reuse) this folder")
    parser.add_argument("--compile", action="store_true", help="time the denoiser compiled (GEMS_COMPILE=1)")
    args = parser.parse_args()
    if args.side is None and not args.tiny:
        args.side = 1024  # all four are 1024-px models (Z-Image's config does not say so: its pipeline does)
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA device: run with --tiny to check the script on the CPU")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        root = args.keep or Path(scratch)
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            folder = root / f"{name}{'-tiny' if args.tiny else ''}"
            print(f"{name} ({'tiny, CPU' if args.tiny else torch.cuda.get_device_name()}):", flush=True)
            if not (folder / "model_index.json").is_file():
                save(name, folder, args.tiny, device)
            check(str(folder), args, device)


if __name__ == "__main__":
    main()
