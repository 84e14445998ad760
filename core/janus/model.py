"""Janus-Pro's image-generation path: a Llama decoder that reads the prompt's text tokens and then draws 576
VQ-16 codes through its own image embedding and head. Loads DeepSeek's original files and transformers' converted
ones, strictly, keeping only what generation needs.

One file, one architecture. Shapes: B rows (both CFG branches stacked), L tokens fed this pass, S static cache
slots, D width, H heads (= kv heads in the released files), Hd head width, V text vocabulary (102,400), C image
codes (16,384), E code embedding width (8).

What real weights depend on (shared/docs/janus_pro.md, checked against deepseek-ai/Janus @1daa72f, whose
generation_inference.py builds transformers' LlamaForCausalLM and casts the whole model to bf16):
- Llama blocks: pre-norm RMSNorm (statistics in fp32, cast back before the weight), rotate-half RoPE over 1D
  positions 0..n-1, SiLU MLP, no biases. RoPE's angles are computed in fp32 from inverse frequencies ROUNDED TO THE
  WEIGHTS' DTYPE: the script casts the whole model to bf16, buffers included, so transformers' `inv_freq` is bf16
  (at position 600 that moves cos by up to 0.1); cos / sin are then rounded to the dtype as well.
- The text prompt is embedded by `embed_tokens`; every image code fed back goes through the generation path:
  gen_aligner(gen_embed(code)) = Linear(E, D) -> exact GELU -> Linear(D, D). `gen_embed` is its own table, not
  the VQ codebook (ATM measures distance in the codebook: core.llamagen.atm).
- Image logits come from gen_head(h) = Linear(D, D) -> exact GELU -> Linear(D, C) (biases), in the weights'
  dtype; the text head `lm_head` is never used to draw and is not loaded.
- The VQ tokenizer is LlamaGen's VQ-16 (same names and maths), built by core.llamagen.vq from the same file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from ..llamagen.gpt import RMSNorm  # HF Llama's norm: fp32 statistics, cast back, then the weight
from ..lumina.chameleon import MLP, KVCache, _rotate_half, attention_mask


@dataclass(frozen=True)
class JanusConfig(ConfigIO):
    dim: int = 4096  # language_config.hidden_size
    n_layer: int = 30  # num_hidden_layers
    n_head: int = 32  # num_attention_heads
    n_kv_head: int = 32  # num_key_value_heads
    ffn_hidden: int = 11008  # intermediate_size
    vocab_size: int = 102400
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    max_positions: int = 16384
    image_codes: int = 16384  # gen_head / gen_embed rows (the VQ codebook size)
    code_dim: int = 8  # gen_embed width (the VQ codebook's)
    image_size: int = 384
    downsample: int = 16
    mlp_bias: bool = False  # read by the shared MLP

    def __post_init__(self):
        if self.dim % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(f"hidden_size {self.dim}, {self.n_head} heads and {self.n_kv_head} kv heads do not divide")
        if self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head width, got {self.head_dim}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} is not a multiple of the VQ stride {self.downsample}")
        for name, top in MAX_SIZES.items():
            if not 0 < getattr(self, name) <= top:
                raise ValueError(f"{name} {getattr(self, name)} is beyond any Janus model (1 .. {top:,}): the config "
                                 f"is wrong")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def num_image_tokens(self) -> int:
        return self.grid_size ** 2

    @property
    def n_params(self) -> int:
        """Parameters generation loads (the body, the text embedding, the image embedding, aligner and head)."""
        d, f, hd = self.dim, self.ffn_hidden, self.head_dim
        layer = 2 * d * d + 2 * d * self.n_kv_head * hd + 3 * d * f + 2 * d
        gen = self.image_codes * self.code_dim + (self.code_dim * d + d) + (d * d + d) * 2 + (d * self.image_codes
                                                                                              + self.image_codes)
        return self.vocab_size * d + self.n_layer * layer + d + gen

    @classmethod
    def presets(cls) -> Mapping:
        return JANUS_PRESETS

    @classmethod
    def from_language_config(cls, lc: Mapping, image_codes: int = 16384, code_dim: int = 8,
                             image_size: int = 384) -> "JanusConfig":
        """A Llama config (the original's `language_config`, or transformers' `text_config`) -> ours. Missing fields
        take LlamaConfig's defaults, as the official code builds them (the 7B file sets only a few)."""
        if lc.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act {lc.get('hidden_act')!r}: Janus's language model uses silu")
        if lc.get("rope_scaling"):
            raise ValueError(f"rope_scaling {lc.get('rope_scaling')}: Janus-Pro uses none")
        if lc.get("attention_bias") or lc.get("mlp_bias"):
            raise ValueError("attention / mlp biases: Janus's language model has none")
        heads = int(lc.get("num_attention_heads", 32))
        return cls(dim=int(lc.get("hidden_size", 4096)), n_layer=int(lc.get("num_hidden_layers", 32)), n_head=heads,
                   n_kv_head=int(lc.get("num_key_value_heads") or heads),
                   ffn_hidden=int(lc.get("intermediate_size", 11008)), vocab_size=int(lc.get("vocab_size", 32000)),
                   rope_base=float(lc.get("rope_theta", 10000.0)), norm_eps=float(lc.get("rms_norm_eps", 1e-6)),
                   max_positions=int(lc.get("max_position_embeddings", 2048)), image_codes=image_codes,
                   code_dim=code_dim, image_size=image_size)


