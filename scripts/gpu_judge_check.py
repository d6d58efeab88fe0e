"""Peak memory of a generator and a judge on one device: each alone, then both loaded together.

Builds full-size random-weight models from configs (nothing is downloaded): an SDXL-class UNet + VAE +
both text encoders, and a Qwen2.5-VL-3B judge. Each scenario runs one generation step (UNet forward on
n latents + VAE decode) and/or one judge forward on a batch of image-question prompts, and prints the
peak allocated memory. --tiny builds the same architectures at toy sizes and runs on the CPU (peak RSS
is a process-wide high-water mark there, so only the weights are compared), so the path is checked where
no GPU is.

Usage: python scripts/gpu_judge_check.py [--tiny] [--n 2] [--pairs 8] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import torch


def sdxl_parts(tiny: bool) -> dict[str, Any]:
    """UNet, VAE and the two CLIP text encoders of an SDXL-class pipeline, random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if tiny:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, transformer_layers_per_block=(1, 2), cross_attention_dim=64,
            attention_head_dim=(2, 4), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=80, sample_size=16,
            use_linear_projection=True, norm_num_groups=8,
        )
        vae = AutoencoderKL(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8)
        enc1 = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        enc2 = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              projection_dim=32)
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
            cross_attention_dim=2048, attention_head_dim=(5, 10, 20),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816, sample_size=128,
            use_linear_projection=True,
        )
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, sample_size=1024)
        enc1 = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
        enc2 = CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                              projection_dim=1280)
    return {"unet": unet, "vae": vae, "text_encoder": CLIPTextModel(enc1),
            "text_encoder_2": CLIPTextModelWithProjection(enc2)}


def qwen_judge(tiny: bool) -> Any:
    """A Qwen2.5-VL (3B sizes unless tiny) with random weights."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    if tiny:
        text = {"vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2],
                                                            "rope_theta": 10000.0}}
        vision = {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "out_hidden_size": 64,
                      "fullatt_block_indexes": [1], "window_size": 112}
        ids = {"image_token_id": 990, "video_token_id": 991, "vision_start_token_id": 992, "vision_end_token_id": 993}
    else:
        text = {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                    "num_attention_heads": 16, "num_key_value_heads": 2, "tie_word_embeddings": True,
                    "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0}}
        vision = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": 2048,
                      "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112}
        ids = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652, "vision_end_token_id": 151653}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    return Qwen2_5_VLForConditionalGeneration(config)


def judge_inputs(model: Any, pairs: int, side: int, device: str, dtype: Any) -> dict[str, Any]:
    """`pairs` prompts of one image (side x side) and 16 question tokens each, as the processor would make them."""
    cfg = model.config
    patches = side // 14
    tokens = patches * patches // 4
    row = [cfg.vision_start_token_id] + [cfg.image_token_id] * tokens + [cfg.vision_end_token_id] + list(range(10, 26))
    input_ids = torch.tensor([row] * pairs, device=device)
    pixel_values = torch.randn(pairs * patches * patches, 3 * 2 * 14 * 14, device=device, dtype=dtype)
    grid = torch.tensor([[1, patches, patches]] * pairs, device=device)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "pixel_values": pixel_values,
            "image_grid_thw": grid}


def generate_step(parts: dict[str, Any], n: int, latent: int, device: str, dtype: Any) -> None:
    unet, vae = parts["unet"], parts["vae"]
    hidden = unet.config.cross_attention_dim
    pooled = parts["text_encoder_2"].config.projection_dim
    ids = torch.randint(0, 100, (n, 16), device=device)
    with torch.inference_mode():
        parts["text_encoder"](ids)
        parts["text_encoder_2"](ids)
        latents = torch.randn(n, 4, latent, latent, device=device, dtype=dtype)
        cond = {"text_embeds": torch.randn(n, pooled, device=device, dtype=dtype),
                "time_ids": torch.randn(n, 6, device=device, dtype=dtype)}
        out = unet(latents, 10, torch.randn(n, 16, hidden, device=device, dtype=dtype), added_cond_kwargs=cond).sample
        _ = vae.decode(out).sample


def judge_step(model: Any, pairs: int, side: int, device: str, dtype: Any) -> None:
    with torch.inference_mode():
        model(**judge_inputs(model, pairs, side, device, dtype), logits_to_keep=1)


def gib(n: float) -> str:
    return f"{n / 2**30:.3f} GiB"


class Meter:
    """Peak allocated CUDA memory of one scenario; on the CPU there is no per-scenario peak (RSS only grows)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()

    def peak(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        return float("nan")


def size(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (checks the path, not the GPU)")
    parser.add_argument("--n", type=int, default=2, help="candidates per generation step")
    parser.add_argument("--pairs", type=int, default=8, help="image-question prompts per judge forward")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if device == "cpu" else getattr(torch, args.dtype)
    latent, side = (16, 56) if args.tiny else (128, 448)
    meter = Meter(device)
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'CPU: no peak, weights only'}), {dtype}, "
          f"n={args.n}, {args.pairs} judge prompts of {side}x{side}, latents {latent}x{latent}")

    def scenario(name: str, gen: bool, judge: bool, offload_judge: bool = False) -> float:
        meter.start()
        t0 = time.perf_counter()
        parts = {k: m.to(device, dtype).eval() for k, m in sdxl_parts(args.tiny).items()} if gen else {}
        vlm = qwen_judge(args.tiny).to("cpu" if offload_judge else device, dtype).eval() if judge else None
        if gen:
            generate_step(parts, args.n, latent, device, dtype)
        if vlm is not None:
            vlm.to(device)
            judge_step(vlm, args.pairs, side, device, dtype)
            if offload_judge:
                vlm.to("cpu")
        if gen and offload_judge:
            generate_step(parts, args.n, latent, device, dtype)  # the next round, with the judge back on the CPU
        peak = meter.peak()
        weights = sum(size(m) for m in parts.values()) + (size(vlm) if vlm is not None else 0)
        print(f"{name:<34} weights {gib(weights):>12}  peak {gib(peak):>12}  ({time.perf_counter() - t0:.1f} s)")
        del parts, vlm
        return peak

    alone_gen = scenario("generator alone", True, False)
    alone_judge = scenario("judge alone", False, True)
    together = scenario("generator + judge, both resident", True, True)
    offloaded = scenario("generator + judge, judge offloaded", True, True, offload_judge=True)
    print(f"together / (generator + judge alone) = {together / max(1.0, alone_gen + alone_judge):.2f}; "
          f"together - generator alone = {gib(together - alone_gen)}; offloaded - generator alone = "
          f"{gib(offloaded - alone_gen)}")


if __name__ == "__main__":
    main()
