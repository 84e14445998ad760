"""ISLock / Anchor Token Matching (ATM): training-free, structure-preserving editing on LlamaGen.

Paper: "Anchor Token Matching: Implicit Structure Locking for Training-free AR Image Editing"
(arXiv 2504.10434). No reference code exists; the open points are choices documented here and in the
README (shared/docs/atm.md lists them):

1. Latent space: the tokenizer's codebook vectors (LlamaGen: L2-normalised 8-d, so the squared distance
   s lies in [0, 4] and tau = 1 means cosine >= 0.5). On Lumina-mGPT the paper compares "first-layer Transformer
   embeddings" by cosine similarity and takes the argmin of s <= tau, so s = 1 - cos there (tau 0.4: cos >= 0.6).
2. Candidates: K draws from the same distribution ordinary sampling uses (CFG, temperature, top-k,
   top-p); the first candidate IS the plain sample. Two readings of "draw K candidates", per row:
   - "distinct" (what "auto" picks for LlamaGen's 16,384 codes): K draws without replacement (Gumbel top-k on the plain sampler's noise), so
     K distinct tokens; when K exceeds the support, every supported token is a candidate.
   - "sampled": K draws with replacement (inverse CDF), duplicates merged. A token is a candidate with
     probability 1 - (1 - p)^K, so on a peaked distribution the candidates are the plausible tokens
     only. "distinct" also admits K - 1 improbable tokens, and when K is a large share of the codebook
     the anchor itself is nearly always among them, so the edit locks back to the source (measured on
     the embedded 256-code model: see the README).
3. Window: of the candidates, the |W_i| most probable; |W_i| = floor(K (1 - alpha i / N)) for step
   i = 0..N-1, at least 1.
4. Fallback when no windowed candidate is within tau: the greedy token (paper) or the plain sample.
5. Sources: a generated sequence (paper) or a real image's VQ tokens (our extension).
6. Region control (our extension): with a token mask, positions outside it keep their anchor token.

Every per-step operation is batched tensor work: one top-k, gathers and a masked argmin over [B, K].
Each row has its own K, alpha, tau, fallback, CFG scale and seed, so a parameter sweep is one batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..condition import Condition
from ..records import TokenBatch
from ..sampling import SamplingSettings, counter_uniform, filter_logits, gumbel_noise, seed_tensor
from .generate import DRAFT_CHUNK, DecodeStats, ProgressFn, SamplePicker, decode_tokens
from .gpt import LlamaGenGPT

FALLBACKS = ("greedy", "sample")
CANDIDATE_MODES = ("auto", "distinct", "sampled")
# "auto": "sampled" once K is this share of the codebook or more. With K distinct draws from a small codebook
# the source token is nearly always a candidate and edits lock back to the source (the embedded 256-code model:
# K = 150 is 59%); LlamaGen's 16,384 codes with the paper's K = 150 (0.9%) keep the paper's distinct draws.
AUTO_SAMPLED_SHARE = 0.1


@dataclass(frozen=True)
class ATMSettings:
    K: int = 150
    alpha: float = 0.6
    tau: float = 1.0
    fallback: str = "greedy"
    candidates: str = "auto"  # see CANDIDATE_MODES and point 2 above

    def validate(self) -> "ATMSettings":
        if self.K < 1:
            raise ValueError(f"K (candidates per step) must be >= 1, got {self.K}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha (window shrink) must be in [0, 1], got {self.alpha}")
        if self.tau != self.tau:
            raise ValueError("tau must be a number")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if self.candidates not in CANDIDATE_MODES:
            raise ValueError(f"candidates must be one of {CANDIDATE_MODES}, got {self.candidates!r}")
        return self

    def to_dict(self) -> dict:
        return {"K": self.K, "alpha": self.alpha, "tau": self.tau, "fallback": self.fallback,
                "candidates": self.candidates}

    def resolved(self, vocab: int) -> "ATMSettings":
        """"auto" candidates made concrete for a codebook of `vocab` entries."""
        if self.candidates != "auto":
            return self
        mode = "sampled" if self.K >= AUTO_SAMPLED_SHARE * vocab else "distinct"
        return ATMSettings(self.K, self.alpha, self.tau, self.fallback, mode)


@dataclass
class SourceCache:
    """Everything an edit reuses from its source, resident on the device: anchor ids [B, N], their
    codebook vectors [B, N, e], the codebook [V, e], and the source's provenance."""

    anchors: torch.Tensor
    anchor_vectors: torch.Tensor
    codebook: torch.Tensor
    grid: tuple[int, int]
    stride: int
    origin: str
    condition: Condition | None = None
    seeds: torch.Tensor | None = None
    settings: SamplingSettings | None = None
    metric: str = "l2"  # "l2": squared distance of the vectors; "cosine": 1 - cos (the vectors are unit length)

    @property
    def batch(self) -> int:
        return self.anchors.shape[0]

    def select(self, index: torch.Tensor) -> "SourceCache":
        """Rows `index` (e.g. repeated for a sweep); tensors are gathered on the device."""
        i = index.to(self.anchors.device)
        return SourceCache(self.anchors[i], self.anchor_vectors[i], self.codebook, self.grid, self.stride, self.origin,
                           None if self.condition is None else self.condition.index(index),
                           None if self.seeds is None else self.seeds[i], self.settings, self.metric)


