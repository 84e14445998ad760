"""LlamaGen GPT: a Llama-style decoder over VQ tokens, checkpoint-compatible with the official files.

One file, one architecture (gpt-fast / nanoGPT spirit). Shapes: B batch, T condition prefix length
(120 caption slots for t2i, 1 class slot for c2i), N = grid^2 image tokens, S = static cache length,
D model width, H heads, Hd head width, V codebook size.

Details that real weights depend on (see shared/docs/llamagen.md):
- 2D RoPE on interleaved pairs, first half of the pairs rotated by the row, second half by the column;
  the T prefix positions get cos = sin = 0, so their queries and keys are zero vectors.
- Caption slots are left-padded; padded slots are masked as keys and attend only to themselves.
- RMSNorm in fp32, RoPE in fp32, logits in fp32, untied output head, no biases in the transformer.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO


def _round_up(x: int, multiple: int) -> int:
    return multiple * math.ceil(x / multiple)


@dataclass(frozen=True)
class GPTConfig(ConfigIO):
    dim: int = 1280
    n_layer: int = 36
    n_head: int = 20
    n_kv_head: int | None = None  # None = n_head (every shipped config)
    ffn_hidden: int | None = None  # None = round_up(int(2 * 4 * dim / 3), multiple_of)
    multiple_of: int = 256
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    vocab_size: int = 16384
    model_type: str = "t2i"  # "t2i": T5 caption prefix; "c2i": one class token
    caption_dim: int = 2048  # t2i only: width of the text features (flan-t5-xl: 2048)
    cls_token_num: int = 120  # prefix length T
    num_classes: int = 1000  # c2i only; the table has num_classes + 1 rows (last = null class)
    image_size: int = 512
    downsample: int = 16  # VQ tokenizer stride: grid = image_size / downsample
    # EditAR layout only. False (every official file): the last text slot, which predicts the first output token,
    # has zero RoPE like all text, so in every layer its query is zero and it attends to the source image as an
    # unordered bag. True (files of ours that store it): that slot sits where a row end sits before the output
    # grid, so the first output token finds its source cell by the same offset as every row's first token.
    edit_start_rope: bool = False

    def __post_init__(self):
        if self.model_type not in ("t2i", "c2i"):
            raise ValueError(f"model_type must be 't2i' or 'c2i', got {self.model_type!r}")
        if self.dim % self.n_head:
            raise ValueError(f"dim {self.dim} is not divisible by n_head {self.n_head}")
        if self.head_dim % 4:
            raise ValueError(f"2D RoPE needs head_dim divisible by 4, got {self.head_dim}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} is not a multiple of the VQ stride {self.downsample}")
        if not 0 < self.image_size <= MAX_IMAGE_SIZE:  # before any table quadratic in it is built
            raise ValueError(f"image_size {self.image_size} is beyond what a LlamaGen model makes here (1 .. "
                             f"{MAX_IMAGE_SIZE} px): the file or its metadata is wrong")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def hidden_dim(self) -> int:
        return self.ffn_hidden or _round_up(int(2 * 4 * self.dim / 3), self.multiple_of)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def num_image_tokens(self) -> int:
        return self.grid_size ** 2

    @classmethod
    def presets(cls) -> Mapping:
        return GPT_PRESETS

    def with_image_size(self, image_size: int) -> "GPTConfig":
        return replace(self, image_size=image_size)


MAX_IMAGE_SIZE = 4096  # px; official files make 256 - 512 (a 256 x 256 token grid at stride 16 is already far beyond)

# Official LlamaGen sizes. Released t2i weights are GPT-XL; c2i ships B, L, XL, XXL and 3B.
GPT_PRESETS: dict[str, dict] = {
    "GPT-B": dict(n_layer=12, n_head=12, dim=768),
    "GPT-L": dict(n_layer=24, n_head=16, dim=1024),
    "GPT-XL": dict(n_layer=36, n_head=20, dim=1280),
    "GPT-XXL": dict(n_layer=48, n_head=24, dim=1536),
    "GPT-1B": dict(n_layer=22, n_head=32, dim=2048),
    "GPT-3B": dict(n_layer=24, n_head=32, dim=3200),
    "GPT-7B": dict(n_layer=32, n_head=32, dim=4096),
}  # only official sizes: a file's head count is looked up here (tests build their tiny sizes themselves)


def config_from_state_dict(state: Mapping[str, torch.Tensor], image_size: int, n_head: int | None = None,
                           downsample: int = 16) -> GPTConfig:
    """Read the architecture off the weights. The image size is not stored in official files (RoPE is
    computed), so the caller passes it (from the file name, metadata or the user)."""
    if "tok_embeddings.weight" not in state:
        raise ValueError("not a LlamaGen GPT checkpoint: 'tok_embeddings.weight' is missing")
    vocab_size, dim = state["tok_embeddings.weight"].shape
    layer_ids = {int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k))}
    n_layer = max(layer_ids) + 1 if layer_ids else 0
    if n_head is None:
        # Official files do not store the head count; a wrong guess would load fine and give wrong logits.
        n_head = next((p["n_head"] for p in GPT_PRESETS.values() if p["dim"] == dim and p["n_layer"] == n_layer), None)
        if n_head is None:
            known = ", ".join(f"{name} ({p['dim']} x {p['n_layer']})" for name, p in GPT_PRESETS.items())
            raise ValueError(
                f"width {dim} x {n_layer} layers matches no LlamaGen preset ({known}) and the file does not store "
                f"its head count: give it (load_gpt(..., n_head=N), or the loader node's n_head), or convert the "
                f"file with `python -m ar_edit_pack convert --n-head N` so it is stored")
    if dim % n_head:
        raise ValueError(f"n_head {n_head} does not divide the width {dim}")
    head_dim = dim // n_head
    qkv_rows = state["layers.0.attention.wqkv.weight"].shape[0] if n_layer else 3 * dim
    n_kv_head = (qkv_rows - dim) // (2 * head_dim)
    ffn_hidden = state["layers.0.feed_forward.w1.weight"].shape[0] if n_layer else None
    common = dict(dim=dim, n_layer=n_layer, n_head=n_head, n_kv_head=None if n_kv_head == n_head else n_kv_head,
                  ffn_hidden=ffn_hidden, vocab_size=vocab_size, image_size=image_size, downsample=downsample)
    if "cls_embedding.cap_proj.fc1.weight" in state:
        caption_dim = state["cls_embedding.cap_proj.fc1.weight"].shape[1]
        # The null caption fixes the prefix length; if it is missing the strict load reports it by name.
        null = state.get("cls_embedding.uncond_embedding")
        cls_token_num = null.shape[0] if null is not None else 120
        return GPTConfig(model_type="t2i", caption_dim=caption_dim, cls_token_num=cls_token_num, **common)
    if "cls_embedding.embedding_table.weight" in state:
        rows = state["cls_embedding.embedding_table.weight"].shape[0]
        return GPTConfig(model_type="c2i", num_classes=rows - 1, cls_token_num=1, **common)
    raise ValueError("not a LlamaGen GPT checkpoint: no 'cls_embedding.cap_proj' (t2i) "
                     "or 'cls_embedding.embedding_table.weight' (c2i)")


# ----------------------------------------------------------------------------------------------------
# Rotary embedding


def rope_for_cells(rows: torch.Tensor, cols: torch.Tensor, head_dim: int, base: float) -> torch.Tensor:
    """(cos, sin) [M, Hd/2, 2] in fp32 for grid cells (rows[m], cols[m]): the first Hd/4 pairs rotate by
    the row, the last Hd/4 by the column, with frequencies base^(-2k/(Hd/2))."""
    n_freq = head_dim // 4  # per axis
    freqs = base ** (-torch.arange(n_freq, dtype=torch.float32, device=rows.device) * 2 / (head_dim // 2))
    angles = torch.cat([rows.float()[:, None] * freqs, cols.float()[:, None] * freqs], dim=-1)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def grid_cells(grid: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Raster-order (row, col) of a grid x grid block whose top-left cell is (offset, offset)."""
    idx = torch.arange(grid * grid, device=torch.device("cpu"))  # explicit: models may be built under meta
    return idx // grid + offset, idx % grid + offset


