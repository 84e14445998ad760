"""Infinity's BSQ VAE (d32 reg, and the 8B d56 stride-8 variant), checkpoint-compatible with the official files.

A Flux-style conv autoencoder without attention: GroupNorm(32, eps 1e-6) + swish ResNet blocks, stride-2
convs with right/bottom zero padding, nearest upsampling + conv. The encoder's output z [B, d, h, w] is
coded scale by scale with binary spherical quantisation (`bsq.quantize_multiscale`); the decoder takes the
sum of the upsampled codes and its output is clamped to [-1, 1]. Images are [B, 3, H, W] in [-1, 1], RGB.

Parameter names follow the official training module, whose convs and norms are wrapped
(`...conv1.conv.weight`, `...norm1.norm.weight`); files with the plain names (`...conv1.weight`) load too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from .bsq import bits_to_codes, quantize_multiscale, up
from .scales import OFFICIAL_RESOLUTIONS

# Buffers of the quantiser that the file may carry and this module derives (the bit-weight vector).
DERIVED_KEYS = ("quantizer.lfq.mask",)


@dataclass(frozen=True)
class BSQVAEConfig(ConfigIO):
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4, 4)
    num_res_blocks: int = 2  # encoder; the decoder has one more per level
    bits: int = 32  # z channels = codebook dim
    in_channels: int = 3
    # GroupNorm groups: None = the official 32 (24 where 32 does not divide the width). Small VAEs of ours set
    # fewer: with 24 groups over 24 channels the norm is per channel and erases each channel's level.
    norm_groups: int | None = None

    @property
    def stride(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def presets(cls) -> Mapping:
        return VAE_PRESETS


VAE_PRESETS = {
    "infinity-vae-d32": BSQVAEConfig(),
    # the 8B models' (infinity_vae_d56_f8_14_patchify.pth): 14 bits at stride 8; the transformer patchifies 2x2
    "infinity-vae-d56-f8": BSQVAEConfig(ch_mult=(1, 2, 4, 4), bits=14),
}


def config_from_state_dict(state: Mapping[str, torch.Tensor]) -> BSQVAEConfig:
    """Read the layout off the weights (wrapped or plain conv names)."""
    def conv(name: str) -> torch.Tensor:
        return state[f"{name}.conv.weight"] if f"{name}.conv.weight" in state else state[f"{name}.weight"]

    try:
        ch = conv("encoder.conv_in").shape[0]
        bits = conv("encoder.conv_out").shape[0]
        levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
        ch_mult = tuple(conv(f"encoder.down.{i}.block.0.conv1").shape[0] // ch for i in levels)
        res = len({m.group(1) for k in state if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k))})
    except KeyError as e:
        raise ValueError(f"not an Infinity BSQ VAE state dict (missing {e})") from e
    return BSQVAEConfig(ch=ch, ch_mult=ch_mult, num_res_blocks=res, bits=bits)


# The official module registers its quantiser twice (`self.quantize = self.quantizer`), so a state_dict()
# saved from it repeats every quantiser tensor under this prefix.
ALIAS_PREFIX, QUANTIZER_PREFIX = "quantize.", "quantizer."


def _drop_quantizer_alias(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop `quantize.*` keys that repeat their `quantizer.*` twin exactly; anything else under the alias is
    an error naming the key (it would be weights this module has no place for)."""
    out = {}
    for k, v in state.items():
        if not k.startswith(ALIAS_PREFIX):
            out[k] = v
            continue
        twin = QUANTIZER_PREFIX + k[len(ALIAS_PREFIX):]
        if twin not in state:
            raise ValueError(f"'{k}' has no '{twin}' twin: the official VAE's 'quantize' alias must repeat its "
                             f"quantizer, this file holds something else under it")
        other = state[twin]
        if other.shape != v.shape or not torch.equal(other, v.to(other.dtype)):
            raise ValueError(f"'{k}' differs from '{twin}' ({tuple(v.shape)} vs {tuple(other.shape)}): the "
                             f"'quantize' alias must repeat the quantizer exactly")
    return out


