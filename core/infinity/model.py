"""Infinity: a next-scale, bitwise AR text-to-image transformer, checkpoint-compatible with the official files.

One file, one architecture. Shapes: B batch, Lt text tokens (variable per prompt, right-padded + mask),
Ct T5 width (flan-t5-xl: 2048), C model width, H heads, Hd head width, n tokens of one scale, S tokens of
all scales (static cache length), d bits per token (2B: 32; 8B: 56 = 4 x 14, the 2x2-patchified tokens of the
14-bit VAE at stride 8).

What real weights depend on (shared/docs/infinity_aredit.md, checked against FoundationVision/Infinity):
- text: RMS-normed T5 features; an attentive pool (one learned query per head) gives the condition vector,
  which is the start token (plus `pos_start`) and, through `shared_ada_lin`, the adaLN input of every
  block; an MLP projects the features to the cross-attention keys/values. The null text for CFG is the
  learned `cfg_uncond`, its first Lt rows with the prompt's own mask.
- blocks: LN without affine + shared adaLN (six vectors = shared_ada_lin(cond) + ada_gss), cosine
  self-attention (q, k L2-normalised, q times exp(min(scale_mul, ln 100)), softmax scale 1) with 2D RoPE
  in every layer, cross-attention to the text (plain softmax), GELU-tanh FFN.
- 2D RoPE "normalised by hw = 2": token (i, j) of an (h, w) scale sits at (round(i H / h), round(j W / w)),
  (H, W) = the last grid of the 1024 px template; rotations on adjacent pairs, first half by row.
- the level embedding (row = scale index) is added once, before the first block.
- head: LN (1 + scale) + shift from the condition, Linear(C, 2d): a 2-way softmax per bit.
The residual stream, adaLN and logits run in fp32; the linear layers run in the weights' dtype.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from .scales import OFFICIAL_RESOLUTIONS, reference_grid

# Buffers that official files may carry but that the model derives itself (the original pops them too).
DERIVED_KEYS = ("lvl_1L", "attn_bias_for_masking", "Infinity_visible_kvlen", "Infinity_invisible_qlen")
# The official 8B layout: a 14-bit BSQ VAE at stride 8 under a transformer that patchifies 2x2, so its tokens carry
# 4 x 14 = 56 bits (vae_type 14 with apply_spatial_patchify in the official set-ups). The 2B reads 32-bit tokens of
# the d32 VAE at stride 16, unpatchified. Official files store neither, so a head of 56 bits is read as the 8B
# layout; any other width as unpatchified, unless our metadata says otherwise (and the VAE it is paired with must
# agree: codec.check_pair).
PATCHIFIED_HEAD_BITS = {56: 14}


@dataclass(frozen=True)
class InfinityConfig(ConfigIO):
    depth: int = 32
    embed_dim: int = 2048
    num_heads: int = 16
    mlp_ratio: float = 4.0
    text_channels: int = 2048  # Ct (flan-t5-xl)
    text_maxlen: int = 512  # rows of cfg_uncond
    block_chunks: int = 8  # parameter names block_chunks.{c}.module.{j} (1 = blocks.{i})
    vae_bits: int = 32  # VAE codebook dim
    patchify: bool = False  # 8B: 2x2 VAE tokens form one transformer token (d = 4 vae_bits)
    pool_heads: int = 16  # heads of the text attentive pool (Ct // 128 for C <= 4096, else Ct // 64)
    num_levels: int = 15  # rows of lvl_embed
    norm_eps: float = 1e-6
    rope_base: float = 10000.0
    rope_grid: int = 128  # RoPE table side (2048 px / 16)

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 4:
            raise ValueError(f"2D RoPE needs head_dim divisible by 4, got {self.head_dim}")
        if self.depth % self.block_chunks:
            raise ValueError(f"depth {self.depth} is not divisible by block_chunks {self.block_chunks}")
        if self.embed_dim % self.pool_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by pool_heads {self.pool_heads}")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def token_bits(self) -> int:
        return self.vae_bits * (4 if self.patchify else 1)

    @property
    def ffn_hidden(self) -> int:
        return round(self.embed_dim * self.mlp_ratio / 256) * 256

    @classmethod
    def presets(cls) -> Mapping:
        return INFINITY_PRESETS


INFINITY_PRESETS = {
    "infinity-2b": InfinityConfig(),
    "infinity-8b": InfinityConfig(depth=40, embed_dim=3584, num_heads=28, vae_bits=14, patchify=True, pool_heads=16),
}


_BLOCK_RE = re.compile(r"^(?:block_chunks\.(\d+)\.module\.(\d+)|blocks\.(\d+))\.ada_gss$")


def config_from_state_dict(state: Mapping[str, torch.Tensor]) -> InfinityConfig:
    """Read the layout off an official state dict (the files carry no config)."""
    try:
        C = state["pos_start"].shape[-1]
        maxlen, ct = state["cfg_uncond"].shape
        chunks, depth = set(), 0
        for k in state:
            if (m := _BLOCK_RE.match(k)):
                depth += 1
                chunks.add(m.group(1))
        if depth == 0:
            raise KeyError("block parameters (block_chunks.* or blocks.*)")
        heads = state[next(k for k in state if k.endswith("sa.scale_mul_1H11"))].numel()
        d = state["head.weight"].shape[0] // 2
        ffn = state[next(k for k in state if k.endswith("ffn.fc1.weight"))].shape[0]
    except (KeyError, StopIteration) as e:
        raise ValueError(f"not an Infinity transformer state dict (missing {e})") from e
    patchify = d in PATCHIFIED_HEAD_BITS
    return InfinityConfig(
        depth=depth, embed_dim=C, num_heads=heads, mlp_ratio=ffn / C, text_channels=ct, text_maxlen=maxlen,
        block_chunks=1 if None in chunks else len(chunks), vae_bits=d // 4 if patchify else d, patchify=patchify,
        pool_heads=state["text_proj_for_sos.ca.mat_q"].shape[1], num_levels=state["lvl_embed.weight"].shape[0])


VAREDIT_FILES = ("2B-512.pth", "8B-512.pth", "8B-1024.pth")  # HiDream-ai/VAREdit releases


def flavour_from_name(name: str) -> str:
    """VAREdit fine-tunes share Infinity's layout exactly; only the file tells them apart."""
    return "varedit" if name in VAREDIT_FILES or "varedit" in name.lower() else "infinity"


