"""LlamaGen VQ tokenizer (VQ-16 / VQ-8), checkpoint-compatible with the official files.

Images are [B, 3, H, W] in [-1, 1]. Encoding gives token ids [B, h, w] (h = H / stride); decoding
maps ids back through the L2-normalised codebook. Decoder output is not clamped (as upstream); convert
with `to_unit_range`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO


@dataclass(frozen=True)
class VQConfig(ConfigIO):
    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    norm_groups: int = 32  # GroupNorm groups (32 upstream; smaller models may use fewer)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def presets(cls) -> Mapping:
        return VQ_PRESETS


VQ_PRESETS: dict[str, dict] = {
    "VQ-16": dict(ch_mult=(1, 1, 2, 2, 4)),
    "VQ-8": dict(ch_mult=(1, 2, 2, 4)),
    # For tests: same structure, tiny widths.
}


def config_from_state_dict(state: Mapping[str, torch.Tensor]) -> VQConfig:
    if "quantize.embedding.weight" not in state or "encoder.conv_in.weight" not in state:
        raise ValueError("not a LlamaGen VQ checkpoint: 'quantize.embedding.weight' / 'encoder.conv_in.weight' missing")
    codebook_size, embed_dim = state["quantize.embedding.weight"].shape
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.conv_blocks\.(\d+)\.", k))})
    ch_mult = tuple(state[f"encoder.conv_blocks.{i}.res.0.conv2.weight"].shape[0] // ch for i in levels)
    num_res = len({int(m.group(1)) for k in state if (m := re.match(r"encoder\.conv_blocks\.0\.res\.(\d+)\.", k))})
    z_channels = state["encoder.conv_out.weight"].shape[0]
    return VQConfig(codebook_size=codebook_size, codebook_embed_dim=embed_dim, ch=ch, ch_mult=ch_mult,
                    num_res_blocks=num_res, z_channels=z_channels)


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = _norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 conv projections."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = _norm(c, groups)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (t.reshape(B, 1, C, H * W).transpose(-1, -2) for t in (self.q(h), self.k(h), self.v(h)))
        out = F.scaled_dot_product_attention(q, k, v)  # [B, 1, HW, C]
        return x + self.proj_out(out.transpose(-1, -2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad, then stride-2 3x3


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x.float(), scale_factor=2.0, mode="nearest").to(x.dtype))


class Encoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        g, n_lv = cfg.norm_groups, len(cfg.ch_mult)
        self.conv_in = nn.Conv2d(3, cfg.ch, 3, 1, 1)
        self.conv_blocks = nn.ModuleList()
        c_in = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            block = nn.Module()
            block.res, block.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                block.res.append(ResnetBlock(c_in, cfg.ch * mult, g))
                c_in = cfg.ch * mult
                if level == n_lv - 1:
                    block.attn.append(AttnBlock(c_in, g))
            if level != n_lv - 1:
                block.downsample = Downsample(c_in)
            self.conv_blocks.append(block)
        self.mid = nn.ModuleList([ResnetBlock(c_in, c_in, g), AttnBlock(c_in, g), ResnetBlock(c_in, c_in, g)])
        self.norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv2d(c_in, cfg.z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h)
                if len(block.attn):
                    h = block.attn[i](h)
            if hasattr(block, "downsample"):
                h = block.downsample(h)
        for m in self.mid:
            h = m(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        g, n_lv = cfg.norm_groups, len(cfg.ch_mult)
        c_in = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c_in, 3, 1, 1)
        self.mid = nn.ModuleList([ResnetBlock(c_in, c_in, g), AttnBlock(c_in, g), ResnetBlock(c_in, c_in, g)])
        self.conv_blocks = nn.ModuleList()  # index 0 = coarsest level
        for level in reversed(range(n_lv)):
            block = nn.Module()
            block.res, block.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                block.res.append(ResnetBlock(c_in, cfg.ch * cfg.ch_mult[level], g))
                c_in = cfg.ch * cfg.ch_mult[level]
                if level == n_lv - 1:
                    block.attn.append(AttnBlock(c_in, g))
            if level != 0:
                block.upsample = Upsample(c_in)
            self.conv_blocks.append(block)
        self.norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv2d(c_in, 3, 3, 1, 1)

    def forward(self, z):
        h = self.conv_in(z)
        for m in self.mid:
            h = m(h)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h)
                if len(block.attn):
                    h = block.attn[i](h)
            if hasattr(block, "upsample"):
                h = block.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.l2_norm = cfg.codebook_l2_norm
        self.embedding = nn.Embedding(cfg.codebook_size, cfg.codebook_embed_dim)
        # Training-time usage statistics; present in official files, unused for inference.
        self.register_buffer("codebook_used", torch.zeros(65536))

    def codebook(self) -> torch.Tensor:
        """[V, e] vectors tokens decode from (L2-normalised when the model was trained that way)."""
        w = self.embedding.weight
        return F.normalize(w, p=2, dim=-1) if self.l2_norm else w

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, e, h, w] -> nearest codebook ids [B, h, w]."""
        B, e, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, e).float()
        cb = self.codebook().float()
        if self.l2_norm:
            flat = F.normalize(flat, p=2, dim=-1)
        d = flat.pow(2).sum(1, keepdim=True) + cb.pow(2).sum(1)[None] - 2 * flat @ cb.T
        return d.argmin(1).view(B, h, w)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, h, w] -> codes [B, e, h, w]."""
        return self.codebook()[ids].permute(0, 3, 1, 2).contiguous()


class LlamaGenVQ(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_embed_dim, cfg.z_channels, 1)

    @property
    def downsample(self) -> int:
        return self.cfg.downsample

    @property
    def dtype(self) -> torch.dtype:
        return self.quant_conv.weight.dtype

    def check_image_size(self, height: int, width: int) -> None:
        s = self.downsample
        if height % s or width % s or height < s or width < s:
            raise ValueError(f"image size {width}x{height} is not a multiple of the tokenizer stride {s}; "
                             f"resize or crop it first (e.g. to {max(s, round(width / s) * s)}x{max(s, round(height / s) * s)})")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] in [-1, 1] -> token ids [B, H/s, W/s]."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {list(images.shape)}")
        self.check_image_size(images.shape[2], images.shape[3])
        return self.quantize.quantize(self.quant_conv(self.encoder(images.to(self.dtype))))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, e, h, w] -> images [B, 3, h*s, w*s], unclamped, float32."""
        return self.decoder(self.post_quant_conv(codes.to(self.dtype))).float()

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """token ids [B, h, w] -> images [B, 3, h*s, w*s], unclamped, float32."""
        if ids.dim() != 3:
            raise ValueError(f"expected token ids [B, h, w], got {list(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.codebook_size):
            raise ValueError(f"token ids out of range for a codebook of {self.cfg.codebook_size} "
                             f"(got {int(ids.min())}..{int(ids.max())}): tokens and tokenizer do not match")
        return self.decode_codes(self.quantize.lookup(ids))


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Decoder output in [-1, 1] (unclamped) -> [0, 1], quantised like upstream's uint8 conversion."""
    return (images * 127.5 + 128.0).clamp(0, 255).floor() / 255.0
