"""One tiny random pipeline per diffusers family, built from configs offline (diffusers' own tests do the same).

Every pipeline draws 64x64 images with an 8x VAE (Sana: a 32x DC-AE), one or two transformer
layers and hidden sizes of 8 to 32, so two denoising steps take well under a second on a CPU.
``FAMILIES`` names them; ``save(name, folder)`` writes one as a diffusers folder that
``GEMS_MODEL`` (``DiffusionPipeline.from_pretrained``) loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.families import text

HIDDEN = 16  # every text encoder's width


@dataclass(frozen=True)
class Family:
    """A family in the matrix: how to build its tiny pipeline and what a user of it can expect."""

    name: str
    title: str
    pipeline: str  # the diffusers class the folder loads as
    build: Callable[[], Any]
    own_levers: bool  # diffusers has img2img and inpaint classes for it; else edits take the generic latent path
    note: str = ""


def _vae(latent_channels: int = 4, **more: Any) -> Any:
    """An AutoencoderKL with four levels (8x down), a few channels each."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64, **more,
    )


def _clip(projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=128,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=HIDDEN,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _t5() -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(d_model=HIDDEN, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
                                   vocab_size=text.VOCAB_SIZE, relative_attention_num_buckets=8))


def _gemma2() -> Any:
    from transformers import Gemma2Config, Gemma2Model

    return Gemma2Model(Gemma2Config(hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    num_key_value_heads=1, head_dim=8, vocab_size=text.VOCAB_SIZE, pad_token_id=0))


def sd15() -> Any:
    """Stable Diffusion 1.5's layout (UNet, one CLIP encoder, PNDM)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN, attention_head_dim=4, norm_num_groups=4,
    )
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True)
    return StableDiffusionPipeline(unet=unet, vae=_vae(), text_encoder=_clip(), tokenizer=text.clip(), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def sdxl() -> Any:
    """SDXL's layout: two CLIP encoders (the second with projection), micro-conditioning, Euler."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=2 * HIDDEN,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=HIDDEN + 6 * 8, norm_num_groups=4,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    return StableDiffusionXLPipeline(unet=unet, vae=_vae(), text_encoder=_clip(), text_encoder_2=_clip(projection=True),
                                     tokenizer=text.clip(), tokenizer_2=text.clip(), scheduler=scheduler)


def sd3() -> Any:
    """SD3's MMDiT with its two CLIP encoders and no T5 (SD3 allows leaving it out)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=1, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=4096, caption_projection_dim=16, pooled_projection_dim=2 * HIDDEN,
        pos_embed_max_size=16,
    )
    vae = _vae(16, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, text_encoder=_clip(True), text_encoder_2=_clip(True), tokenizer=text.clip(),
        tokenizer_2=text.clip(), text_encoder_3=None, tokenizer_3=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


def flux() -> Any:
    """Flux.1's layout: double and single stream blocks, CLIP pooled + T5 tokens, 2x2-packed latents."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=HIDDEN, axes_dims_rope=(4, 2, 2),
    )
    vae = _vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_image_seq_len=256, max_image_seq_len=4096,
                                                base_shift=0.5, max_shift=1.15)
    return FluxPipeline(transformer=transformer, vae=vae, text_encoder=_clip(), tokenizer=text.clip(), text_encoder_2=_t5(),
                        tokenizer_2=text.t5(), scheduler=scheduler)


def z_image() -> Any:
    """Z-Image's single-stream DiT with a Qwen3 text encoder and a chat-templated tokenizer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=1, n_refiner_layers=1, n_heads=2,
        n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=HIDDEN, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # created with torch.empty: fixed so a random build never holds NaNs
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    encoder = Qwen3Model(Qwen3Config(hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     num_key_value_heads=2, head_dim=8, vocab_size=text.VOCAB_SIZE))
    vae = _vae(16, scaling_factor=0.3611, shift_factor=0.1159)
    return ZImagePipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=encoder,
                          tokenizer=text.qwen())


def qwen_image() -> Any:
    """Qwen-Image's MMDiT with a Qwen2.5-VL text encoder and its video VAE, 2x2-packed latents."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    z_dim = 4
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=4 * z_dim, out_channels=z_dim, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=HIDDEN, axes_dims_rope=(4, 2, 2),
    )
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                 temperal_downsample=[False, True, True], latents_mean=[0.1, -0.2, 0.3, 0.0],
                                 latents_std=[1.5, 0.5, 2.0, 1.0])
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": HIDDEN, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": text.VOCAB_SIZE, "rope_scaling": {"type": "mrope",
                     "mrope_section": [1, 1, 2]}},
        vision_config={"depth": 1, "hidden_size": HIDDEN, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": HIDDEN},
        vocab_size=text.VOCAB_SIZE, hidden_size=HIDDEN,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_image_seq_len=256, max_image_seq_len=8192,
                                                base_shift=0.5, max_shift=0.9, shift_terminal=0.02, time_shift_type="exponential")
    return QwenImagePipeline(transformer=transformer, vae=vae, text_encoder=Qwen2_5_VLForConditionalGeneration(config),
                             tokenizer=text.qwen(), scheduler=scheduler)


