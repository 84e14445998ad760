"""Sampling primitives shared by every generator: logit filtering and counter-based random noise.

Randomness is a pure function of (seed, step, stream, index) computed with integer hashing on the
device. Each batch row carries its own seed, so a row's result does not depend on what else is in the
batch (a sweep item equals the single run with the same seed), no host round trip is needed, and the
same seed gives the same noise on every device. Sampling from softmax(l) is done as
argmax(l + Gumbel noise), which has exactly the categorical distribution; taking the top K of the same
perturbed logits draws K tokens without replacement (Gumbel top-k).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_MASK32 = 0xFFFFFFFF
SEED_RANGE = 2 ** 64  # seeds are unsigned 64-bit, as ComfyUI's seed widgets allow


def seed_tensor(seeds) -> torch.Tensor:
    """Seeds 0 .. 2**64 - 1 (Python ints, or a tensor already converted) -> int64 [B], bijectively: a seed of
    2**63 or more is stored as its two's-complement int64, whose low and high 32 bits (all the noise reads)
    are the seed's own, so every seed gives its own noise and smaller seeds are unchanged."""
    if isinstance(seeds, torch.Tensor):
        return seeds.to(torch.int64)
    out = []
    for s in seeds:
        s = int(s)
        if not 0 <= s < SEED_RANGE:
            raise ValueError(f"seed {s} is outside 0 .. 2**64 - 1")
        out.append(s - SEED_RANGE if s >= 2 ** 63 else s)
    return torch.tensor(out, dtype=torch.int64)


def seed_plus(seed: int, i: int) -> int:
    """The i-th seed after `seed` (a batch's seed, seed + 1, ...), wrapping at 2**64 like the widget's range."""
    if not 0 <= int(seed) < SEED_RANGE:
        raise ValueError(f"seed {seed} is outside 0 .. 2**64 - 1")
    return (int(seed) + i) % SEED_RANGE


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash on int64 tensors holding values in [0, 2^32).

    Products may wrap in int64, but only their low 32 bits are kept, and those are exact.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def counter_uniform(seeds: torch.Tensor, step: int | torch.Tensor, n: int, stream: int = 0) -> torch.Tensor:
    """Uniform noise in (0, 1), float32, for per-row `seeds` [B]: [B, n] at one decoding `step` (an int), or
    [B, L, n] for steps given as a tensor [L] (a draft chunk: the same noise as L one-step calls)."""
    seeds = seeds.to(torch.int64)
    device = seeds.device
    lo = seeds & _MASK32
    hi = (seeds >> 32) & _MASK32
    if isinstance(step, torch.Tensor):  # int64 products stay exact: step < 2**31 and the constants < 2**32
        salt = (step.to(device=device, dtype=torch.int64) * 0x632BE5AB + stream * 0x85157AF5) & _MASK32
        key = _mix32(_mix32(lo ^ _mix32(hi + 0x9E3779B9))[:, None] ^ salt[None, :])[..., None]  # [B, L, 1]
    else:
        key = _mix32(_mix32(lo ^ _mix32(hi + 0x9E3779B9)) ^ ((step * 0x632BE5AB + stream * 0x85157AF5) & _MASK32))
        key = key[:, None]  # [B, 1]
    idx = torch.arange(n, device=device, dtype=torch.int64)
    h = _mix32(_mix32(idx ^ key) + key & _MASK32)
    # 24 high bits -> a float32 strictly inside (0, 1).
    return ((h >> 8).to(torch.float32) + 0.5) * (1.0 / 16777216.0)


def gumbel_noise(seeds: torch.Tensor, step: int | torch.Tensor, n: int, stream: int = 0) -> torch.Tensor:
    u = counter_uniform(seeds, step, n, stream)
    return -torch.log(-torch.log(u))


@dataclass(frozen=True)
class SamplingSettings:
    """How a token is drawn from the model's logits (LlamaGen's sampler semantics)."""

    cfg_scale: float = 7.5
    temperature: float = 1.0
    top_k: int = 1000  # 0 = no top-k filtering
    top_p: float = 1.0  # 1.0 = no nucleus filtering

    def validate(self) -> "SamplingSettings":
        if not (0.0 <= self.cfg_scale < float("inf")):
            raise ValueError(f"cfg_scale must be a number >= 0, got {self.cfg_scale}")
        if not (0.0 <= self.temperature < float("inf")):
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1

    def to_dict(self) -> dict:
        return {"cfg_scale": self.cfg_scale, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


def combine_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """logits = u + s * (c - u), with a per-row scale [B] (logits [B, V] or [B, L, V])."""
    return uncond + per_row(scale, cond) * (cond - uncond)


def per_row(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-row value [B] shaped to broadcast over `like` [B, ...]."""
    return scale.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def filter_logits(logits: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """Temperature, then top-k, then top-p (HF convention: the best token always survives).

    Filtered-out entries become -inf. `logits` is [..., V] float32 and is not modified.
    """
    logits = logits / max(settings.temperature, 1e-5)
    vocab = logits.shape[-1]
    if 0 < settings.top_k < vocab:
        kth = torch.topk(logits, settings.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if settings.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove_sorted = cumulative > settings.top_p
        # Shift right so the token that crosses the threshold is kept, and never drop the best one.
        remove_sorted = torch.cat([torch.zeros_like(remove_sorted[..., :1]), remove_sorted[..., :-1]], dim=-1)
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def sample_tokens(filtered: torch.Tensor, seeds: torch.Tensor, step: int | torch.Tensor, greedy: bool) -> torch.Tensor:
    """One token per row [B] from filtered logits [B, V] at one step, or [B, L] from [B, L, V] at steps [L]."""
    if greedy:
        return filtered.argmax(-1)
    return (filtered + gumbel_noise(seeds, step, filtered.shape[-1])).argmax(-1)