MAX_SIZES = {"dim": 16384, "n_layer": 128, "ffn_hidden": 65536, "vocab_size": 262144, "max_positions": 131072,
             "image_codes": 262144, "code_dim": 256, "image_size": 2048}

JANUS_PRESETS: dict[str, dict] = {
    "Janus-Pro-1B": dict(dim=2048, n_layer=24, n_head=16, n_kv_head=16, ffn_hidden=5632),
    "Janus-Pro-7B": dict(dim=4096, n_layer=30, n_head=32, n_kv_head=32, ffn_hidden=11008),
}


def rope(positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype):
    """positions [B, L] -> cos, sin [B, 1, L, Hd] (rotate-half layout); inverse frequencies rounded to `dtype` (the
    official bf16 model's inv_freq buffer), angles in fp32, cos / sin rounded to `dtype`."""
    exps = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim
    inv_freq = (1.0 / base ** exps).to(dtype).float()
    freqs = positions.float()[..., None] * inv_freq  # [B, L, Hd/2]
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


# ----------------------------------------------------------------------------------------------------
# Modules (names follow the original state dict: language_model.model.layers.N.self_attn.q_proj.weight, ...)


class Attention(nn.Module):
    def __init__(self, cfg: JanusConfig):
        super().__init__()
        d, hd = cfg.dim, cfg.head_dim
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.n_kv_head, hd
        self.q_proj = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * hd, d, bias=False)

    def forward(self, x, cos, sin, mask, slots, cache_k, cache_v):
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.n_head, self.head_dim).transpose(1, 2)  # [B, H, L, Hd]
        k = self.k_proj(x).view(B, L, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin  # in the weights' dtype, as transformers' Llama
        k = k * cos + _rotate_half(k) * sin
        rep = self.n_head // self.n_kv
        if cache_k is None:  # training: the whole sequence at once, causal
            y = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1),
                                               is_causal=True)
        else:
            cache_k.index_copy_(2, slots, k)
            cache_v.index_copy_(2, slots, v)
            keys = cache_k.repeat_interleave(rep, 1) if rep > 1 else cache_k
            values = cache_v.repeat_interleave(rep, 1) if rep > 1 else cache_v
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, L, -1))


class Block(nn.Module):
    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, mask, slots, cache_k, cache_v):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, slots, cache_k, cache_v)
        return h + self.mlp(self.post_attention_layernorm(h))