METRICS = ("l2", "cosine")


def build_source_cache(source: TokenBatch, codebook: torch.Tensor, metric: str = "l2") -> SourceCache:
    """Cache a source: generated tokens (with their condition and seeds) or a real image's VQ tokens.

    `codebook` [V, e] is the table tokens are compared in, computed once: LlamaGen's decoding codebook
    (`vq.quantize.codebook()`, squared L2), or Lumina-mGPT's first-layer embeddings of the image tokens (cosine)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    anchors = source.flat.to(codebook.device)
    if int(anchors.max()) >= codebook.shape[0] or int(anchors.min()) < 0:
        raise ValueError(f"source tokens do not fit a codebook of {codebook.shape[0]} entries: "
                         f"tokenizer and tokens do not match")
    cb = codebook.float()
    if metric == "cosine":
        cb = torch.nn.functional.normalize(cb, dim=-1)
    return SourceCache(anchors, cb[anchors], cb, source.grid, source.stride, source.origin,
                       source.condition, source.seeds, source.settings, metric)


@dataclass
class ATMParams:
    """Per-row ATM parameters (host tensors [B]); a single setting is broadcast."""

    K: torch.Tensor
    alpha: torch.Tensor
    tau: torch.Tensor
    sample_fallback: torch.Tensor  # bool
    with_replacement: torch.Tensor  # bool: "sampled" candidates

    @classmethod
    def from_settings(cls, settings: ATMSettings | Sequence[ATMSettings], batch: int, vocab: int) -> "ATMParams":
        rows = [settings] * batch if isinstance(settings, ATMSettings) else list(settings)
        if len(rows) != batch:
            raise ValueError(f"need one ATM setting per batch row ({batch}), got {len(rows)}")
        rows = [r.validate().resolved(vocab) for r in rows]
        return cls(torch.tensor([r.K for r in rows], dtype=torch.int64),
                   torch.tensor([r.alpha for r in rows], dtype=torch.float64),
                   torch.tensor([r.tau for r in rows], dtype=torch.float32),
                   torch.tensor([r.fallback == "sample" for r in rows]),
                   torch.tensor([r.candidates == "sampled" for r in rows]))

    def window_sizes(self, n_steps: int) -> torch.Tensor:
        """[B, N] int64: |W_i| = floor(K (1 - alpha i / N)), at least 1, computed in float64 once."""
        i = torch.arange(n_steps, dtype=torch.float64)
        w = torch.floor(self.K[:, None].double() * (1 - self.alpha[:, None] * i[None] / n_steps))
        return w.clamp(min=1).to(torch.int64)


@dataclass
class ATMTrace:
    """Optional per-step record (for tests and analysis): windows [B], matched [B] for each step."""

    windows: list[torch.Tensor] = field(default_factory=list)
    matched: list[torch.Tensor] = field(default_factory=list)


class AnchorPicker:
    """The per-step token rule. Called by the shared decoding loop with the guided logits."""

    def __init__(self, cache: SourceCache, params: ATMParams, sampling: SamplingSettings, seeds: torch.Tensor,
                 region: torch.Tensor | None, trace: ATMTrace | None = None):
        device = cache.anchors.device
        self.cache, self.sampling, self.trace = cache, sampling, trace
        self.seeds = seeds.to(device)
        n = cache.anchors.shape[1]
        vocab = cache.codebook.shape[0]
        self.k_max = int(min(int(params.K.max()), vocab))
        self.K = params.K.clamp(max=vocab).to(device)
        self.windows = params.window_sizes(n).to(device)  # [B, N]
        self.tau = params.tau.to(device)
        self.sample_fallback = params.sample_fallback.to(device)
        self.with_replacement = params.with_replacement.to(device)
        self.any_with_replacement = bool(params.with_replacement.any())  # host value, read once
        self.region = None if region is None else region.reshape(region.shape[0], -1).to(device)
        self.slots = torch.arange(self.k_max, device=device)

    def __call__(self, steps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """steps [L] (device), guided logits [B, L, V] -> tokens [B, L]: every step of a chunk at once."""
        filtered = filter_logits(logits, self.sampling)  # [B, L, V]
        perturbed = filtered + gumbel_noise(self.seeds, steps, filtered.shape[-1])
        cand = perturbed.topk(self.k_max, dim=-1).indices  # [B, L, K] Gumbel top-k = K draws w/o replacement
        sampled = cand[..., 0] if not self.sampling.greedy else filtered.argmax(-1)  # = the plain sampler's token
        valid = (self.slots < self.K[:, None])[:, None].expand_as(cand)
        if self.any_with_replacement:
            cand, valid = self._with_replacement(steps, filtered, cand, valid)
        cand_logit = filtered.gather(-1, cand)
        valid = valid & torch.isfinite(cand_logit)
        # Window: the |W_i| most probable valid candidates (rank by probability, stable for ties).
        order = torch.where(valid, cand_logit, float("-inf")).argsort(dim=-1, descending=True, stable=True)
        rank = torch.empty_like(order).scatter_(-1, order, self.slots.expand_as(order))
        window = self.windows.index_select(1, steps)  # [B, L]
        in_window = valid & (rank < window[..., None])
        anchor_vec = self.cache.anchor_vectors.index_select(1, steps)  # [B, L, e]
        if self.cache.metric == "cosine":  # unit vectors: 1 - cos
            dist = 1 - (self.cache.codebook[cand] * anchor_vec[:, :, None]).sum(-1)  # [B, L, K]
        else:
            dist = (self.cache.codebook[cand] - anchor_vec[:, :, None]).pow(2).sum(-1)  # [B, L, K]
        dist = dist.masked_fill(~in_window, float("inf"))
        best_dist, best = dist.min(-1)
        matched = best_dist <= self.tau[:, None]
        fallback = torch.where(self.sample_fallback[:, None], sampled, filtered.argmax(-1))
        token = torch.where(matched, cand.gather(-1, best[..., None])[..., 0], fallback)
        if self.region is not None:
            inside = self.region.index_select(1, steps)
            token = torch.where(inside, token, self.cache.anchors.index_select(1, steps))
            matched = matched & inside
        if self.trace is not None:  # a Python side effect: traced edits decode eagerly, one step per pass
            self.trace.windows.extend(window.unbind(1))
            self.trace.matched.extend(matched.unbind(1))
        return token

    def _with_replacement(self, steps: torch.Tensor, filtered: torch.Tensor, cand: torch.Tensor, valid: torch.Tensor):
        """Rows in "sampled" mode: the plain sample plus K - 1 inverse-CDF draws (own noise stream), sorted
        with repeats marked invalid. -> (candidates [B, L, K], valid [B, L, K])."""
        cdf = filtered.softmax(-1).cumsum(-1)  # [B, L, V]; filtered-out tokens add nothing
        u = counter_uniform(self.seeds, steps, self.k_max, stream=1) * cdf[..., -1:]
        draws = torch.searchsorted(cdf, u, right=True).clamp(max=cdf.shape[-1] - 1)  # right: never a p = 0 token
        draws = torch.cat([cand[..., :1], draws[..., 1:]], -1)
        draws = torch.where(valid, draws, draws[..., :1])  # slots beyond this row's K repeat the first draw
        draws = draws.sort(-1).values
        first = torch.cat([torch.ones_like(valid[..., :1]), draws[..., 1:] != draws[..., :-1]], -1)
        rows = self.with_replacement[:, None, None]
        return torch.where(rows, draws, cand), torch.where(rows, first, valid)


@dataclass
class EditResult:
    tokens: torch.Tensor  # [B, N]
    changed: torch.Tensor  # [B, N] bool: token differs from its anchor
    locked_fraction: torch.Tensor  # [B] float: share of positions equal to their anchor

    @classmethod
    def compare(cls, tokens: torch.Tensor, anchors: torch.Tensor) -> "EditResult":
        changed = tokens != anchors
        return cls(tokens, changed, 1.0 - changed.float().mean(1))


def _check_edit_inputs(model: LlamaGenGPT, cache: SourceCache, cond: Condition, seeds: torch.Tensor,
                       region: torch.Tensor | None) -> None:
    n = cache.anchors.shape[1]
    if n != model.cfg.num_image_tokens:
        g = model.cfg.grid_size
        raise ValueError(f"the source is a {cache.grid[0]}x{cache.grid[1]} token grid but this model generates "
                         f"{g}x{g} ({g * model.cfg.downsample} px): encode the image at {g * model.cfg.downsample} px")
    if model.cfg.vocab_size != cache.codebook.shape[0]:
        raise ValueError(f"the tokenizer has {cache.codebook.shape[0]} codes but the model predicts "
                         f"{model.cfg.vocab_size}: tokenizer and model do not match")
    if cond.batch != cache.batch:
        raise ValueError(f"edit condition batch {cond.batch} does not match source batch {cache.batch}")
    if seeds.shape != (cache.batch,):
        raise ValueError(f"need one seed per row ({cache.batch}), got {list(seeds.shape)}")
    if region is not None and region.reshape(region.shape[0], -1).shape != (cache.batch, n):
        raise ValueError(f"region mask must be [B, {cache.grid[0]}, {cache.grid[1]}], got {list(region.shape)}")


def atm_edit(model: LlamaGenGPT, cache: SourceCache, edit_cond: Condition, sampling: SamplingSettings,
             atm: ATMSettings | Sequence[ATMSettings], seeds: Sequence[int] | torch.Tensor,
             region: torch.Tensor | None = None, cfg_scale: float | Sequence[float] | None = None,
             progress: ProgressFn | None = None, trace: ATMTrace | None = None, max_chunk: int = DRAFT_CHUNK,
             stats: DecodeStats | None = None, compile: str | bool = "off") -> EditResult:
    """Regenerate under `edit_cond`, matching each step to the source's anchor token.

    atm: one setting, or one per row (sweeps). region: optional bool [B, h, w] (True = may change).
    The anchors serve as a draft verified up to `max_chunk` tokens per forward pass (1 = one token per pass;
    the tokens are the same either way). A `trace` records every pick, so it decodes one token per pass."""
    sampling.validate()
    seeds_t = seed_tensor(seeds)
    _check_edit_inputs(model, cache, edit_cond, seeds_t, region)
    params = ATMParams.from_settings(atm, cache.batch, cache.codebook.shape[0])
    pick = AnchorPicker(cache, params, sampling, seeds_t, region, trace)
    scale = sampling.cfg_scale if cfg_scale is None else cfg_scale
    forced = None if region is None else ~region.reshape(cache.batch, -1)
    tokens = decode_tokens(model, edit_cond, scale, pick, progress, draft=cache.anchors,
                           max_chunk=1 if trace is not None else max_chunk, stats=stats, forced=forced,
                           compile=False if trace is not None else compile)
    return EditResult.compare(tokens, cache.anchors)


def naive_edit(model: LlamaGenGPT, cache: SourceCache, edit_cond: Condition, sampling: SamplingSettings,
               seeds: Sequence[int] | torch.Tensor, region: torch.Tensor | None = None,
               cfg_scale: float | Sequence[float] | None = None, progress: ProgressFn | None = None,
               max_chunk: int = DRAFT_CHUNK, stats: DecodeStats | None = None,
               compile: str | bool = "off") -> EditResult:
    """Naive prompt modification (NPM): the same seed, the edit prompt, no matching (baseline). With a
    region, positions outside it still keep their source token, and are verified `max_chunk` per pass."""
    sampling.validate()
    seeds_t = seed_tensor(seeds)
    _check_edit_inputs(model, cache, edit_cond, seeds_t, region)
    device = cache.anchors.device
    fixed = None if region is None else ~region.reshape(cache.batch, -1).to(device)
    pick = SamplePicker(sampling, seeds_t.to(device), fixed, cache.anchors)
    scale = sampling.cfg_scale if cfg_scale is None else cfg_scale
    tokens = decode_tokens(model, edit_cond, scale, pick, progress, draft=None if region is None else cache.anchors,
                           max_chunk=max_chunk, stats=stats, forced=fixed, compile=compile)
    return EditResult.compare(tokens, cache.anchors)