def pixart_sigma() -> Any:
    """PixArt-Sigma's DiT (adaLN-single, cross-attention to T5), DPM-Solver++; no img2img class in diffusers."""
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    transformer = PixArtTransformer2DModel(
        sample_size=8, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=2, caption_channels=HIDDEN,
        in_channels=4, cross_attention_dim=16, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    )
    return PixArtSigmaPipeline(transformer=transformer, vae=_vae(), text_encoder=_t5(), tokenizer=text.t5(),
                               scheduler=DPMSolverMultistepScheduler())


def sana() -> Any:
    """Sana's linear-attention DiT over a 32x deep-compression autoencoder, Gemma 2 text encoder; flow DPM-Solver."""
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel

    transformer = SanaTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=4, num_layers=1,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=HIDDEN,
        sample_size=2, patch_size=1,
    )
    vae = AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types=("ResBlock",) * 6,
        decoder_block_types=("ResBlock",) * 6, encoder_block_out_channels=(8,) * 6, decoder_block_out_channels=(8,) * 6,
        encoder_layers_per_block=(1,) * 6, decoder_layers_per_block=(1,) * 6, encoder_qkv_multiscales=((),) * 6,
        decoder_qkv_multiscales=((),) * 6, upsample_block_type="interpolate", downsample_block_type="Conv",
        decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
    )
    scheduler = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return SanaPipeline(transformer=transformer, vae=vae, text_encoder=_gemma2(), tokenizer=text.gemma(), scheduler=scheduler)


def lumina2() -> Any:
    """Lumina Image 2.0's unified next-DiT with a Gemma 2 text encoder; no img2img class in diffusers."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    transformer = Lumina2Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=16, num_layers=1, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=1, multiple_of=16, norm_eps=1e-5, axes_dim_rope=(4, 2, 2),
        axes_lens=(300, 64, 64), cap_feat_dim=HIDDEN,
    )
    vae = _vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)
    return Lumina2Pipeline(transformer=transformer, vae=vae, text_encoder=_gemma2(), tokenizer=text.gemma(),
                           scheduler=FlowMatchEulerDiscreteScheduler())


def cogview4() -> Any:
    """CogView 4's DiT with a GLM text encoder; no img2img class in diffusers."""
    from diffusers import CogView4Pipeline, CogView4Transformer2DModel, FlowMatchEulerDiscreteScheduler
    from transformers import GlmConfig, GlmModel

    transformer = CogView4Transformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        text_embed_dim=HIDDEN, time_embed_dim=8, condition_dim=4, pos_embed_max_size=16, sample_size=8,
        rope_axes_dim=(4, 4),
    )
    encoder = GlmModel(GlmConfig(hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 num_key_value_heads=2, head_dim=8, vocab_size=text.VOCAB_SIZE, pad_token_id=0))
    scheduler = FlowMatchEulerDiscreteScheduler(base_shift=0.25, max_shift=0.75, base_image_seq_len=256,
                                                use_dynamic_shifting=True, time_shift_type="linear")
    return CogView4Pipeline(transformer=transformer, vae=_vae(), text_encoder=encoder, tokenizer=text.glm(),
                            scheduler=scheduler)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("sd15", "Stable Diffusion 1.5", "StableDiffusionPipeline", sd15, own_levers=True),
        Family("sdxl", "SDXL", "StableDiffusionXLPipeline", sdxl, own_levers=True),
        Family("sd3", "SD3 / 3.5", "StableDiffusion3Pipeline", sd3, own_levers=True, note="tested without T5"),
        Family("flux", "Flux.1", "FluxPipeline", flux, own_levers=True,
               note="a negative prompt turns on true CFG (true_cfg_scale 4)"),
        Family("z-image", "Z-Image", "ZImagePipeline", z_image, own_levers=True),
        Family("qwen-image", "Qwen-Image", "QwenImagePipeline", qwen_image, own_levers=True),
        Family("pixart-sigma", "PixArt-Sigma", "PixArtSigmaPipeline", pixart_sigma, own_levers=False,
               note="legacy step callback: the blend is written in place"),
        Family("sana", "Sana", "SanaPipeline", sana, own_levers=False),
        Family("lumina2", "Lumina Image 2.0", "Lumina2Pipeline", lumina2, own_levers=False),
        Family("cogview4", "CogView 4", "CogView4Pipeline", cogview4, own_levers=False),
    )
}


def save(name: str, folder: Path) -> Path:
    """Build family ``name`` with a fixed seed and save it to ``folder`` (a diffusers pipeline folder)."""
    import torch

    torch.manual_seed(0)
    pipe = FAMILIES[name].build()
    pipe.save_pretrained(folder)
    return folder
