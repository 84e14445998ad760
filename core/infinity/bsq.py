"""Multi-scale binary spherical quantisation (BSQ), as Infinity's VAE and transformer use it.

A latent z [B, d, H, W] is coded scale by scale: at scale k the running residual is area-downsampled to
(h_k, w_k) and quantised to q_k = sign(r) / sqrt(d) per channel (bit = r > 0); q_k is upsampled
(bilinear = Infinity's trilinear with one frame) to (H, W) and subtracted from the residual. The decoder
receives the sum of the upsampled codes. The transformer's input for scale k + 1 is that running sum
downsampled bilinearly (trilinear with one frame, as the official trainer and sampler do) to (h_{k+1}, w_{k+1}).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bits_to_codes(bits: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """bits [B, h, w, d] (bool or 0/1) -> codes [B, d, h, w] = +-1/sqrt(d)."""
    d = dim or bits.shape[-1]
    return ((bits.float() * 2 - 1) / d ** 0.5).permute(0, 3, 1, 2).contiguous()


def up(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def down(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=hw, mode="area")


def quantize_multiscale(z: torch.Tensor, schedule: list[tuple[int, int]]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """z [B, d, H, W] (float) -> (bits per scale [B, h_k, w_k, d] bool, summed codes [B, d, H, W])."""
    if tuple(z.shape[-2:]) != tuple(schedule[-1]):
        raise ValueError(f"latent is {tuple(z.shape[-2:])} but the schedule ends at {tuple(schedule[-1])}")
    z = z.float()
    H, W = z.shape[-2:]
    residual, summed, bits = z, torch.zeros_like(z), []
    for hw in schedule:
        r = down(residual, hw)
        b = r > 0
        q = up(bits_to_codes(b.permute(0, 2, 3, 1), z.shape[1]), (H, W))
        residual = residual - q
        summed = summed + q
        bits.append(b.permute(0, 2, 3, 1))
    return bits, summed


def codes_from_bits(bits: list[torch.Tensor], final_hw: tuple[int, int]) -> torch.Tensor:
    """The decoder's input: sum over scales of the upsampled codes. -> [B, d, H, W]."""
    return sum(up(bits_to_codes(b), final_hw) for b in bits)