def adapt_state_dict(state: Mapping[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Drop the quantiser alias and derived buffers; bring plain conv/norm names to the wrapped ones this
    module uses."""
    out = {}
    for k, v in _drop_quantizer_alias(state).items():
        if k in DERIVED_KEYS:
            continue
        if k not in expected:
            for wrapped in (re.sub(r"\.(weight|bias)$", r".conv.\1", k), re.sub(r"\.(weight|bias)$", r".norm.\1", k)):
                if wrapped in expected:
                    k = wrapped
                    break
        out[k] = v
    return out


class _Conv(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding)

    def forward(self, x):
        return self.conv(x)


class _Norm(nn.Module):
    def __init__(self, c: int, groups: int | None = None):
        super().__init__()
        if groups is None:
            groups = 32 if c % 32 == 0 else 24 if c % 24 == 0 else None
        if groups is None or c % groups:
            raise ValueError(f"GroupNorm with {groups or '32 or 24'} groups does not divide {c} channels")
        self.norm = nn.GroupNorm(groups, c, eps=1e-6, affine=True)

    def forward(self, x):
        return self.norm(x)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int | None = None):
        super().__init__()
        self.norm1, self.conv1 = _Norm(c_in, groups), _Conv(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = _Norm(c_out, groups), _Conv(c_out, c_out, 3, padding=1)
        if c_in != c_out:
            self.nin_shortcut = _Conv(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = _Conv(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric: right and bottom only


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = _Conv(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Mid(nn.Module):
    def __init__(self, c: int, groups: int | None = None):
        super().__init__()
        self.block_1, self.block_2 = ResnetBlock(c, c, groups), ResnetBlock(c, c, groups)

    def forward(self, x):
        return self.block_2(self.block_1(x))


class _Level(nn.Module):
    def __init__(self, blocks: list[nn.Module], resample: nn.Module | None, name: str):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        if resample is not None:
            setattr(self, name, resample)


class Encoder(nn.Module):
    def __init__(self, cfg: BSQVAEConfig):
        super().__init__()
        ch, n = cfg.ch, len(cfg.ch_mult)
        self.conv_in = _Conv(cfg.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        c_in = ch
        for i, m in enumerate(cfg.ch_mult):
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(c_in, ch * m, cfg.norm_groups))
                c_in = ch * m
            self.down.append(_Level(blocks, Downsample(c_in) if i < n - 1 else None, "downsample"))
        self.mid = _Mid(c_in, cfg.norm_groups)
        self.norm_out = _Norm(c_in, cfg.norm_groups)
        self.conv_out = _Conv(c_in, cfg.bits, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: BSQVAEConfig):
        super().__init__()
        ch, n = cfg.ch, len(cfg.ch_mult)
        c_in = ch * cfg.ch_mult[-1]
        self.conv_in = _Conv(cfg.bits, c_in, 3, padding=1)
        self.mid = _Mid(c_in, cfg.norm_groups)
        levels: list[nn.Module] = [None] * n  # type: ignore[list-item]
        for i in reversed(range(n)):
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResnetBlock(c_in, ch * cfg.ch_mult[i], cfg.norm_groups))
                c_in = ch * cfg.ch_mult[i]
            levels[i] = _Level(blocks, Upsample(c_in) if i > 0 else None, "upsample")
        self.up = nn.ModuleList(levels)
        self.norm_out = _Norm(c_in, cfg.norm_groups)
        self.conv_out = _Conv(c_in, cfg.in_channels, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class BSQVAE(nn.Module):
    def __init__(self, cfg: BSQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.resolutions = OFFICIAL_RESOLUTIONS  # tiers it codes images at; a file of ours may store others

    @property
    def stride(self) -> int:
        return self.cfg.stride

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_in.conv.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.encoder.conv_in.conv.weight.device

    def check_image(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected images [B, {self.cfg.in_channels}, H, W], got {list(images.shape)}")
        H, W = images.shape[-2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"image is {W}x{H}; the VAE needs sides that are multiples of {self.stride}")

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> continuous latent z [B, d, H/s, W/s] fp32."""
        self.check_image(images)
        return self.encoder(images.to(device=self.device, dtype=self.dtype)).float()

    def encode_bits(self, images: torch.Tensor, schedule: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        """Images -> multi-scale bit labels, one [B, h_k, w_k, d] bool per scale of the VAE-grid schedule."""
        z = self.encode_latent(images)
        return quantize_multiscale(z, list(schedule))[0]

    def decode_codes(self, summed_codes: torch.Tensor) -> torch.Tensor:
        """Summed codes [B, d, h, w] -> images [B, 3, H, W] clamped to [-1, 1]."""
        return self.decoder(summed_codes.to(device=self.device, dtype=self.dtype)).float().clamp(-1, 1)

    def decode_bits(self, bits: Sequence[torch.Tensor]) -> torch.Tensor:
        final = tuple(bits[-1].shape[1:3])
        summed = sum(up(bits_to_codes(b, self.cfg.bits), final) for b in bits)
        return self.decode_codes(summed)
