"""Conditioning nodes: prompts through a text encoder (either backbone's way), class labels."""
from __future__ import annotations

import torch

from ..core.condition import Condition
from ..core.pipelines import infinity, llamagen
from ..core.sweeps import MAX_SWEEP_ROWS
from ..core.text.encoders import validate_prompts
from . import checks
from .types import AR_TEXT_ENCODER, CATEGORY, INFINITY_CONDITIONING, LLAMAGEN_CONDITIONING


def _prompts(prompt: str, one_prompt_per_line: bool) -> list[str]:
    prompts = [l for l in prompt.splitlines() if l.strip()] if one_prompt_per_line else [prompt]
    if len(prompts) > MAX_SWEEP_ROWS:  # before anything is encoded: no node runs more rows as one batch
        raise ValueError(f"{len(prompts)} prompts (one per line); a batch runs at most {MAX_SWEEP_ROWS}")
    return validate_prompts(prompts or [""])


_PROMPT_INPUTS = {
    "prompt": ("STRING", {"multiline": True, "default": ""}),
    "one_prompt_per_line": ("BOOLEAN", {"default": False, "tooltip": "encode each non-empty line as its own prompt "
                                        "(a batch)"}),
}


class _Encode:
    """A prompt encoder for one family: `condition` is that family's pipeline's (its layout, length, padding)."""
    NODE = ""
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text_encoder": (AR_TEXT_ENCODER,), **_PROMPT_INPUTS}}

    def encode(self, text_encoder, prompt, one_prompt_per_line):
        prompts = _prompts(prompt, one_prompt_per_line)
        encoder = checks.caption_encoder(text_encoder, self.NODE)
        text_encoder.load()
        return (type(self).condition(encoder, prompts),)


class TextEncode(_Encode):
    DESCRIPTION = ("Encodes a prompt (or one prompt per line) into caption features for LlamaGen (the official "
                   "caption cleaning, 120 tokens, left padding).")
    NODE = "AR Text Encode"
    RETURN_TYPES = (LLAMAGEN_CONDITIONING,)
    condition = staticmethod(llamagen.text_condition)


class InfinityTextEncode(_Encode):
    DESCRIPTION = ("Encodes a prompt (or one prompt per line) the Infinity way (raw text, up to 512 tokens, valid "
                   "tokens only), for Infinity generation and AREdit.")
    NODE = "AR Infinity Text Encode"
    RETURN_TYPES = (INFINITY_CONDITIONING,)
    condition = staticmethod(infinity.text_condition)


class ClassLabel:
    DESCRIPTION = "Condition for class-to-image models (ImageNet class id, 0..999)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"class_id": ("INT", {"default": 207, "min": 0, "max": 999, "tooltip": "ImageNet class (0..999), e.g. 207 = golden retriever; the model checks its own range"})}}

    RETURN_TYPES = (LLAMAGEN_CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    def encode(self, class_id):
        return (Condition(torch.tensor([class_id], dtype=torch.long), None, [f"class {class_id}"]),)
