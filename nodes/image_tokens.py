"""Tokenizer nodes: pictures to tokens and back, one pair per tokenizer family (LlamaGen's VQ codes, Infinity's
multi-scale bits)."""
from __future__ import annotations

from ..core.images import RESIZE_MODES, model_to_comfy
from ..core.infinity.codec import image_to_bits
from ..core.infinity.scales import parse_resolution
from ..core.pipelines import infinity, llamagen
from . import checks
from . import comfy_bridge as bridge
from .types import BIT_TOKENS, BSQ_VAE, CATEGORY, VQ_TOKENIZER, VQ_TOKENS

RESIZE_INPUT = (list(RESIZE_MODES), {"default": "center_crop", "tooltip": "center_crop: cover the size, cut the "
                                     "centre; stretch: ignore the aspect ratio; none: the picture as it is"})


def _resize(resize: str) -> str:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, got {resize!r}")
    return resize


class ImageToTokens:
    DESCRIPTION = ("Encodes pictures into LlamaGen VQ codes (a real photo as an edit source): a size x size square "
                   "fitted by resize.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer": (VQ_TOKENIZER,),
            "image": ("IMAGE",),
            "size": ("INT", {"default": 512, "min": 0, "max": 4096, "step": 16,
                     "tooltip": "square side in pixels: the AR model's resolution (0 = keep the picture's)"}),
            "resize": RESIZE_INPUT,
        }}

    RETURN_TYPES = (VQ_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def encode(self, tokenizer, image, size, resize):
        node = "AR Image to Tokens"
        checks.image(image, node)
        return (llamagen.encode(checks.vq_tokenizer(tokenizer, node), image, size or None, _resize(resize)),)


class ImageToBits:
    DESCRIPTION = ("Encodes pictures into Infinity's multi-scale bits (an AREdit source): size is the resolution "
                   "tier, and the picture's aspect ratio picks the nearest template.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer": (BSQ_VAE,),
            "image": ("IMAGE",),
            "size": ("INT", {"default": 1024, "min": 0, "max": 4096, "step": 16,
                     "tooltip": "resolution tier 256, 512, 768 or 1024 (48 for the embedded model)"}),
            "resize": RESIZE_INPUT,
        }}

    RETURN_TYPES = (BIT_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def encode(self, tokenizer, image, size, resize):
        node = "AR Image to Bits"
        checks.image(image, node)
        vae = checks.bsq_vae(tokenizer, node)
        return (image_to_bits(vae, image, parse_resolution(size, vae.resolutions), _resize(resize)),)


class TokensToImage:
    DESCRIPTION = "Decodes LlamaGen VQ codes into pictures."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokenizer": (VQ_TOKENIZER,), "tokens": (VQ_TOKENS,)}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def decode(self, tokenizer, tokens):
        node = "AR Tokens to Image"
        tokens = checks.llamagen_tokens(tokens, node)
        vq = checks.vq_tokenizer(tokenizer, node)
        return (model_to_comfy(llamagen.decode(vq, tokens)).to(bridge.output_device()),)  # decode checks the codes


class BitsToImage:
    DESCRIPTION = "Decodes Infinity's multi-scale bits (their sum over the scales) into pictures with the BSQ VAE."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokenizer": (BSQ_VAE,), "tokens": (BIT_TOKENS,)}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def decode(self, tokenizer, tokens):
        node = "AR Bits to Image"
        tokens = checks.bit_tokens(tokens, node)
        return (model_to_comfy(infinity.decode(checks.bsq_vae(tokenizer, node), tokens)).to(bridge.output_device()),)