class _Body(nn.Module):
    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)


class _LanguageModel(nn.Module):
    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.model = _Body(cfg)


class _Aligner(nn.Module):
    """gen_aligner: Linear(E, D) -> GELU -> Linear(D, D) (the original's MlpProjector, mlp_gelu, depth 2)."""

    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(cfg.code_dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim))

    def forward(self, x):
        return self.layers(x)


class _Head(nn.Module):
    """gen_head: Linear(D, D) -> GELU -> Linear(D, C) (the original's vision_head)."""

    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.output_mlp_projector = nn.Linear(cfg.dim, cfg.dim)
        self.vision_activation = nn.GELU()
        self.vision_head = nn.Linear(cfg.dim, cfg.image_codes)

    def forward(self, x):
        return self.vision_head(self.vision_activation(self.output_mlp_projector(x)))


class JanusGen(nn.Module):
    """What Janus-Pro draws with: the language model body, its text embedding, and the image path."""

    layout = "janus"

    def __init__(self, cfg: JanusConfig):
        super().__init__()
        self.cfg = cfg
        self.language_model = _LanguageModel(cfg)
        self.gen_embed = nn.Embedding(cfg.image_codes, cfg.code_dim)
        self.gen_aligner = _Aligner(cfg)
        self.gen_head = _Head(cfg)
        self.tokenizer = None  # the folder's text tokenizer (core.janus.prompt.JanusTokenizer), set by the loader

    @property
    def device(self) -> torch.device:  # where it computes: read off a norm, which stays there even when a host
        return self.language_model.model.norm.weight.device  # (ComfyUI) keeps big layers in CPU memory

    @property
    def dtype(self) -> torch.dtype:
        return self.gen_head.vision_head.weight.dtype

    def new_cache(self, batch: int, slots: int) -> KVCache:
        if slots > self.cfg.max_positions:
            raise ValueError(f"{slots} tokens is more than this model reads ({self.cfg.max_positions}): shorten the "
                             f"prompt")
        return KVCache(self.cfg, batch, slots, self.dtype, self.device)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, L, D]
        return self.language_model.model.embed_tokens(ids)

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, L, D]
        return self.gen_aligner(self.gen_embed(codes))

    def _run(self, x, cos, sin, mask, slots, cache) -> torch.Tensor:
        body = self.language_model.model
        for i, layer in enumerate(body.layers):
            x = layer(x, cos, sin, mask, slots, None if cache is None else cache.k[i],
                      None if cache is None else cache.v[i])
        return self.gen_head(body.norm(x))  # [B, L, C], in the weights' dtype

    def forward(self, text_ids: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Training / reference: [prompt | codes] from position 0, no cache -> image logits [B, N, C] (row k
        predicts code k)."""
        x = torch.cat([self.embed_text(text_ids), self.embed_codes(codes[:, :-1])], 1)
        pos = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        cos, sin = rope(pos, self.cfg.head_dim, self.cfg.rope_base, self.dtype)
        return self._run(x, cos, sin, None, None, None)[:, text_ids.shape[1] - 1:]

    def forward_embeddings(self, x: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, cache: KVCache,
                           real: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings x [B, L, D] at cache slots [L] with per-row positions [B, L] -> image logits [B, L, C].
        `real` [B, L]: which slots hold a real token (False: left padding, never attended)."""
        cache.filled[:, slots] = True if real is None else real
        cos, sin = rope(positions, self.cfg.head_dim, self.cfg.rope_base, self.dtype)
        return self._run(x, cos, sin, attention_mask(cache, slots), slots, cache)


def approx_bytes(cfg: JanusConfig, bytes_per_param: int = 2) -> int:
    return cfg.n_params * bytes_per_param


def kv_bytes_per_row(cfg: JanusConfig, tokens: int, bytes_per_value: int = 2) -> int:
    return 2 * cfg.n_layer * cfg.n_kv_head * cfg.head_dim * tokens * bytes_per_value
