"""Infinity pipelines: next-scale text-to-image, and AREdit (training-free editing from a cached source).
Nodes, batch jobs, the command line's demo and the benchmark call these."""
from __future__ import annotations

from typing import Sequence

import torch

from .. import memory
from ..condition import Condition
from ..defaults import COMPILE
from ..infinity.aredit import AREditResult, AREditSettings, AREditSource, aredit_edit, build_source
from ..infinity.codec import bits_to_images, image_to_bits
from ..infinity.generate import BitTokens, InfinitySampling, ProgressFn
from ..infinity.generate import generate as _generate
from ..infinity.model import InfinityTransformer
from ..infinity.scales import STRIDE, parse_aspect, parse_resolution, scale_schedule, tier_of
from ..infinity.vae import BSQVAE
from ..sampling import seed_tensor
from .common import pixel_region

def text_condition(text_encoder, prompts: Sequence[str], device=None) -> Condition:
    """Caption features the Infinity way (raw text, valid tokens only, right-padded)."""
    emb = text_encoder.encode_infinity(list(prompts))
    cond = Condition(emb.features, emb.mask, list(emb.prompts), "infinity")
    return cond if device is None else cond.to(device)


def schedule_for(net: InfinityTransformer, resolution="auto", aspect_ratio="1:1") -> list[tuple[int, int]]:
    """The scales of a picture at a resolution tier ("auto": the model's largest) and width:height."""
    return scale_schedule(parse_resolution(resolution, net.resolutions), parse_aspect(aspect_ratio))


def check_tier(net: InfinityTransformer, schedule) -> None:
    """Tokens coded at a tier the model was not trained for would run (slowly) and give nonsense (the loop's own
    check_schedule only bounds the number of scales)."""
    if tier_of(schedule) not in net.resolutions:
        raise ValueError(f"these tokens span {len(schedule)} scales up to {schedule[-1][0]}x{schedule[-1][1]}, a size "
                         f"this model does not make: encode the image at one of {list(net.resolutions)} "
                         f"(AR Image to Bits, size)")


def run_memory(net: InfinityTransformer, schedule, prefix_tokens: int = 0) -> memory.RunMemory:
    """Device memory of an Infinity / AREdit / VAREdit run over `schedule` (with guidance), per row and weights."""
    return memory.infinity_run(net.cfg, schedule, net.dtype, prefix_tokens=prefix_tokens,
                               weights=memory.module_bytes(net))


def rows_of(value, idx: torch.Tensor, rows: int):
    """A per-row argument (one for all, or one per row: a sequence, a tensor or a Condition) restricted to idx."""
    if isinstance(value, Condition):
        return value if value.batch != rows else value.index(idx)
    return memory.pick_rows(value, idx, rows)


def cat_tokens(parts: list[BitTokens]) -> BitTokens:
    """Bits of several batches (micro-batches, or pictures encoded one by one; with their probabilities,
    conditions, seeds and settings where they have them) as one batch, in order."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    cond = None if first.condition is None else first.condition._with(
        torch.cat([t.condition.raw for t in parts]),
        None if first.condition.mask is None else torch.cat([t.condition.mask for t in parts]),
        [p for t in parts for p in t.condition.prompts])
    return BitTokens([torch.cat(b) for b in zip(*(t.bits for t in parts))], list(first.schedule), first.origin,
                     first.patchify, cond, None if first.seeds is None else torch.cat([t.seeds for t in parts]),
                     None if first.sampling is None else [s for t in parts for s in t.sampling],
                     None if first.p1 is None else [torch.cat(p) for p in zip(*(t.p1 for t in parts))])


def generate(net: InfinityTransformer, cond: Condition, schedule, sampling: InfinitySampling | Sequence[InfinitySampling],
             seeds, progress: ProgressFn | None = None, negative: Condition | None = None,
             memory_budget: int | str | None = "auto", compile: str | bool = COMPILE) -> BitTokens:
    """One picture per condition row, each with its own seed; the bits keep their probabilities (a free AREdit
    source). Rows beyond what `memory_budget` bytes hold at once ("auto": the device's free memory) run in
    micro-batches: each row's bits are its own, so the result is the one-batch result. `compile`: each scale's pass
    through torch.compile ("auto": on CUDA); the bits are the same."""
    seeds, rows = seed_tensor(seeds), cond.batch
    return cat_tokens(memory.in_parts(
        run_memory(net, schedule), rows, memory.run_budget(memory_budget, net.device), "this generation", progress,
        lambda idx, part: _generate(net, cond.index(idx), schedule, rows_of(sampling, idx, rows), seeds[idx],
                                    progress=part, negative=None if negative is None else rows_of(negative, idx, rows),
                                    compile=compile)))


def encode(vae: BSQVAE, images, resolution: int, resize: str = "center_crop") -> list[tuple[list[int], BitTokens]]:
    """Pictures (an IMAGE batch, or one [1, H, W, C] per row, any sizes) -> their multi-scale bits, one group per
    grid: rows of the same aspect template share a group (in first-seen order) -> [(rows, bits)]."""
    if isinstance(images, torch.Tensor):
        return [(list(range(images.shape[0] if images.dim() == 4 else 1)), image_to_bits(vae, images, resolution, resize))]
    groups: dict[tuple, tuple[list[int], list[BitTokens]]] = {}
    for i, image in enumerate(images):
        bits = image_to_bits(vae, image, resolution, resize)
        rows, parts = groups.setdefault(tuple(map(tuple, bits.schedule)), ([], []))
        rows.append(i)
        parts.append(bits)
    return [(rows, cat_tokens(parts)) for rows, parts in groups.values()]


def decode(vae: BSQVAE, tokens: BitTokens) -> torch.Tensor:
    """Bits -> pictures [B, 3, H, W] in 0..1."""
    return bits_to_images(vae, tokens)


def aredit_source(net: InfinityTransformer, tokens: BitTokens, source_cond: Condition | None = None,
                  sampling: InfinitySampling | None = None, progress: ProgressFn | None = None) -> AREditSource:
    """The source's bits and per-bit probabilities under its prompt: free for generated tokens (their own), one
    teacher-forced pass for a picture's bits (which need `source_cond` and `sampling`)."""
    check_tier(net, tokens.schedule)
    return build_source(net, tokens, source_cond, sampling, progress=progress)


def aredit(net: InfinityTransformer, source: AREditSource, target: Condition,
           settings: AREditSettings | Sequence[AREditSettings], seeds, mask=None,
           progress: ProgressFn | None = None, memory_budget: int | str | None = "auto",
           compile: str | bool = COMPILE) -> AREditResult:
    """One AREdit pass for every source row under its target prompt (1 for all, or one per row). `mask`: a MASK
    on the source picture (or one per row; 1 = may change). Rows beyond `memory_budget` run in micro-batches, with
    the one-batch result."""
    region = pixel_region(mask, source.tokens.grid, STRIDE)
    target, seeds, rows = target.to(net.device), seed_tensor(seeds), source.batch
    parts = memory.in_parts(
        run_memory(net, source.schedule), rows, memory.run_budget(memory_budget, net.device), "this edit", progress,
        lambda idx, part: aredit_edit(net, source.index(idx), rows_of(target, idx, rows), rows_of(settings, idx, rows),
                                      seeds[idx], None if region is None else rows_of(region, idx, rows),
                                      progress=part, compile=compile))
    if len(parts) == 1:
        return parts[0]
    return AREditResult(cat_tokens([r.tokens for r in parts]), [torch.cat(m) for m in zip(*(r.masks for r in parts))],
                        [torch.cat(c) for c in zip(*(r.changed for r in parts))])
