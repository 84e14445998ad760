"""LlamaGen pipelines: text-to-image, and the source-preserving edits on it (Anchor Token Matching, the naive
same-seed baseline, either inside a mask). Nodes, batch jobs, the command line and the benchmarks call these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..condition import Condition
from ..defaults import defaults
from ..llamagen.atm import ATMSettings, SourceCache, atm_edit, build_source_cache, naive_edit
from ..llamagen.generate import DRAFT_CHUNK, DecodeStats, ProgressFn
from ..llamagen.generate import generate as _generate
from ..llamagen.gpt import LlamaGenGPT
from ..llamagen.vq import LlamaGenVQ, to_unit_range
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from .common import Images, fit_images, token_region

EDIT_METHODS = ("atm", "naive")


def check_pair(vq: LlamaGenVQ, model: LlamaGenGPT) -> None:
    """A tokenizer and a model that code with different codebooks cannot belong together."""
    if vq.cfg.codebook_size != model.cfg.vocab_size:
        raise ValueError(f"the tokenizer has {vq.cfg.codebook_size} codes, the model {model.cfg.vocab_size}: they do "
                         f"not belong together")


def check_codes(tokens: torch.Tensor, vq: LlamaGenVQ, name: str = "the tokenizer") -> None:
    if tokens.numel() and int(tokens.max()) >= vq.cfg.codebook_size:
        raise ValueError(f"the tokens use codes up to {int(tokens.max())} but {name} has {vq.cfg.codebook_size}: "
                         f"use the tokenizer that made them")


def text_condition(text_encoder, prompts: Sequence[str], device=None) -> Condition:
    """Caption features the LlamaGen way (the encoder's own cleaning, padding and length)."""
    emb = text_encoder.encode(list(prompts))
    cond = Condition(emb.features, emb.mask, list(emb.prompts))
    return cond if device is None else cond.to(device)


def generate(gpt: LlamaGenGPT, cond: Condition, sampling: SamplingSettings, seeds,
             progress: ProgressFn | None = None) -> TokenBatch:
    """One image per condition row, each with its own seed -> generated tokens [B, g, g] with their provenance."""
    seeds = seed_tensor(seeds)
    g = gpt.cfg.grid_size
    tokens = _generate(gpt, cond, sampling, seeds, progress=progress)
    return TokenBatch(tokens.view(-1, g, g), "generated", cond, seeds.to(tokens.device), sampling, gpt.cfg.downsample)


def encode(vq: LlamaGenVQ, images: Images, size, resize: str = "center_crop", resample: str = "auto") -> TokenBatch:
    """Pictures fitted to `size` by `resize` -> their VQ tokens (an edit source, or EditAR's input)."""
    x = fit_images(images, size, resize, vq.downsample, resample)
    with torch.inference_mode():
        ids = vq.encode(x.to(vq.quant_conv.weight.device))
    return TokenBatch(ids, "encoded", stride=vq.downsample)


def decode(vq: LlamaGenVQ, tokens: TokenBatch | torch.Tensor) -> torch.Tensor:
    """Tokens [B, h, w] -> images [B, 3, H, W] in 0..1."""
    ids = tokens.tokens if isinstance(tokens, TokenBatch) else tokens
    check_codes(ids, vq)
    with torch.inference_mode():
        return to_unit_range(vq.decode(ids.to(vq.quant_conv.weight.device)))


def source_cache(tokens: TokenBatch, vq: LlamaGenVQ, device=None) -> SourceCache:
    """A source (generated, or a picture's tokens) with the tokenizer's codebook, resident on the device."""
    check_codes(tokens.tokens, vq)
    with torch.inference_mode():
        codebook = vq.quantize.codebook().float()
    return build_source_cache(tokens, codebook if device is None else codebook.to(device))


@dataclass
class LlamaGenEdit:
    tokens: TokenBatch  # edited [B, gh, gw]
    changed: torch.Tensor  # bool [B, gh, gw]: differs from the source token
    locked_fraction: torch.Tensor  # [B]: share of tokens equal to the source's
    region: torch.Tensor | None  # bool [B, gh, gw] the edit was allowed in (None: everywhere)


def edit(gpt: LlamaGenGPT, source: SourceCache, cond: Condition, sampling: SamplingSettings,
         atm: ATMSettings | Sequence[ATMSettings] | None, seeds, method: str = "atm", mask=None,
         cfg_scale: float | Sequence[float] | None = None, progress: ProgressFn | None = None,
         max_chunk: int = DRAFT_CHUNK, region: torch.Tensor | None = None,
         stats: DecodeStats | None = None) -> LlamaGenEdit:
    """Edits every source row with its prompt (`cond`: 1 row for all, or one per row).

    method "atm": Anchor Token Matching; "naive": the same seed under the new prompt, no matching. `mask`: a MASK
    drawn on the source picture (or one per row; 1 = may change), or `region` already on the token grid. `atm` None:
    the model file's own (core.defaults)."""
    if method not in EDIT_METHODS:
        raise ValueError(f"method must be one of {list(EDIT_METHODS)}, got {method!r}")
    rows = source.batch
    if cond.batch not in (1, rows):
        raise ValueError(f"edit prompts ({cond.batch}) must be 1 or one per source image ({rows})")
    if cond.batch != rows:
        cond = cond.index(torch.zeros(rows, dtype=torch.long))
    cond = cond.to(gpt.device)
    if region is None:
        region = token_region(mask, source.grid, source.stride, rows)
    region = None if region is None else region.to(gpt.device)
    seeds = seed_tensor(seeds)
    if method == "atm":
        result = atm_edit(gpt, source, cond, sampling, atm or defaults(gpt, "atm"), seeds, region, cfg_scale, progress,
                          max_chunk=max_chunk, stats=stats)
    else:
        result = naive_edit(gpt, source, cond, sampling, seeds, region, cfg_scale, progress, max_chunk=max_chunk,
                            stats=stats)
    gh, gw = source.grid
    tokens = TokenBatch(result.tokens.view(-1, gh, gw), "edited", cond, seeds, sampling, source.stride)
    return LlamaGenEdit(tokens, result.changed.view(-1, gh, gw), result.locked_fraction, region)