def adapt_state_dict(state: Mapping[str, torch.Tensor], cfg: InfinityConfig) -> dict[str, torch.Tensor]:
    """Official-file quirks, undone by name: derived buffers dropped, and `scale_mul_1H11` saved as
    (1, 1, H, 1) by builds with the custom flash kernel brought to the (1, H, 1, 1) layout."""
    out = {}
    for k, v in state.items():
        if k in DERIVED_KEYS:
            continue
        if k.endswith("sa.scale_mul_1H11") and tuple(v.shape) == (1, 1, cfg.num_heads, 1):
            v = v.reshape(1, cfg.num_heads, 1, 1)
        out[k] = v
    return out


# ----------------------------------------------------------------------------------------------- RoPE

def _angles(rows: torch.Tensor, cols: torch.Tensor, cfg: InfinityConfig) -> torch.Tensor:
    """Token positions -> cos/sin [2, n, Hd/2]: the first half of the pairs by row, the second by column."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, half, 2, dtype=torch.int64).float() / half))  # [Hd/4]
    angles = torch.cat([rows.float()[:, None] * inv_freq, cols.float()[:, None] * inv_freq], dim=-1)
    return torch.stack([angles.cos(), angles.sin()])


def scale_positions(schedule: Sequence[tuple[int, int]], reference: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of every token of every scale, normalised to the reference grid: round(i H / h)."""
    H, W = reference
    rows, cols = [], []
    for h, w in schedule:
        # the same float expression and round-half-even as the reference, so positions match exactly
        r = (torch.arange(h) * (H / h)).round().long()
        c = (torch.arange(w) * (W / w)).round().long()
        rows.append(r[:, None].expand(h, w).reshape(-1))
        cols.append(c[None, :].expand(h, w).reshape(-1))
    return torch.cat(rows), torch.cat(cols)


def rope_table(schedule: Sequence[tuple[int, int]], cfg: InfinityConfig, device=None) -> torch.Tensor:
    """cos/sin for every token of every scale, in generation order: [2, S, Hd / 2] fp32."""
    H, W = reference_grid(schedule)
    if max(H, W) > cfg.rope_grid:
        raise ValueError(f"the schedule's reference grid {H}x{W} exceeds the RoPE table ({cfg.rope_grid})")
    return _angles(*scale_positions(schedule, (H, W)), cfg).to(device)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """x [B, H, n, Hd] fp32, rope [2, n, Hd/2]: rotate adjacent pairs."""
    x = x.unflatten(-1, (-1, 2))
    cos, sin = rope[0], rope[1]
    x0, x1 = x[..., 0], x[..., 1]
    return torch.stack([cos * x0 - sin * x1, sin * x0 + cos * x1], dim=-1).flatten(-2)


