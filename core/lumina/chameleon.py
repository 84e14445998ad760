"""Lumina-mGPT's transformer: the Chameleon architecture, loading the official Hugging Face folders strictly.

One file, one architecture. Shapes: B batch rows (both CFG branches stacked), L tokens fed this pass, S static
cache slots, D width, H heads (= kv heads in every released file), Hd head width, V vocabulary (65,536).

What real weights depend on (shared/docs/lumina_mgpt.md, checked against Alpha-VLLM/Lumina-mGPT's
modeling_chameleon.py, which is what its inference script builds):
- Pre-norm blocks (h = x + attn(norm(x)); out = h + mlp(norm(h))), or "swin" norm after each branch (34B).
- qk-norm: after q/k projection and before RoPE, a LayerNorm over each head's Hd values (no affine, eps 1e-5),
  then one affine per model-parallel shard ([mp, Hd], shared by that shard's heads).
- RoPE: rotate-half, 1D positions 0..n-1 over the whole sequence, computed in fp32 and rounded to the weights'
  dtype; the unconditional CFG branch counts its positions from 0 too (it has no prompt).
- RMSNorm statistics in fp32; logits returned in fp32.
Rows are left-padded to a common prefix: each row has its own positions, and padded slots are never attended.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from ..files.checkpoints import load_strict, read_config_json
from ..llamagen.gpt import RMSNorm  # the same fp32-statistics norm


@dataclass(frozen=True)
class ChameleonConfig(ConfigIO):
    dim: int = 4096  # hidden_size
    n_layer: int = 32  # num_hidden_layers
    n_head: int = 32  # num_attention_heads
    n_kv_head: int = 32  # num_key_value_heads
    ffn_hidden: int = 11008  # intermediate_size
    vocab_size: int = 65536
    rope_base: float = 10000.0  # rope_theta
    rope_linear_factor: float = 1.0  # rope_scaling {"type": "linear", "factor": f}; 1 = none
    norm_eps: float = 1e-5  # rms_norm_eps
    model_parallel: int = 1  # model_parallel_size: how many qk-norm affines there are
    swin_norm: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    max_positions: int = 4096  # max_position_embeddings
    mask_image_logits: bool = False  # a Chameleon base model masks image tokens out: it cannot draw

    def __post_init__(self):
        if self.dim % self.n_head:
            raise ValueError(f"hidden_size {self.dim} is not divisible by {self.n_head} heads")
        if self.n_head % self.n_kv_head or self.n_head % self.model_parallel or self.n_kv_head % self.model_parallel:
            raise ValueError(f"{self.n_head} heads, {self.n_kv_head} kv heads and model_parallel_size "
                             f"{self.model_parallel} do not divide each other")
        if self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head width, got {self.head_dim}")
        for name in ("dim", "n_layer", "ffn_hidden", "vocab_size", "max_positions"):
            if not 0 < getattr(self, name) <= MAX_SIZES[name]:
                raise ValueError(f"{name} {getattr(self, name)} is beyond any Lumina-mGPT model "
                                 f"(1 .. {MAX_SIZES[name]:,}): the config is wrong")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def n_params(self) -> int:
        """Parameters the config declares (checked against the weights before anything is allocated)."""
        d, f, v, hd = self.dim, self.ffn_hidden, self.vocab_size, self.head_dim
        attn = 2 * d * d + 2 * d * self.n_kv_head * hd + 4 * self.model_parallel * hd
        return 2 * v * d + d + self.n_layer * (attn + 3 * d * f + 2 * d)

    @classmethod
    def presets(cls) -> Mapping:
        return CHAMELEON_PRESETS

    @classmethod
    def from_hf(cls, hf: Mapping) -> "ChameleonConfig":
        """The folder's config.json (Hugging Face names) -> ours; unknown architectures are refused."""
        if hf.get("model_type") not in (None, "chameleon"):
            raise ValueError(f"config.json is a {hf.get('model_type')!r} model, not a Chameleon / Lumina-mGPT one")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act {hf.get('hidden_act')!r}: Lumina-mGPT uses silu")
        if hf.get("tie_word_embeddings"):
            raise ValueError("tie_word_embeddings: Lumina-mGPT's lm_head is its own tensor")
        scaling = hf.get("rope_scaling")
        factor = 1.0
        if scaling:
            if scaling.get("type") != "linear":  # dynamic NTK changes only past max_position_embeddings
                raise ValueError(f"rope_scaling {scaling}: only linear scaling is supported")
            factor = float(scaling["factor"])
        heads = int(hf.get("num_attention_heads", 32))
        return cls(dim=int(hf.get("hidden_size", 4096)), n_layer=int(hf.get("num_hidden_layers", 32)),
                   n_head=heads, n_kv_head=int(hf.get("num_key_value_heads") or heads),
                   ffn_hidden=int(hf.get("intermediate_size", 11008)), vocab_size=int(hf.get("vocab_size", 65536)),
                   rope_base=float(hf.get("rope_theta", 10000.0)), rope_linear_factor=factor,
                   norm_eps=float(hf.get("rms_norm_eps", 1e-5)), model_parallel=int(hf.get("model_parallel_size", 1)),
                   swin_norm=bool(hf.get("swin_norm", False)), attention_bias=bool(hf.get("attention_bias", False)),
                   mlp_bias=bool(hf.get("mlp_bias", False)),
                   max_positions=int(hf.get("max_position_embeddings", 4096)),
                   mask_image_logits=bool(hf.get("mask_image_logits", True)))  # the official default is True

    def to_hf(self) -> dict:
        """Hugging Face config.json fields (what the official code reads), for writing test folders."""
        return {"model_type": "chameleon", "architectures": ["ChameleonForConditionalGeneration"],
                "hidden_size": self.dim, "num_hidden_layers": self.n_layer, "num_attention_heads": self.n_head,
                "num_key_value_heads": self.n_kv_head, "intermediate_size": self.ffn_hidden,
                "vocab_size": self.vocab_size, "rope_theta": self.rope_base,
                "rope_scaling": None if self.rope_linear_factor == 1 else
                {"type": "linear", "factor": self.rope_linear_factor},
                "rms_norm_eps": self.norm_eps, "model_parallel_size": self.model_parallel,
                "swin_norm": self.swin_norm, "attention_bias": self.attention_bias, "mlp_bias": self.mlp_bias,
                "max_position_embeddings": self.max_positions, "mask_image_logits": self.mask_image_logits,
                "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


MAX_SIZES = {"dim": 16384, "n_layer": 128, "ffn_hidden": 65536, "vocab_size": 262144, "max_positions": 32768}

CHAMELEON_PRESETS: dict[str, dict] = {
    "7B": dict(dim=4096, n_layer=32, n_head=32, n_kv_head=32, ffn_hidden=11008),
    "34B": dict(dim=8192, n_layer=48, n_head=64, n_kv_head=8, ffn_hidden=22016, model_parallel=4, swin_norm=True),
}  # 34B from Meta's release (the HF conversion script's table); only 7B files are checked here


# ----------------------------------------------------------------------------------------------------
# Cache and masks


class KVCache:
    """Keys/values of every layer [n_layer, B, H_kv, S, Hd], plus which slots hold a real token [B, S] (left
    padding does not). Owned by one generation call, never by the model."""

    def __init__(self, cfg: ChameleonConfig, batch: int, slots: int, dtype: torch.dtype, device: torch.device):
        shape = (cfg.n_layer, batch, cfg.n_kv_head, slots, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.filled = torch.zeros(batch, slots, dtype=torch.bool, device=device)
        self.slots = slots


def attention_mask(cache: KVCache, slots: torch.Tensor) -> torch.Tensor:
    """Queries at cache slots [L] -> bool [B, 1, L, S]: causal over slots, padded slots never keys. A padded
    query slot sees itself only (its output is never used, and no row is left without a key)."""
    s = torch.arange(cache.slots, device=slots.device)
    causal = s[None, :] <= slots[:, None]  # [L, S]
    mask = cache.filled[:, None, :] & causal[None]  # [B, L, S]
    mask = mask | (s[None, None, :] == slots[None, :, None])
    return mask[:, None]


# ----------------------------------------------------------------------------------------------------
# Modules (names follow the official state dict: model.layers.N.self_attn.q_proj.weight, ...)


class HeadNorm(nn.Module):
    """qk-norm: LayerNorm over each head's values (stats only), then the affine of the head's model-parallel
    shard: weight / bias [mp, Hd], repeated over that shard's heads. Runs in fp32 (as under the official
    autocast)."""

    def __init__(self, head_dim: int, model_parallel: int, heads: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(model_parallel, head_dim))
        self.bias = nn.Parameter(torch.zeros(model_parallel, head_dim))
        self.per_shard = heads // model_parallel

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, H, Hd] -> fp32
        x = F.layer_norm(x.float(), (x.shape[-1],), eps=1e-5)
        w = self.weight.float().repeat_interleave(self.per_shard, 0)
        b = self.bias.float().repeat_interleave(self.per_shard, 0)
        return x * w + b


def rope(positions: torch.Tensor, head_dim: int, base: float, factor: float, dtype: torch.dtype):
    """positions [B, L] -> cos, sin [B, 1, L, Hd] (rotate-half layout), fp32 maths rounded to `dtype`."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float()
                               / head_dim))
    freqs = (positions.float() / factor)[..., None] * inv_freq  # [B, L, Hd/2]
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class Attention(nn.Module):
    def __init__(self, cfg: ChameleonConfig):
        super().__init__()
        d, hd = cfg.dim, cfg.head_dim
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.n_kv_head, hd
        self.q_proj = nn.Linear(d, cfg.n_head * hd, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(d, d, bias=cfg.attention_bias)
        self.q_norm = HeadNorm(hd, cfg.model_parallel, cfg.n_head)
        self.k_norm = HeadNorm(hd, cfg.model_parallel, cfg.n_kv_head)

    def forward(self, x, cos, sin, mask, slots, cache_k, cache_v):
        B, L, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, L, self.n_head, self.head_dim)).transpose(1, 2)  # [B, H, L, Hd]
        k = self.k_norm(self.k_proj(x).view(B, L, self.n_kv, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.n_kv, self.head_dim).transpose(1, 2)
        q = (q * cos + _rotate_half(q) * sin).to(x.dtype)
        k = (k * cos + _rotate_half(k) * sin).to(x.dtype)
        if cache_k is None:  # training: the whole sequence at once, causal
            y = F.scaled_dot_product_attention(q, k.repeat_interleave(self.n_head // self.n_kv, 1),
                                               v.repeat_interleave(self.n_head // self.n_kv, 1), is_causal=True)
            return self.o_proj(y.transpose(1, 2).reshape(B, L, -1))
        cache_k.index_copy_(2, slots, k)
        cache_v.index_copy_(2, slots, v)
        rep = self.n_head // self.n_kv
        keys = cache_k.repeat_interleave(rep, 1) if rep > 1 else cache_k
        values = cache_v.repeat_interleave(rep, 1) if rep > 1 else cache_v
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # [B, H, L, Hd]
        return self.o_proj(y.transpose(1, 2).reshape(B, L, -1))


class MLP(nn.Module):
    def __init__(self, cfg: ChameleonConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.ffn_hidden, cfg.dim, bias=cfg.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ChameleonConfig):
        super().__init__()
        self.swin = cfg.swin_norm
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, mask, slots, cache_k, cache_v):
        if self.swin:  # norm after each branch (the 34B)
            h = x + self.input_layernorm(self.self_attn(x, cos, sin, mask, slots, cache_k, cache_v))
            return h + self.post_attention_layernorm(self.mlp(h))
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, slots, cache_k, cache_v)
        return h + self.mlp(self.post_attention_layernorm(h))


class Body(nn.Module):
    def __init__(self, cfg: ChameleonConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)


class ChameleonLM(nn.Module):
    """ChameleonForConditionalGeneration's transformer and head (the VQGAN is a separate file: AR VQGAN)."""

    def __init__(self, cfg: ChameleonConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Body(cfg)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.vocab = None  # a LuminaVocab, set by the loader (the folder's vocabulary_map)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def new_cache(self, batch: int, slots: int) -> KVCache:
        if slots > self.cfg.max_positions:
            raise ValueError(f"{slots} tokens is more than this model reads ({self.cfg.max_positions}): use a "
                             f"smaller picture or a shorter prompt")
        return KVCache(self.cfg, batch, slots, self.dtype, self.device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Training: tokens [B, L] from position 0, no cache -> fp32 logits [B, L, V]."""
        pos = torch.arange(tokens.shape[1], device=tokens.device).expand(tokens.shape[0], -1)
        cos, sin = rope(pos, self.cfg.head_dim, self.cfg.rope_base, self.cfg.rope_linear_factor, self.dtype)
        h = self.model.embed_tokens(tokens)
        for layer in self.model.layers:
            h = layer(h, cos, sin, None, None, None, None)
        return self.lm_head(self.model.norm(h)).float()

    def forward_tokens(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                       cache: KVCache, real: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, L] at cache slots [L] (device) with per-row positions [B, L] -> fp32 logits [B, L, V].
        `real` [B, L] bool: which of these slots hold a real token (False: left padding)."""
        cache.filled[:, slots] = True if real is None else real
        mask = attention_mask(cache, slots)
        cos, sin = rope(positions, self.cfg.head_dim, self.cfg.rope_base, self.cfg.rope_linear_factor, self.dtype)
        h = self.model.embed_tokens(tokens)
        for i, layer in enumerate(self.model.layers):
            h = layer(h, cos, sin, mask, slots, cache.k[i], cache.v[i])
        return self.lm_head(self.model.norm(h)).float()


# ----------------------------------------------------------------------------------------------------
# Loading (Hugging Face folder: config.json + model.safetensors or shards with model.safetensors.index.json)

# Keys an official file may hold that generation does not use: the Chameleon VQ-VAE copy that transformers'
# conversion adds (Lumina-mGPT's training deletes it; its inference reads Meta's vqgan.ckpt instead).
IGNORED_PREFIXES = ("model.vqmodel.",)


def read_config(folder: str) -> tuple[ChameleonConfig, dict]:
    hf = read_config_json(folder)
    return ChameleonConfig.from_hf(hf), hf


def build(cfg: ChameleonConfig, state: Mapping[str, torch.Tensor], dtype: torch.dtype | None, device,
          where: str) -> ChameleonLM:
    """A model from a state dict, strictly: every missing or unexpected key named; built on the meta device and
    filled by assignment, so a 14 GB file is never copied twice."""
    state = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    dtype = dtype or next(iter(state.values())).dtype
    with torch.device("meta"):
        model = ChameleonLM(cfg)
    load_strict(model, {k: v.to(device=device, dtype=dtype) for k, v in state.items()}, where)
    return model.eval().requires_grad_(False)


def approx_bytes(cfg: ChameleonConfig, bytes_per_param: int = 2) -> int:
    return cfg.n_params * bytes_per_param


def kv_bytes_per_row(cfg: ChameleonConfig, tokens: int, bytes_per_value: int = 2) -> int:
    return 2 * cfg.n_layer * cfg.n_kv_head * cfg.head_dim * tokens * bytes_per_value
