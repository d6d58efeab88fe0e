"""Tiny tokenizers built from Python objects (nothing downloaded), one per tokenizer family.

Each covers every byte of UTF-8 text, so any prompt tokenizes; the text encoders beside them are
random, so what matters is that the real tokenizer classes load them through ``from_pretrained``.
"""

from __future__ import annotations

import string
from typing import Any

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
            "<think>", "</think>", "[gMASK]", "<sop>"]
VOCAB_SIZE = 320  # every text encoder's embedding table: the byte-level vocabulary fits under it

# Z-Image calls apply_chat_template(..., enable_thinking=True); a minimal Qwen-style template.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_level() -> Any:
    """A byte-level BPE with no merges: one token per byte, plus the special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in pre_tokenizers.ByteLevel.alphabet():
        vocab.setdefault(char, len(vocab))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(SPECIALS)
    return tokenizer


# Qwen-Image drops the first 34 tokens of its prompt template (the system prompt, as Qwen's own vocabulary
# splits it). These words make the byte-level tokenizer split it the same way, so the drop leaves the prompt.
QWEN_IMAGE_SYSTEM_WORDS = [
    "system", "Describe", " the", " image", " by", " detailing", " color", " shape", " size", " texture",
    " quantity", " text", " spatial", " relationships", " of", " objects", " and", " background", "user",
]


def qwen(max_length: int = 512) -> Any:
    """Qwen2Tokenizer (Z-Image, Qwen-Image) with a chat template."""
    from tokenizers import AddedToken
    from transformers import Qwen2TokenizerFast

    words = _byte_level()
    words.add_tokens([AddedToken(word, normalized=False) for word in QWEN_IMAGE_SYSTEM_WORDS])
    tokenizer = Qwen2TokenizerFast(tokenizer_object=words, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   unk_token="<unk>", model_max_length=max_length)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def glm(max_length: int = 512) -> Any:
    """A plain fast tokenizer that starts every text with GLM's [gMASK]<sop> (CogView 4's tokenizer loads as one)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = _byte_level()
    prefix = [("[gMASK]", SPECIALS.index("[gMASK]")), ("<sop>", SPECIALS.index("<sop>"))]
    tokenizer.post_processor = processors.TemplateProcessing(single="[gMASK] <sop> $A", pair="[gMASK] <sop> $A $B",
                                                             special_tokens=prefix)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", bos_token="<s>", model_max_length=max_length)


def _pieces() -> list[tuple[str, float]]:
    """SentencePiece-style pieces: the specials, the word-start mark, and printable characters."""
    pieces = [(token, 0.0) for token in ("<pad>", "</s>", "<unk>", "<bos>", "<eos>")]
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces += [("▁", -1.0)] + [(c, -2.0) for c in chars] + [("▁" + c, -1.5) for c in chars]
    return pieces


def t5(max_length: int = 512) -> Any:
    """T5TokenizerFast over a Unigram vocabulary (PixArt, Flux's second encoder)."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast(vocab=_pieces(), extra_ids=0, model_max_length=max_length)


def gemma(max_length: int = 512) -> Any:
    """GemmaTokenizer (Sana, Lumina 2) over the same pieces."""
    from transformers import GemmaTokenizerFast

    vocab = {piece: i for i, (piece, _) in enumerate(_pieces())}
    return GemmaTokenizerFast(vocab=vocab, merges=[], model_max_length=max_length, pad_token="<pad>",
                              eos_token="<eos>", bos_token="<bos>", unk_token="<unk>")


def clip(max_length: int = 77) -> Any:
    """CLIPTokenizer over single characters (SD, SDXL, SD3, Flux's first encoder)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ".,'!?-":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length, bos_token="<|startoftext|>",
                         eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