# --------------------------------------------------------------------------------------------- layers

def _linear32(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """A Linear in fp32 whatever the weights' dtype (adaLN and the head run in fp32)."""
    return F.linear(x.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


class CrossAttention(nn.Module):
    """Attention from image tokens (or, for the pool, one learned query per head) to text tokens."""

    def __init__(self, dim: int, kv_dim: int, heads: int, pool: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        if pool:
            self.mat_q = nn.Parameter(torch.zeros(1, heads, dim // heads))
        else:
            self.mat_q = nn.Linear(dim, dim)
        self.mat_kv = nn.Linear(kv_dim, 2 * dim, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def keys_values(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """text [B, Lt, Ct] -> k, v [B, H, Lt, Hd] (computed once per generation)."""
        w = self.mat_kv.weight
        kv = F.linear(text.to(w.dtype), w, torch.cat([self.zero_k_bias, self.v_bias]).to(w.dtype))
        k, v = kv.unflatten(-1, (2, self.heads, self.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)
        return k, v

    def forward(self, x: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x [B, n, C] (None for the pool), key_mask [B, Lt] bool -> [B, n, C] fp32."""
        B = k.shape[0]
        if x is None:
            q = self.mat_q.to(k.dtype)[:, :, None].expand(B, -1, 1, -1)  # [B, H, 1, Hd]
        else:
            q = self.mat_q(x.to(k.dtype)).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.proj(o.transpose(1, 2).flatten(2)).float()


class TextAttentivePool(nn.Module):
    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.ca = CrossAttention(cfg.embed_dim, cfg.text_channels, cfg.pool_heads, pool=True)

    def forward(self, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, v = self.ca.keys_values(text)
        return self.ca(None, k, v, mask)[:, 0]  # [B, C]


class SelfAttention(nn.Module):
    """Cosine attention with 2D RoPE; keys/values go into the caller's static cache."""

    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        C, self.heads, self.head_dim = cfg.embed_dim, cfg.num_heads, cfg.head_dim
        self.mat_qkv = nn.Linear(C, 3 * C, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.register_buffer("zero_k_bias", torch.zeros(C))
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, cfg.num_heads, 1, 1), math.log(4.0)))
        self.proj = nn.Linear(C, C)

    def forward(self, x, rope, cache_k, cache_v, start: int, mask=None, attend_from: int = 0,
                prefix_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x [B, n, C]; rope [2, n, Hd/2]; cache_k/v [B, H, S, Hd]: this scale's keys go to start:start+n and
        the queries see positions attend_from:start+n (block-causal by construction), after `prefix_kv`
        (extra keys/values [B, H, P, Hd], VAREdit's scale-aligned reference) when given. mask: full passes."""
        w = self.mat_qkv.weight
        bias = torch.cat([self.q_bias, self.zero_k_bias, self.v_bias]).to(w.dtype)
        q, k, v = F.linear(x.to(w.dtype), w, bias).unflatten(-1, (3, self.heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        scale = self.scale_mul_1H11.float().clamp_max(math.log(100.0)).exp()
        q = apply_rope(F.normalize(q.float(), dim=-1) * scale, rope)
        k = apply_rope(F.normalize(k.float(), dim=-1), rope)
        end = start + x.shape[1]
        cache_k[:, :, start:end] = k.to(cache_k.dtype)
        cache_v[:, :, start:end] = v.to(cache_v.dtype)
        keys, values = cache_k[:, :, attend_from:end], cache_v[:, :, attend_from:end]
        if prefix_kv is not None:
            keys, values = torch.cat([prefix_kv[0], keys], 2), torch.cat([prefix_kv[1], values], 2)
        o = F.scaled_dot_product_attention(q.to(cache_k.dtype), keys, values, attn_mask=mask, scale=1.0)
        return self.proj(o.transpose(1, 2).flatten(2).to(w.dtype)).float()


class FFN(nn.Module):
    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_hidden)
        self.fc2 = nn.Linear(cfg.ffn_hidden, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x.to(self.fc1.weight.dtype)), approximate="tanh")).float()


class CrossAttnBlock(nn.Module):
    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        C = cfg.embed_dim
        self.eps = cfg.norm_eps
        self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, C))
        self.sa = SelfAttention(cfg)
        self.ca = CrossAttention(C, C, cfg.num_heads)
        self.ca_norm = nn.LayerNorm(C, eps=cfg.norm_eps)
        self.ffn = FFN(cfg)

    def forward(self, x, gss, text_kv, rope, cache_k, cache_v, start: int, mask=None, **attn) -> torch.Tensor:
        """x [B, n, C] fp32; gss [B, 1, 6, C] fp32 = shared_ada_lin(cond); text_kv = (k, v, key_mask);
        attn: attend_from / prefix_kv for the self-attention."""
        g1, g2, s1, s2, b1, b2 = (self.ada_gss.float() + gss).unbind(2)  # each [B, 1, C]
        ln = lambda t: F.layer_norm(t, t.shape[-1:], eps=self.eps)  # noqa: E731 (no affine)
        x = x + self.sa(ln(x) * (1 + s1) + b1, rope, cache_k, cache_v, start, mask, **attn) * g1
        x = x + self.ca(F.layer_norm(x, x.shape[-1:], self.ca_norm.weight.float(), self.ca_norm.bias.float(), self.eps),
                        *text_kv)
        return x + self.ffn(ln(x) * (1 + s2) + b2) * g2


class _Chunk(nn.Module):
    """Holds `module.{j}` so official names block_chunks.{c}.module.{j} load as they are."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.module = nn.ModuleList(blocks)


class AdaLNBeforeHead(nn.Module):
    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.eps = cfg.norm_eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cfg.embed_dim, 2 * cfg.embed_dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = _linear32(F.silu(cond.float()), self.ada_lin[1]).unflatten(-1, (2, -1))[:, None].unbind(2)
        return F.layer_norm(x.float(), x.shape[-1:], eps=self.eps) * (1 + scale) + shift


# ---------------------------------------------------------------------------------------------- model

@dataclass
class TextState:
    """Everything the text contributes to a generation, computed once: condition vector, adaLN vectors and
    the cross-attention keys/values of every block (rows = the batch, CFG rows included)."""

    cond: torch.Tensor  # [B, C] fp32
    gss: torch.Tensor  # [B, 1, 6, C] fp32
    kv: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # per block (k, v, key_mask)


class InfinityTransformer(nn.Module):
    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.cfg = cfg
        C, Ct = cfg.embed_dim, cfg.text_channels
        self.cfg_uncond = nn.Parameter(torch.zeros(cfg.text_maxlen, Ct))
        self.text_norm = RMSNorm(Ct, cfg.norm_eps)
        self.text_proj_for_sos = TextAttentivePool(cfg)
        self.text_proj_for_ca = nn.Sequential(nn.Linear(Ct, C), nn.GELU(approximate="tanh"), nn.Linear(C, C))
        self.pos_start = nn.Parameter(torch.zeros(1, 1, C))
        self.lvl_embed = nn.Embedding(cfg.num_levels, C)
        self.word_embed = nn.Linear(cfg.token_bits, C)
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        blocks = [CrossAttnBlock(cfg) for _ in range(cfg.depth)]
        if cfg.block_chunks > 1:
            per = cfg.depth // cfg.block_chunks
            self.block_chunks = nn.ModuleList(_Chunk(blocks[i:i + per]) for i in range(0, cfg.depth, per))
        else:
            self.blocks = nn.ModuleList(blocks)
        self.head_nm = AdaLNBeforeHead(cfg)
        self.head = nn.Linear(C, 2 * cfg.token_bits)
        self.flavour = "infinity"  # or "varedit": set by the loader from the file
        self.resolutions = OFFICIAL_RESOLUTIONS  # tiers it makes; a file of ours may store others (the embedded: 48)

    @property
    def layers(self) -> list[CrossAttnBlock]:
        if self.cfg.block_chunks > 1:
            return [b for chunk in self.block_chunks for b in chunk.module]
        return list(self.blocks)

    @property
    def dtype(self) -> torch.dtype:
        """The blocks' dtype (the rest stays fp32, as the reference runs it)."""
        return self.layers[0].sa.mat_qkv.weight.dtype

    def set_block_dtype(self, dtype: torch.dtype) -> "InfinityTransformer":
        """bf16/fp16 blocks, fp32 text, embeddings and head: the reference's precision layout."""
        for blk in self.layers:
            blk.to(dtype)
        return self

    def place(self, device, block_dtype: torch.dtype) -> "InfinityTransformer":
        """`set_block_dtype` and a move in one step, each tensor converted once: a bf16 file's blocks never pass
        through fp32 (which would double the peak memory of loading an 8B file)."""
        blocks = {id(p) for blk in self.layers for p in list(blk.parameters()) + list(blk.buffers())}
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is None:
                        continue
                    dtype = block_dtype if id(t) in blocks else torch.float32
                    if not t.is_floating_point():
                        dtype = t.dtype
                    if t.device != torch.device(device) or t.dtype != dtype:
                        new = t.detach().to(device=device, dtype=dtype)
                        store[name] = nn.Parameter(new, requires_grad=False) if isinstance(t, nn.Parameter) else new
        return self

    @property
    def device(self) -> torch.device:
        return self.word_embed.weight.device

    def null_text(self, mask: torch.Tensor) -> torch.Tensor:
        """The CFG null text for prompts with `mask` [B, Lt]: the first Lt rows of cfg_uncond -> [B, Lt, Ct]."""
        L = mask.shape[1]
        if L > self.cfg.text_maxlen:
            raise ValueError(f"text has {L} tokens; this model's null text covers {self.cfg.text_maxlen}")
        return self.cfg_uncond[:L][None].expand(mask.shape[0], -1, -1)

    def prepare_text(self, text: torch.Tensor, mask: torch.Tensor) -> TextState:
        """text [B, Lt, Ct] right-padded, mask [B, Lt] bool -> TextState."""
        if text.shape[-1] != self.cfg.text_channels:
            raise ValueError(f"text features are {text.shape[-1]}-d but this Infinity model expects "
                             f"{self.cfg.text_channels}-d (flan-t5-xl for the official models)")
        text = self.text_norm(text.to(self.text_norm.weight.dtype))
        cond = self.text_proj_for_sos(text, mask).float()
        gss = _linear32(F.silu(cond), self.shared_ada_lin[1]).unflatten(-1, (6, -1))[:, None]  # [B, 1, 6, C]
        ca_in = self.text_proj_for_ca(text)
        kv = [(*blk.ca.keys_values(ca_in), mask) for blk in self.layers]
        return TextState(cond, gss, kv)

    def start_tokens(self, ts: TextState) -> torch.Tensor:
        """Scale 0's input: the condition vector + pos_start -> [B, 1, C] fp32."""
        return ts.cond[:, None] + self.pos_start.float()

    def embed_bits_input(self, codes: torch.Tensor) -> torch.Tensor:
        """Next-scale input codes [B, n, d] -> [B, n, C] fp32."""
        return self.word_embed(codes.to(self.word_embed.weight.dtype)).float()

    def new_cache(self, batch: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Static K/V buffers for one generation: per block 2 x [B, H, S, Hd]. Owned by the call, so a
        cancelled run leaves nothing behind on the shared model."""
        shape = (batch, self.cfg.num_heads, length, self.cfg.head_dim)
        return [(torch.empty(shape, dtype=self.dtype, device=self.device),
                 torch.empty(shape, dtype=self.dtype, device=self.device)) for _ in range(self.cfg.depth)]

    def forward_tokens(self, x: torch.Tensor, levels: torch.Tensor, ts: TextState, rope: torch.Tensor,
                       cache, start: int, mask=None, layer_attn: dict[int, dict] | None = None,
                       after_layer=None) -> torch.Tensor:
        """x [B, n, C] fp32 (tokens start..start+n of the sequence), levels [n] scale index per token ->
        hidden [B, n, C] fp32. layer_attn: per layer index, extra self-attention arguments. after_layer():
        called between layers (a cancel check: the last scales of a 1024 px image are long)."""
        x = x + self.lvl_embed(levels).float()[None]
        for i, (blk, (ck, cv), kv) in enumerate(zip(self.layers, cache, ts.kv)):
            x = blk(x, ts.gss, kv, rope, ck, cv, start, mask, **((layer_attn or {}).get(i, {})))
            if after_layer is not None:
                after_layer()
        return x

    def bit_logits(self, hidden: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """hidden [B, n, C] -> logits [B, n, d, 2] fp32 (class 1 = bit set)."""
        return _linear32(self.head_nm(hidden, cond), self.head).unflatten(-1, (-1, 2))

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, inputs: torch.Tensor,
                schedule: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Full teacher-forced pass with the block-causal mask (training-style; generation uses the cache).
        inputs [B, S - 1, d]: the next-scale input codes of scales 1..K-1 -> logits [B, S, d, 2]."""
        ts = self.prepare_text(text, text_mask)
        x = torch.cat([self.start_tokens(ts), self.embed_bits_input(inputs)], 1)
        sizes = [h * w for h, w in schedule]
        levels = torch.repeat_interleave(torch.arange(len(schedule), device=x.device),
                                         torch.tensor(sizes, device=x.device))
        mask = levels[:, None] >= levels[None, :]  # query scale >= key scale
        cache = self.new_cache(x.shape[0], x.shape[1])
        h = self.forward_tokens(x, levels, ts, rope_table(schedule, self.cfg, x.device), cache, 0, mask)
        return self.bit_logits(h, ts.cond)
