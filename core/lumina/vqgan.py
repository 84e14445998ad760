"""Meta's Chameleon VQGAN (the image tokenizer Lumina-mGPT uses): a taming-transformers VQGAN, x16, 8,192 codes.

Loads `vqgan.ckpt` (a pickle whose "state_dict" holds the weights; read with weights_only) with its `vqgan.yaml`,
strictly: the training-only loss networks (`loss.*`) are dropped by name, anything else missing or unexpected is an
error. Checked against chameleon_vae_ori/vqgan.py in Alpha-VLLM/Lumina-mGPT (= Meta's inference/vqgan.py).
Shapes: B batch, C channels, h x w latent grid, e = 256 code width.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from ..files.checkpoints import load_strict


@dataclass(frozen=True)
class VQGANConfig(ConfigIO):
    n_embed: int = 8192
    embed_dim: int = 256
    z_channels: int = 256
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()
    resolution: int = 512  # only decides where attn_resolutions apply
    in_channels: int = 3
    out_ch: int = 3
    double_z: bool = False

    def __post_init__(self):
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(self.attn_resolutions))
        if not 1 <= len(self.ch_mult) <= 8 or not 0 < self.ch <= 1024 or not 0 < self.n_embed <= 2 ** 20:
            raise ValueError(f"vqgan.yaml describes no Chameleon VQGAN (ch {self.ch}, ch_mult {self.ch_mult}, "
                             f"n_embed {self.n_embed})")

    @property
    def stride(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def presets(cls) -> Mapping:
        return {"chameleon": {}}

    @classmethod
    def from_yaml_params(cls, params: Mapping) -> "VQGANConfig":
        """vqgan.yaml's model.params (lossconfig ignored, as the official tokenizer does)."""
        dd = params.get("ddconfig")
        if not isinstance(dd, Mapping):
            raise ValueError("vqgan.yaml has no model.params.ddconfig")
        return cls(n_embed=int(params.get("n_embed", 8192)), embed_dim=int(params.get("embed_dim", 256)),
                   z_channels=int(dd["z_channels"]), ch=int(dd["ch"]), ch_mult=tuple(dd["ch_mult"]),
                   num_res_blocks=int(dd["num_res_blocks"]), attn_resolutions=tuple(dd.get("attn_resolutions") or ()),
                   resolution=int(dd.get("resolution", 512)), in_channels=int(dd.get("in_channels", 3)),
                   out_ch=int(dd.get("out_ch", 3)), double_z=bool(dd.get("double_z", False)))

    def to_yaml_params(self) -> dict:
        return {"embed_dim": self.embed_dim, "n_embed": self.n_embed,
                "ddconfig": {"double_z": self.double_z, "z_channels": self.z_channels, "resolution": self.resolution,
                             "in_channels": self.in_channels, "out_ch": self.out_ch, "ch": self.ch,
                             "ch_mult": list(self.ch_mult), "num_res_blocks": self.num_res_blocks,
                             "attn_resolutions": list(self.attn_resolutions), "dropout": 0.0}}


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, c, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = _norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (m(h).reshape(B, C, H * W).transpose(1, 2) for m in (self.q, self.k, self.v))  # [B, HW, C]
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(y.transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # taming's asymmetric padding


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    pass


class _Mid(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        res, cin = cfg.resolution, cfg.ch
        self.down = nn.ModuleList()
        for i, m in enumerate(cfg.ch_mult):
            level, cout = _Level(), cfg.ch * m
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResnetBlock(cin, cout))
                cin = cout
                if res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(cin))
            if i != len(cfg.ch_mult) - 1:
                level.downsample = Downsample(cin)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(cin)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        n = len(cfg.ch_mult)
        cin = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (n - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _Mid(cin)
        levels = []
        for i in reversed(range(n)):
            level, cout = _Level(), cfg.ch * cfg.ch_mult[i]
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                level.block.append(ResnetBlock(cin, cout))
                cin = cout
                if res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(cin))
            if i != 0:
                level.upsample = Upsample(cin)
                res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)  # up[0] is the full-resolution level, run last
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.out_ch, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Quantizer(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.n_embed, cfg.embed_dim)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, e, h, w] -> nearest codes [B, h, w] (squared L2, as the original: z^2 + e^2 - 2 z.e)."""
        B, e, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, e)
        cb = self.embedding.weight
        d = flat.pow(2).sum(1, keepdim=True) + cb.pow(2).sum(1) - 2 * flat @ cb.t()
        return d.argmin(1).view(B, h, w)


class ChameleonVQGAN(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = Quantizer(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    @property
    def downsample(self) -> int:
        return self.cfg.stride

    @property
    def device(self) -> torch.device:
        return self.quant_conv.weight.device

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in -1..1 -> codes [B, H/16, W/16]."""
        w = self.quant_conv.weight
        return self.quantize.codes(self.quant_conv(self.encoder(pixels.to(w))))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, h, w] -> pixels [B, 3, 16h, 16w] in -1..1 (clamped), fp32 out."""
        if int(codes.min()) < 0 or int(codes.max()) >= self.cfg.n_embed:
            raise ValueError(f"codes outside 0 .. {self.cfg.n_embed - 1}: these tokens are not this VQGAN's")
        z = self.quantize.embedding(codes.to(self.device)).permute(0, 3, 1, 2)
        return self.decoder(self.post_quant_conv(z)).float().clamp(-1, 1)


# ----------------------------------------------------------------------------------------------------
# Files

TRAINING_ONLY = ("loss.",)  # the discriminator and LPIPS the checkpoint carries from training


def read_yaml(path: str) -> VQGANConfig:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        params = doc["model"]["params"]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        raise ValueError(f"{path} is not a Chameleon vqgan.yaml (model.params): {e}") from None
    return VQGANConfig.from_yaml_params(params)


def load_state(path: str) -> dict[str, torch.Tensor]:
    """vqgan.ckpt -> its state dict (weights only: a pickle that wants to run code is refused)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - an UnpicklingError names the global it refused
        raise ValueError(f"{path} is not a loadable VQGAN checkpoint: {str(e).splitlines()[0]}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no VQGAN weights (a dict with a 'state_dict' of tensors)")
    return state


