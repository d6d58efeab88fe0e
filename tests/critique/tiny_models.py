"""Tiny random judge models of the real architectures, saved to disk so judges load them through from_pretrained.

The VLM is a LLaVA (CLIP vision tower + Llama text model): the Qwen2-VL/Qwen3-VL processors cannot be
built without torchvision (their video processor), which this machine cannot load (DESIGN.md, Working
offline). The detector is an OWLv2. Tokenizers are built from Python objects; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_MERGES = [("Y", "e"), ("Ye", "s"), ("N", "o"), ("y", "e"), ("ye", "s"), ("n", "o")]


def byte_level_tokenizer(specials: list[str], merges: list[tuple[str, str]] = _MERGES):
    """A byte-level BPE tokenizer: the 256 byte symbols, a few merges (so 'Yes'/'No' are one token each), specials."""
    from tokenizers import pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for token in specials:
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=list(merges))
    tokenizer.add_special_tokens({"additional_special_tokens": [t for t in specials if t != "<|endoftext|>"]})
    return tokenizer


def build_tiny_vlm(folder: Path, merges: list[tuple[str, str]] = _MERGES, seed: int = 0) -> Path:
    """Save a ~25k-parameter LLaVA (28x28 images, one layer each side) with its processor to ``folder``."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = byte_level_tokenizer(["<|endoftext|>", "<image>", "<|im_start|>", "<|im_end|>"], merges)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE, num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
            patch_size=14, projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_owlv2(folder: Path, seed: int = 0, grid: bool = False) -> Path:
    """Save a tiny OWLv2 (64x64 input, 16-pixel patches: 16 candidate boxes per image) with its processor.

    grid=True makes its output known: every box is its patch's grid cell and every label scores ~1.
    """
    import string

    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2Processor
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    # As in CLIP's vocabulary, '!' (the padding) is id 0: OWLv2 treats a query whose first id is 0 as padding.
    vocab = {"!": 0, "!</w>": 1}
    for c in string.ascii_lowercase + string.digits + ".,'?-":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(
        vocab=vocab, merges=[], model_max_length=16, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
        unk_token="<|endoftext|>", pad_token="!",
    )
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessorPil(size={"height": 64, "width": 64}), tokenizer=tokenizer
    )
    config = Owlv2Config(
        text_config={"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "pad_token_id": 0,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(config)
    if grid:
        with torch.no_grad():
            for layer in (model.box_head.dense2, model.class_head.logit_scale, model.class_head.logit_shift):
                layer.weight.zero_()
                layer.bias.zero_()
            model.class_head.logit_shift.bias.fill_(10.0)  # logits = similarity * 1 + 10: every score ~1
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
