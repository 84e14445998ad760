"""AREdit: training-free editing on Infinity with cached source randomness and an adaptive bit mask.

Paper: "Training-Free Text-Guided Image Editing with Visual Autoregressive Model" (arXiv 2503.23897); its
code is not public, so this follows the paper (shared/docs/infinity_aredit.md):

1. Source cache, built once: the source's bit labels R_k of every scale and P_k = P(bit = 1) under the
   source prompt, from the generation itself (a generated source) or from one teacher-forced pass over
   the VAE's multi-scale labels (a real image). Same CFG / tau path as the edit, so the probabilities
   compare.
2. Edit pass under the target prompt (its own KV cache): scales k < gamma reuse R_k as they are; for the
   others the per-bit mask M_k = [P_src(R_k) - P_tgt(R_k) > threshold] (the probability of the cached bit
   under the source prompt minus under the target prompt) selects the bits to resample from the target;
   R_k^final = M_k R'_k + (1 - M_k) R_k feeds the next scale.
3. Our extension: a user MASK (per scale, a token is editable when its cell is at least half inside)
   keeps every bit outside it.

gamma, threshold and the seed are per row, so a sweep over them is one batched pass over one cache.
threshold > 1 reproduces the source exactly; threshold < -1 with gamma = 0 is the unconstrained target
generation with the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..condition import Condition
from .generate import (BitTokens, InfinitySampling, ProgressFn, check_tokens_fit, run_scales,
                                teacher_forced)
from .model import InfinityTransformer

# Defaults chosen by measurement on ShapesEdit's validation cases with the embedded Infinity-architecture model
# (README "AREdit defaults"): reuse no scale wholesale, and resample a bit only when the target prompt lowers
# its probability by more than 0.8 (the most target scenes reproduced exactly, at the best edit success).
DEFAULT_GAMMA = 0
DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True)
class AREditSettings:
    gamma: int = DEFAULT_GAMMA  # number of leading scales reused as they are
    threshold: float = DEFAULT_THRESHOLD  # in [-1, 1]-ish: > 1 keeps everything, < -1 resamples everything

    def validate(self, n_scales: int | None = None) -> "AREditSettings":
        if self.gamma < 0 or (n_scales is not None and self.gamma > n_scales):
            raise ValueError(f"gamma (scales reused) must be in 0..{n_scales if n_scales is not None else 'K'}, got {self.gamma}")
        if self.threshold != self.threshold:
            raise ValueError("threshold must be a number")
        return self

    def to_dict(self) -> dict:
        return {"gamma": self.gamma, "threshold": self.threshold}


@dataclass
class AREditSource:
    """The cached source, device-resident: labels and probabilities per scale, with what produced them."""

    tokens: BitTokens  # bits R_k, plus condition / seeds / sampling
    p1: list[torch.Tensor]  # P_k(bit = 1) under the source prompt, per scale [B, h, w, d]

    @property
    def batch(self) -> int:
        return self.tokens.batch

    @property
    def schedule(self) -> list[tuple[int, int]]:
        return self.tokens.schedule

    @property
    def sampling(self) -> list[InfinitySampling]:
        return self.tokens.sampling

    def index(self, idx: torch.Tensor) -> "AREditSource":
        dev = self.p1[0].device
        return AREditSource(self.tokens.index(idx), [p[idx.to(dev)] for p in self.p1])


def build_source(model: InfinityTransformer, tokens: BitTokens, source_cond: Condition | None,
                 sampling: InfinitySampling | None = None, progress: ProgressFn | None = None) -> AREditSource:
    """Cache a source. Generated tokens bring their prompt and probabilities (no pass needed when the
    sampling is unchanged); encoded images need `source_cond` and `sampling` and cost one teacher-forced pass."""
    check_tokens_fit(model, tokens)
    cond = source_cond if source_cond is not None else tokens.condition
    if cond is None:
        raise ValueError("a real image as an edit source needs its description (the source prompt)")
    if cond.batch == 1 and tokens.batch > 1:
        cond = cond.index(torch.zeros(tokens.batch, dtype=torch.long))
    if cond.batch != tokens.batch:
        raise ValueError(f"{cond.batch} source prompts for {tokens.batch} source images: give 1 or one per image")
    settings = [sampling] * tokens.batch if sampling is not None else tokens.sampling
    if settings is None:
        raise ValueError("sampling settings are needed to cache an encoded image")
    reuse = (tokens.p1 is not None and source_cond is None and tokens.sampling is not None
             and list(tokens.sampling) == list(settings))
    p1 = tokens.p1 if reuse else teacher_forced(model, cond, tokens, settings, progress)
    bits = [b.to(model.device) for b in tokens.bits]
    src = BitTokens(bits, tokens.schedule, tokens.origin, tokens.patchify, cond, tokens.seeds, list(settings), None)
    return AREditSource(src, [p.to(model.device) for p in p1])


def region_per_scale(region: torch.Tensor | None, schedule: Sequence[tuple[int, int]], batch: int) -> list[torch.Tensor] | None:
    """Editable-token masks per scale from a pixel (or fine-grid) mask [B|1, H, W] in 0..1: a token is
    editable when at least half of its cell is inside."""
    if region is None:
        return None
    m = region.float()
    if m.dim() == 2:
        m = m[None]
    if m.shape[0] not in (1, batch):
        raise ValueError(f"mask batch {m.shape[0]} does not match the edit batch {batch}")
    m = m.expand(batch, -1, -1)[:, None]
    return [(F.interpolate(m, size=hw, mode="area")[:, 0] >= 0.5) for hw in schedule]


@dataclass
class AREditResult:
    tokens: BitTokens
    masks: list[torch.Tensor]  # per scale [B, h, w, d] bool: bits the adaptive mask resampled
    changed: list[torch.Tensor]  # per scale [B, h, w] bool: tokens whose bits differ from the source

    def edit_map(self, gamma: Sequence[int] | None = None) -> torch.Tensor:
        """[B, H, W] in 0..1 on the finest grid: per token, the share of scales whose adaptive mask selected
        any of its bits (averaged over the scales after gamma), each scale upsampled (nearest)."""
        final = self.tokens.grid
        per_scale = torch.stack([F.interpolate(m.any(-1).float()[:, None], size=final, mode="nearest")[:, 0]
                                 for m in self.masks], 1)  # [B, K, H, W]
        K = per_scale.shape[1]
        g = torch.as_tensor(list(gamma) if gamma is not None else [0] * per_scale.shape[0], device=per_scale.device)
        active = (torch.arange(K, device=per_scale.device)[None] >= g[:, None]).float()  # [B, K]
        return (per_scale * active[:, :, None, None]).sum(1) / active.sum(1).clamp_min(1)[:, None, None]


def aredit_edit(model: InfinityTransformer, source: AREditSource, target: Condition,
                settings: AREditSettings | Sequence[AREditSettings], seeds: torch.Tensor,
                region: torch.Tensor | None = None, progress: ProgressFn | None = None,
                compile: str | bool = "off") -> AREditResult:
    """One edit pass for every row of `source` (rows may repeat one source with different settings). `compile`:
    the scales' passes through torch.compile (see run_scales); the picks stay eager."""
    B, K = source.batch, len(source.schedule)
    rows = [settings] * B if isinstance(settings, AREditSettings) else list(settings)
    if len(rows) != B:
        raise ValueError(f"need one AREdit setting per row ({B}), got {len(rows)}")
    for s in rows:
        s.validate(K)
    check_tokens_fit(model, source.tokens)
    if target.batch == 1 and B > 1:
        target = target.index(torch.zeros(B, dtype=torch.long))
    if target.batch != B:
        raise ValueError(f"{target.batch} target prompts for {B} source rows: give 1 or one per row")
    dev = model.device
    gamma = torch.tensor([s.gamma for s in rows], device=dev)
    threshold = torch.tensor([s.threshold for s in rows], dtype=torch.float32, device=dev)
    regions = region_per_scale(region.to(dev) if region is not None else None, source.schedule, B)
    src_bits = [b.reshape(B, -1, b.shape[-1]) for b in source.tokens.bits]
    src_p1 = [p.reshape(B, -1, p.shape[-1]) for p in source.p1]
    masks: list[torch.Tensor] = []

    def pick(k: int, p1: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
        R = src_bits[k]
        p_src = torch.where(R, src_p1[k], 1 - src_p1[k])
        p_tgt = torch.where(R, p1, 1 - p1)
        M = (p_src - p_tgt) > threshold[:, None, None]
        M &= (k >= gamma)[:, None, None]
        if regions is not None:
            M &= regions[k].reshape(B, -1)[:, :, None]
        masks.append(M)
        return torch.where(M, sampled, R)

    bits, p1 = run_scales(model, target, source.schedule, source.sampling, seeds, pick=pick, progress=progress,
                          compile=compile)
    sched = source.schedule
    masks = [m.view(B, h, w, -1) for m, (h, w) in zip(masks, sched)]
    changed = [(b != s).any(-1) for b, s in zip(bits, source.tokens.bits)]
    out = BitTokens(bits, list(sched), "edited", source.tokens.patchify, target, seeds.cpu(), list(source.sampling), p1)
    return AREditResult(out, masks, changed)