def build(cfg: VQGANConfig, state: Mapping[str, torch.Tensor], where: str, device="cpu",
          dtype: torch.dtype = torch.float32) -> ChameleonVQGAN:
    state = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}
    with torch.device("meta"):
        model = ChameleonVQGAN(cfg)
    load_strict(model, {k: v.to(device=device, dtype=dtype) for k, v in state.items()}, where)
    return model.eval().requires_grad_(False)


def load_vqgan(folder_or_ckpt: str, device="cpu", dtype: torch.dtype = torch.float32) -> ChameleonVQGAN:
    """A folder with vqgan.ckpt + vqgan.yaml (Meta's `tokenizer/` folder), or the .ckpt with its .yaml beside it."""
    if os.path.isdir(folder_or_ckpt):
        ckpt, yml = os.path.join(folder_or_ckpt, "vqgan.ckpt"), os.path.join(folder_or_ckpt, "vqgan.yaml")
    else:
        ckpt, yml = folder_or_ckpt, os.path.splitext(folder_or_ckpt)[0] + ".yaml"
    for p in (ckpt, yml):
        if not os.path.isfile(p):
            raise FileNotFoundError(
                f"{p} is missing. The Chameleon VQGAN (vqgan.ckpt + vqgan.yaml) is not on Hugging Face: it comes "
                f"with Meta's Chameleon weights (the request form at ai.meta.com/resources/models-and-libraries/"
                f"chameleon-downloads, under the Chameleon Research License); put both files, from its "
                f"tokenizer/ folder, in models/vq/chameleon/ (any folder name under models/vq)")
    return build(read_yaml(yml), load_state(ckpt), ckpt, device, dtype)