def rope_table_2d(grid: int, head_dim: int, base: float, prefix: int) -> torch.Tensor:
    """LlamaGen: [prefix + grid^2, Hd/2, 2]; zero rows (cos = sin = 0) for the condition prefix."""
    cells = rope_for_cells(*grid_cells(grid), head_dim, base)
    return torch.cat([torch.zeros(prefix, head_dim // 2, 2, device=cells.device), cells])


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """x [B, L, H, Hd], rope [L, Hd/2, 2] -> rotated x, computed in fp32 on adjacent pairs."""
    xp = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = rope[None, :, None, :, 0], rope[None, :, None, :, 1]
    out = torch.stack([xp[..., 0] * cos - xp[..., 1] * sin, xp[..., 1] * cos + xp[..., 0] * sin], dim=-1)
    return out.flatten(3).type_as(x)


# ----------------------------------------------------------------------------------------------------
# Static KV cache and masks


class KVCache:
    """Preallocated keys/values for every layer: [n_layer, B, H_kv, S, Hd]. Owned by one generation
    call, never by the model, so a cancelled run leaves the shared model untouched."""

    def __init__(self, cfg: GPTConfig, batch: int, max_len: int, dtype: torch.dtype, device: torch.device):
        shape = (cfg.n_layer, batch, cfg.kv_heads, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len


def prefix_causal_mask(prefix_mask: torch.Tensor | None, length: int, prefix_len: int, batch: int,
                       device: torch.device) -> torch.Tensor:
    """[B, 1, L, L] bool: causal, with padded prefix slots removed as keys and the diagonal forced on."""
    mask = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    mask = mask[None].expand(batch, length, length).clone()
    if prefix_mask is not None:
        mask[:, :, :prefix_len] &= prefix_mask.to(device=device, dtype=torch.bool)[:, None, :]
        mask |= torch.eye(length, dtype=torch.bool, device=device)
    return mask[:, None]


# ----------------------------------------------------------------------------------------------------
# Modules (names follow the official state dict)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        kv_dim = cfg.kv_heads * cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, cfg.dim + 2 * kv_dim, bias=False)  # rows: q | k | v
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x, rope, mask, input_pos, cache_k=None, cache_v=None):
        cfg = self.cfg
        B, L, _ = x.shape
        kv_dim = cfg.kv_heads * cfg.head_dim
        q, k, v = self.wqkv(x).split([cfg.dim, kv_dim, kv_dim], dim=-1)
        q = apply_rope(q.view(B, L, cfg.n_head, cfg.head_dim), rope).transpose(1, 2)  # [B, H, L, Hd]
        k = apply_rope(k.view(B, L, cfg.kv_heads, cfg.head_dim), rope).transpose(1, 2)
        v = v.view(B, L, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        if cache_k is not None:
            cache_k.index_copy_(2, input_pos, k)  # static cache: write this step's keys in place
            cache_v.index_copy_(2, input_pos, v)
            k, v = cache_k, cache_v  # [B, H_kv, S, Hd]
        if cfg.kv_heads != cfg.n_head:
            k = k.repeat_interleave(cfg.n_head // cfg.kv_heads, dim=1)
            v = v.repeat_interleave(cfg.n_head // cfg.kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(out.transpose(1, 2).reshape(B, L, cfg.dim))


class TransformerBlock(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, rope, mask, input_pos, cache_k=None, cache_v=None):
        h = x + self.attention(self.attention_norm(x), rope, mask, input_pos, cache_k, cache_v)
        return h + self.feed_forward(self.ffn_norm(h))


class CaptionMLP(nn.Module):
    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, dim, bias=False)
        self.fc2 = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class CaptionEmbedder(nn.Module):
    """t2i condition: caption features [B, T, C] -> [B, T, D]. `uncond_embedding` is the learned null
    caption used for CFG; it is a persistent buffer that must come from the checkpoint."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cap_proj = CaptionMLP(cfg.caption_dim, cfg.dim)
        self.register_buffer("uncond_embedding", torch.randn(cfg.cls_token_num, cfg.caption_dim) / cfg.caption_dim ** 0.5)

    def forward(self, caption: torch.Tensor) -> torch.Tensor:
        return self.cap_proj(caption)


class ClassEmbedder(nn.Module):
    """c2i condition: labels [B] -> [B, 1, D]; label num_classes is the null class."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.embedding_table = nn.Embedding(cfg.num_classes + 1, cfg.dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)[:, None]


class LlamaGenGPT(nn.Module):
    # Which sequence layout (and RoPE table) the model was trained with; generation loops check it.
    layout = "llamagen"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.cls_embedding = CaptionEmbedder(cfg) if cfg.model_type == "t2i" else ClassEmbedder(cfg)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # Kept off the module's buffers so .to(bf16) never rounds it; rebuilt per device on demand.
        self._rope_cpu = rope_table_2d(cfg.grid_size, cfg.head_dim, cfg.rope_base, cfg.cls_token_num)
        self._rope_by_device: dict[torch.device, torch.Tensor] = {}

    @property
    def dtype(self) -> torch.dtype:
        return self.tok_embeddings.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.tok_embeddings.weight.device

    def rope(self, device: torch.device) -> torch.Tensor:
        if device not in self._rope_by_device:
            self._rope_by_device[device] = self._rope_cpu.to(device)
        return self._rope_by_device[device]

    # --- conditions ------------------------------------------------------------------------------

    def null_condition(self, batch: int) -> torch.Tensor:
        """The raw condition CFG's unconditional branch uses: null caption [B, T, C] or null class [B]."""
        if self.cfg.model_type == "t2i":
            return self.cls_embedding.uncond_embedding[None].expand(batch, -1, -1)
        return torch.full((batch,), self.cfg.num_classes, dtype=torch.long, device=self.device)

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """Raw condition (caption features [B, T, C] or labels [B]) -> prefix embeddings [B, T, D]."""
        if self.cfg.model_type == "t2i":
            if cond.dim() != 3 or cond.shape[1:] != (self.cfg.cls_token_num, self.cfg.caption_dim):
                raise ValueError(f"caption features must be [B, {self.cfg.cls_token_num}, {self.cfg.caption_dim}], "
                                 f"got {list(cond.shape)} (text encoder and model do not match)")
            return self.cls_embedding(cond.to(self.dtype))
        return self.cls_embedding(cond.long())

    # --- forward passes ----------------------------------------------------------------------------

    def forward_embeddings(self, h: torch.Tensor, input_pos: torch.Tensor, mask: torch.Tensor,
                           cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """h [B, L, D] at sequence positions input_pos [L]; mask [B, 1, L, S] (S = L without cache).
        Returns fp32 logits [B, L, V] (or [B, 1, V] with last_only)."""
        rope = self.rope(h.device)[input_pos]
        for i, layer in enumerate(self.layers):
            ck, cv = (cache.k[i], cache.v[i]) if cache is not None else (None, None)
            h = layer(h, rope, mask, input_pos, ck, cv)
        if last_only:
            h = h[:, -1:]
        return self.output(self.norm(h)).float()

    def forward(self, prefix: torch.Tensor, prefix_mask: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced pass. prefix: embedded condition [B, T, D]; tokens [B, n] image tokens.
        Returns logits [B, n, V]: row k predicts token k from the prefix and tokens < k."""
        B, T, _ = prefix.shape
        x = torch.cat([prefix, self.tok_embeddings(tokens[:, :-1])], dim=1)  # [B, T + n - 1, D]
        L = x.shape[1]
        mask = prefix_causal_mask(prefix_mask, L, T, B, x.device)
        logits = self.forward_embeddings(x, torch.arange(L, device=x.device), mask)
        return logits[:, T - 1:]
