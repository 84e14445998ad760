"""Images <-> Infinity token bits through the BSQ VAE, with the resize rule and the model/VAE pairing.

Resize rule (as Infinity prepares images): the aspect ratio picks the nearest of the 15 templates, the
resolution tier picks how many of its scales are used; the image is scaled with Lanczos to cover the
template's pixel size and the centre is cut ("center_crop"), or scaled to it ("stretch"), or must already
have that size ("none"). Transformer tokens are always 16 px: a stride-8 VAE (the 8B model's) codes each
token as 2x2 VAE tokens (patchify).
"""
from __future__ import annotations

import torch

from ..images import comfy_to_model
from .generate import BitTokens, summed_codes, vae_bits_to_tokens, vae_schedule
from .scales import RESOLUTIONS, STRIDE, image_size_for, schedule_for_image
from .vae import BSQVAE


def vae_patchify(vae: BSQVAE) -> bool:
    if STRIDE % vae.stride or vae.stride < STRIDE // 2:
        raise ValueError(f"{file_name(vae, 'this VAE')} has stride {vae.stride}: it cannot code 16 px transformer tokens "
                         f"(Infinity's VAEs have stride 16, or 8 under a 2x2-patchifying transformer)")
    return vae.stride == STRIDE // 2


def file_name(module, fallback: str) -> str:
    return getattr(module, "file_name", None) or fallback


def _tokens_of(bits: int, patchify: bool) -> str:
    return f"{4 * bits}-bit tokens (2x2 of a {bits}-bit VAE at stride 8)" if patchify else f"{bits}-bit tokens"


def check_pair(model, vae: BSQVAE) -> None:
    """A transformer and a VAE that code tokens differently cannot work together: an error naming both files and
    what each expects (2B: the d32 VAE at stride 16; 8B: the 14-bit VAE at stride 8, patchified 2x2)."""
    patchify = vae_patchify(vae)
    if patchify != model.cfg.patchify or vae.cfg.bits * (4 if patchify else 1) != model.cfg.token_bits:
        raise ValueError(f"{file_name(vae, 'the VAE')} ({vae.cfg.bits} bits at stride {vae.stride}) makes "
                         f"{_tokens_of(vae.cfg.bits, patchify)}, but {file_name(model, 'the model')} reads "
                         f"{_tokens_of(model.cfg.vae_bits, model.cfg.patchify)}: they do not belong together (2B: "
                         f"infinity_vae_d32reg.pth; 8B: infinity_vae_d56_f8_14_patchify.pth)")


def image_to_bits(vae: BSQVAE, image: torch.Tensor, resolution: int, resize: str = "center_crop") -> BitTokens:
    """ComfyUI IMAGE [B, H, W, C] 0..1 -> BitTokens ("encoded") for the nearest template at `resolution`."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"Infinity resolution must be one of {RESOLUTIONS}, got {resolution}")
    if image.dim() == 3:
        image = image[None]
    schedule = schedule_for_image(image.shape[1], image.shape[2], resolution)
    H, W = image_size_for(schedule)
    if resize == "none" and tuple(image.shape[1:3]) != (H, W):
        raise ValueError(f"image is {image.shape[2]}x{image.shape[1]}; at {resolution} px its template needs "
                         f"{W}x{H} (choose 'center_crop' or 'stretch' to resize it)")
    x = comfy_to_model(image, (H, W), resize, STRIDE, resample="lanczos")
    patchify = vae_patchify(vae)
    with torch.inference_mode():
        vae_bits = vae.encode_bits(x, vae_schedule(schedule, patchify))
    bits = [vae_bits_to_tokens(b, patchify) for b in vae_bits]
    return BitTokens(bits, schedule, "encoded", patchify)


@torch.inference_mode()
def bits_to_images(vae: BSQVAE, tokens: BitTokens) -> torch.Tensor:
    """BitTokens -> images [B, 3, H, W] in 0..1 (RGB)."""
    if tokens.patchify != vae_patchify(vae) or tokens.bits[0].shape[-1] != vae.cfg.bits * (4 if tokens.patchify else 1):
        raise ValueError(f"these tokens have {tokens.bits[0].shape[-1]} bits per token, which "
                         f"{file_name(vae, 'this VAE')} ({vae.cfg.bits} bits at stride {vae.stride}: "
                         f"{_tokens_of(vae.cfg.bits, vae_patchify(vae))}) cannot decode: pick the VAE of the model")
    codes = summed_codes([b.to(vae.device) for b in tokens.bits], tokens.patchify)
    return (vae.decode_codes(codes) + 1) / 2
