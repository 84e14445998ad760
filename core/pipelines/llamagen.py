"""LlamaGen pipelines: text-to-image, and the source-preserving edits on it (Anchor Token Matching, the naive
same-seed baseline, either inside a mask). Nodes, batch jobs, the command line and the benchmarks call these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..condition import Condition
from ..defaults import COMPILE, defaults
from ..llamagen.atm import ATMSettings, SourceCache, atm_edit, build_source_cache, naive_edit
from ..llamagen.generate import DRAFT_CHUNK, DecodeStats, ProgressFn
from ..llamagen.generate import generate as _generate
from ..llamagen.gpt import LlamaGenGPT
from ..llamagen.vq import LlamaGenVQ, to_unit_range
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from .. import memory
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
             progress: ProgressFn | None = None, compile: str | bool = COMPILE,
             memory_budget: int | str | None = "auto") -> TokenBatch:
    """One image per condition row, each with its own seed -> generated tokens [B, g, g] with their provenance.
    `compile`: decode passes through torch.compile ("auto": on CUDA); the tokens are the same. Rows beyond what
    `memory_budget` holds at once run in micro-batches (see `edit`)."""
    seeds = seed_tensor(seeds)
    g = gpt.cfg.grid_size
    tokens = torch.cat(memory.in_parts(
        decode_memory(gpt), cond.batch, memory.run_budget(memory_budget, gpt.device), "this generation", progress,
        lambda idx, part_progress: _generate(gpt, cond.index(idx), sampling, seeds[idx], progress=part_progress,
                                             compile=compile)))
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
         stats: DecodeStats | None = None, compile: str | bool = COMPILE,
         memory_budget: int | str | None = "auto") -> LlamaGenEdit:
    """Edits every source row with its prompt (`cond`: 1 row for all, or one per row).

    method "atm": Anchor Token Matching; "naive": the same seed under the new prompt, no matching. `mask`: a MASK
    drawn on the source picture (or one per row; 1 = may change), or `region` already on the token grid. `atm` None:
    the model file's own (core.defaults). Rows that do not fit `memory_budget` bytes at once ("auto": the device's
    free memory) run in micro-batches, with the same result."""
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
    atm = atm or defaults(gpt, "atm")

    def run(idx: torch.Tensor, part_progress):  # each row's tokens are its own, so parts give the one-batch result
        args = (gpt, source.select(idx), cond.index(idx), sampling)
        rest = (seeds[idx], None if region is None else region[idx.to(region.device)],
                memory.pick_rows(cfg_scale, idx, rows), part_progress)
        extra = dict(max_chunk=max_chunk, stats=stats, compile=compile)
        if method == "atm":
            return atm_edit(*args, memory.pick_rows(atm, idx, rows), *rest, **extra)
        return naive_edit(*args, *rest, **extra)

    results = memory.in_parts(decode_memory(gpt), rows, memory.run_budget(memory_budget, gpt.device), "this edit",
                              progress, run)
    result_tokens = torch.cat([r.tokens for r in results])
    changed = torch.cat([r.changed for r in results])
    locked = torch.cat([r.locked_fraction for r in results])
    gh, gw = source.grid
    tokens = TokenBatch(result_tokens.view(-1, gh, gw), "edited", cond, seeds, sampling, source.stride)
    return LlamaGenEdit(tokens, changed.view(-1, gh, gw), locked, region)


def decode_memory(gpt: LlamaGenGPT) -> memory.RunMemory:
    """Device memory of a LlamaGen / EditAR decode (with guidance: the largest case), per row and for the weights."""
    prefix = gpt.prefix_len if hasattr(gpt, "prefix_len") else gpt.cfg.cls_token_num
    branches = 3 if getattr(gpt, "layout", "") == "editar" else 2
    return memory.llamagen_decode(gpt.cfg, branches, prefix, gpt.dtype, weights=memory.module_bytes(gpt))

