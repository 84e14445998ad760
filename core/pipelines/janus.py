"""Janus-Pro pipelines: loading a deepseek-ai/Janus-Pro folder (either layout), text-to-image, and Anchor Token
Matching with the naive same-seed baseline, either inside a mask, and sweeps. The edit rules are LlamaGen's
(core.llamagen.atm) on Janus-Pro's image logits; the token distance is LlamaGen's: squared L2 between the
L2-normalised VQ-16 codebook rows (Janus-Pro's tokenizer is LlamaGen's VQ-16, so tau keeps its meaning: tau 1 =
cosine >= 0.5). Nodes, the command line and the benchmarks call these."""
from __future__ import annotations

from typing import Sequence

import torch

from .. import memory
from ..defaults import defaults
from ..janus.files import load_janus
from ..janus.generate import DRAFT_CHUNK, DecodeStats, ProgressFn, SamplePicker, decode_codes
from ..janus.model import JanusGen
from ..llamagen.atm import AnchorPicker, ATMParams, ATMSettings, EditResult, SourceCache
from ..llamagen.vq import LlamaGenVQ
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from ..sweeps import SweepSetting
from . import llamagen
from .common import Images, per_row, sweep_rows, token_region

EDIT_METHODS = ("atm", "naive")
__all__ = ["load_janus", "generate", "encode", "decode", "source_cache", "edit", "sweep", "check_pair"]


def check_pair(vq: LlamaGenVQ, model: JanusGen) -> None:
    if (vq.cfg.codebook_size, vq.downsample) != (model.cfg.image_codes, model.cfg.downsample):
        raise ValueError(f"the VQ has {vq.cfg.codebook_size} codes of {vq.downsample} px, the model draws "
                         f"{model.cfg.image_codes} of {model.cfg.downsample} px: they do not belong together")


def encode_prompts(model: JanusGen, captions: Sequence[str]) -> list[list[int]]:
    if model.tokenizer is None:
        raise ValueError("this model has no tokenizer (load it from its folder: load_janus)")
    return [model.tokenizer.prompt_ids(c) for c in captions]


def decode_memory(model: JanusGen, prompts: Sequence[Sequence[int]]) -> memory.RunMemory:
    """Device memory of a decode of these prompts (both CFG branches), per row and for the weights."""
    return memory.janus_decode(model.cfg, max(map(len, prompts), default=1), model.dtype,
                               weights=memory.module_bytes(model))


def generate(model: JanusGen, captions: Sequence[str], seeds, sampling: SamplingSettings | None = None,
             progress: ProgressFn | None = None, memory_budget: int | str | None = "auto") -> TokenBatch:
    """One picture per caption (each with its own seed) -> codes [B, g, g] (384 px: 24 x 24) with their provenance.
    Rows beyond what `memory_budget` bytes hold at once ("auto": the device's free memory) run in micro-batches;
    each row's codes are its own, so the result is the one-batch result."""
    sampling = (sampling or defaults(model, "sampling")).validate()
    seeds = seed_tensor(seeds)
    prompts = encode_prompts(model, list(captions))
    if seeds.shape != (len(prompts),):
        raise ValueError(f"need one seed per caption ({len(prompts)}), got {seeds.numel()}")
    codes = torch.cat(memory.in_parts(
        decode_memory(model, prompts), len(prompts), memory.run_budget(memory_budget, model.device), "this generation", progress,
        lambda idx, part: decode_codes(model, [prompts[i] for i in idx.tolist()], sampling.cfg_scale,
                                       SamplePicker(sampling, seeds[idx].to(model.device)), part)))
    g = model.cfg.grid_size
    return TokenBatch(codes.view(-1, g, g), "generated", None, seeds.to(codes.device), sampling, model.cfg.downsample)


def encode(vq: LlamaGenVQ, model: JanusGen, images: Images, resize: str = "center_crop") -> TokenBatch:
    """Pictures fitted to the model's size (Janus-Pro: 384 px) -> their VQ codes, an edit's source."""
    check_pair(vq, model)
    return llamagen.encode(vq, images, model.cfg.image_size, resize)


decode = llamagen.decode  # codes [B, g, g] -> images [B, 3, H, W] in 0..1 (the same VQ-16 decoder)


def source_cache(tokens: TokenBatch, vq: LlamaGenVQ, device=None) -> SourceCache:
    """A source with the VQ codebook ATM compares in (L2-normalised rows, squared L2), resident on the device."""
    return llamagen.source_cache(tokens, vq, device)


