"""Conditioning nodes: prompts through a text encoder (either backbone's way), class labels."""
from __future__ import annotations

import torch

from ..core.condition import Condition
from ..core.infinity.model import InfinityTransformer
from ..core.text.encoders import validate_prompts
from . import checks
from .types import AR_CONDITIONING, AR_MODEL, AR_TEXT_ENCODER, CATEGORY


class TextEncode:
    DESCRIPTION = "Encodes a prompt (or one prompt per line) into caption features for an AR model."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": (AR_TEXT_ENCODER,),
            "prompt": ("STRING", {"multiline": True, "default": ""}),
            "one_prompt_per_line": ("BOOLEAN", {"default": False,
                                    "tooltip": "encode each non-empty line as its own prompt (a batch)"}),
        }, "optional": {
            "model": (AR_MODEL, {"tooltip": "connect an Infinity model so the prompt is encoded its way (raw "
                                 "text, up to 512 tokens); LlamaGen models need nothing here"}),
        }}

    RETURN_TYPES = (AR_CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    def encode(self, text_encoder, prompt, one_prompt_per_line, model=None):
        prompts = [l for l in prompt.splitlines() if l.strip()] if one_prompt_per_line else [prompt]
        prompts = validate_prompts(prompts or [""])
        encoder = checks.caption_encoder(text_encoder, "AR Text Encode")
        text_encoder.load()
        if model is not None and isinstance(model.module, InfinityTransformer):
            emb = encoder.encode_infinity(prompts)
            return (Condition(emb.features, emb.mask, emb.prompts, "infinity"),)
        emb = encoder.encode(prompts)
        return (Condition(emb.features, emb.mask, emb.prompts),)


class ClassLabel:
    DESCRIPTION = "Condition for class-to-image models (ImageNet class id, 0..999)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"class_id": ("INT", {"default": 207, "min": 0, "max": 999, "tooltip": "ImageNet class (0..999), e.g. 207 = golden retriever; the model checks its own range"})}}

    RETURN_TYPES = (AR_CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    def encode(self, class_id):
        return (Condition(torch.tensor([class_id], dtype=torch.long), None, [f"class {class_id}"]),)
