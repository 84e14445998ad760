"""Tokenizer nodes: images to tokens (VQ codes or Infinity's multi-scale bits) and back."""
from __future__ import annotations

from ..core.images import RESIZE_MODES, model_to_comfy
from ..core.infinity.codec import image_to_bits
from ..core.infinity.generate import BitTokens
from ..core.infinity.scales import parse_resolution
from ..core.infinity.vae import BSQVAE
from ..core.pipelines import infinity, llamagen
from . import checks
from . import comfy_bridge as bridge
from .types import AR_TOKENIZER, AR_TOKENS, CATEGORY


class ImageToTokens:
    DESCRIPTION = ("Encodes images into tokens (a real photo as an edit source). LlamaGen VQ: a size x size square; "
                   "Infinity VAE: size is the resolution tier (256/512/1024) and the aspect ratio picks the nearest "
                   "template. Resize: center_crop (cover, cut the centre), stretch, or none (sizes must fit).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer": (AR_TOKENIZER,),
            "image": ("IMAGE",),
            "size": ("INT", {"default": 512, "min": 0, "max": 4096, "step": 16,
                     "tooltip": "LlamaGen: square side in pixels (the AR model's resolution; 0 = keep). "
                                "Infinity: resolution tier 256, 512, 768 or 1024 (48 for the embedded model)"}),
            "resize": (list(RESIZE_MODES), {"default": "center_crop"}),
        }}

    RETURN_TYPES = (AR_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def encode(self, tokenizer, image, size, resize):
        node = "AR Image to Tokens"
        checks.image(image, node)
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, got {resize!r}")
        if isinstance(tokenizer.module, BSQVAE):
            vae = tokenizer.module
            tier = parse_resolution(size, vae.resolutions)
            return (image_to_bits(tokenizer.load(), image, tier, resize),)
        vq = checks.vq_tokenizer(tokenizer, node)
        return (llamagen.encode(vq, image, size or None, resize),)


class TokensToImage:
    DESCRIPTION = "Decodes VQ tokens into images."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokenizer": (AR_TOKENIZER,), "tokens": (AR_TOKENS,)}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def decode(self, tokenizer, tokens):
        is_vae, is_bits = isinstance(tokenizer.module, BSQVAE), isinstance(tokens, BitTokens)
        if is_vae != is_bits:
            raise ValueError("the tokens come from " + ("Infinity" if is_bits else "LlamaGen") + " but the tokenizer is "
                             + ("Infinity's BSQ VAE" if is_vae else "a LlamaGen VQ") + ": load the matching tokenizer")
        if is_vae:
            return (model_to_comfy(infinity.decode(tokenizer.load(), tokens)).to(bridge.output_device()),)
        vq = tokenizer.load()
        llamagen.check_codes(tokens.tokens, vq, f"'{tokenizer.name}'")
        return (model_to_comfy(llamagen.decode(vq, tokens)).to(bridge.output_device()),)