def edit(model: JanusGen, cache: SourceCache, captions: Sequence[str] | str, seeds, method: str = "atm",
         sampling: SamplingSettings | None = None, atm: ATMSettings | Sequence[ATMSettings] | None = None,
         mask=None, progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
         stats: DecodeStats | None = None, cfg_scale: float | Sequence[float] | None = None,
         memory_budget: int | str | None = "auto") -> EditResult:
    """Regenerate each source row under its edit caption. "atm": every code the windowed candidate nearest to the
    source's code (within tau), else the fallback; "naive": plain sampling with the same seed. `mask` (MASK on the
    picture, or one per row; 1 = may change): outside it the source's codes are kept. The source's codes serve as a
    draft, up to `max_chunk` codes verified per pass (the codes are the same either way). `cfg_scale`: one per row
    (sweeps), else the sampling's. Rows beyond `memory_budget` run in micro-batches, with the same result."""
    if method not in EDIT_METHODS:
        raise ValueError(f"method must be one of {EDIT_METHODS}, got {method!r}")
    sampling = (sampling or defaults(model, "sampling")).validate()
    B, grid = cache.batch, cache.grid
    g = model.cfg.grid_size
    if tuple(grid) != (g, g):
        raise ValueError(f"the source is a {grid[0]}x{grid[1]} code grid; this model draws {g}x{g} "
                         f"({model.cfg.image_size} px): encode the picture at {model.cfg.image_size} px")
    if cache.codebook.shape[0] != model.cfg.image_codes:
        raise ValueError(f"the source's codes index {cache.codebook.shape[0]} entries, this model draws "
                         f"{model.cfg.image_codes}: source and model do not match")
    seeds = seed_tensor(seeds)
    if seeds.shape != (B,):
        raise ValueError(f"need one seed per source row ({B}), got {seeds.numel()}")
    captions = per_row([captions] if isinstance(captions, str) else list(captions), B, "captions")
    prompts = encode_prompts(model, captions)
    region = token_region(mask, grid, cache.stride, B)
    region = None if region is None else region.to(model.device)
    scale = torch.tensor(sampling.cfg_scale if cfg_scale is None else per_row(
        [cfg_scale] if isinstance(cfg_scale, (int, float)) else list(cfg_scale), B, "cfg scales"),
        dtype=torch.float32).expand(B)
    atm = (atm or defaults(model, "atm")) if method == "atm" else None

    def run(idx: torch.Tensor, part_progress) -> torch.Tensor:  # the rows idx: their own codes, whatever the batch
        part, dev_seeds = cache.select(idx), seeds[idx].to(model.device)
        where = None if region is None else region[idx.to(region.device)]
        fixed = None if where is None else ~where.reshape(len(idx), -1)
        if method == "atm":
            params = ATMParams.from_settings(memory.pick_rows(atm, idx, B), len(idx), model.cfg.image_codes)
            pick, draft = AnchorPicker(part, params, sampling, dev_seeds, where), part.anchors
        else:
            pick = SamplePicker(sampling, dev_seeds, fixed, part.anchors)
            draft = None if where is None else part.anchors
        return decode_codes(model, [prompts[i] for i in idx.tolist()], scale[idx], pick, part_progress, draft, fixed,
                            max_chunk, stats)

    codes = torch.cat(memory.in_parts(decode_memory(model, prompts), B, memory.run_budget(memory_budget, model.device), "this edit",
                                      progress, run))
    return EditResult.compare(codes.reshape(B, -1), cache.anchors)


def sweep(model: JanusGen, cache: SourceCache, captions: Sequence[str] | str, settings: Sequence[SweepSetting],
          method: str = "atm", sampling: SamplingSettings | None = None, mask=None,
          progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
          stats: DecodeStats | None = None, memory_budget: int | str | None = "auto") -> EditResult:
    """Every setting (K, alpha, tau, seed, cfg) for every source row as ONE batched decode; row = item * S + j, and
    row j of an item equals the single edit with setting j."""
    rows, captions, seeds, atms, cfgs, mask = sweep_rows(cache.batch, captions, settings, mask)
    return edit(model, cache.select(rows), captions, seeds, method, sampling, atms, mask, progress, max_chunk, stats,
                cfgs, memory_budget)
