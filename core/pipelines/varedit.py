"""VAREdit pipeline: pictures and instructions -> edited pictures at their own aspect ratio (pasted on a white
square canvas at the model's size, edited with the Scale-Aligned Reference, cropped back). Nodes, batch jobs, the
command line's demo and the benchmark call this."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .. import memory
from ..condition import Condition
from ..defaults import COMPILE
from ..infinity.codec import bits_to_images
from ..infinity.generate import BitTokens, InfinitySampling, ProgressFn
from ..infinity.model import InfinityTransformer
from ..infinity.scales import parse_resolution, scale_schedule
from ..infinity.varedit import canvas, crop_back, default_size, mask_canvas, supported_sizes
from ..infinity.varedit import varedit_edit
from ..infinity.vae import BSQVAE
from ..sampling import seed_tensor
from ..text.encoders import validate_prompts
from .common import per_row
from .infinity import cat_tokens, rows_of, run_memory

def edit_size(net: InfinityTransformer, resolution="auto", name: str = "") -> int:
    """The canvas side an edit runs at ("auto": the checkpoint's own; `name` is its file name)."""
    return parse_resolution(resolution, supported_sizes(net), default_size(net, name))


@dataclass
class VAREditOutput:
    images: list[torch.Tensor]  # per row [3, H, W] in 0..1, at its input's aspect ratio
    tokens: BitTokens  # the edited bits on the square canvas
    sizes: list[tuple[int, int]]  # per row (H, W) of its input


def edit(net: InfinityTransformer, vae: BSQVAE, encoder, images, instructions: Sequence[str], size: int,
         sampling: InfinitySampling | Sequence[InfinitySampling], seeds, mask=None, rows_per_image: int = 1,
         progress: ProgressFn | None = None, memory_budget: int | str | None = "auto",
         compile: str | bool = COMPILE) -> VAREditOutput:
    """Edits each picture (an IMAGE batch, or one [1, H, W, C] each, any sizes) `rows_per_image` times in a row
    (sweeps), every row with its instruction (1 for all, or one per row), sampling and seed. `mask`: one MASK for
    all pictures or one each (1 = may change); outside it the picture's own multi-scale bits are kept. Rows beyond
    `memory_budget` run in micro-batches, with the one-batch result."""
    pictures = images.split(1) if isinstance(images, torch.Tensor) else images
    n, rows = len(pictures), len(pictures) * rows_per_image
    instructions = per_row(instructions, rows, "instructions")
    validate_prompts(instructions)
    fitted = [canvas(p, size) for p in pictures]  # one picture at a time onto its (model-sized) canvas
    src = torch.arange(n).repeat_interleave(rows_per_image)
    x = torch.cat([f[0] for f in fitted])[src]
    sizes = [fitted[i][1] for i in src.tolist()]
    region = None
    if mask is not None:
        masks = list((mask[None] if mask.dim() == 2 else mask).split(1)) if isinstance(mask, torch.Tensor) else mask
        # by index, so a lazy sequence of masks (a batch job's) makes one mask at a time
        region = torch.cat([mask_canvas(masks[i], size) for i in per_row(range(len(masks)), n, "masks")])[src]
    if len(set(instructions)) == 1:  # one instruction: encoded once, shared by every row
        emb = encoder.encode_infinity(instructions[:1])
        cond = Condition(emb.features.expand(rows, -1, -1), emb.mask.expand(rows, -1), instructions, "infinity")
    else:
        emb = encoder.encode_infinity(instructions)
        cond = Condition(emb.features, emb.mask, instructions, "infinity")
    schedule = scale_schedule(size)
    cond, x, seeds = cond.to(net.device), x.to(vae.device), seed_tensor(seeds)
    need = run_memory(net, schedule, prefix_tokens=sum(h * w for h, w in schedule))  # the source's scales come first
    tokens = cat_tokens(memory.in_parts(
        need, rows, memory.run_budget(memory_budget, net.device), "this edit", progress,
        lambda idx, part: varedit_edit(net, vae, cond.index(idx), x[idx.to(x.device)], schedule,
                                       rows_of(sampling, idx, rows), seeds[idx],
                                       None if region is None else rows_of(region, idx, rows), progress=part,
                                       compile=compile)))
    decoded = bits_to_images(vae, tokens)
    if len(set(sizes)) == 1:
        images_out = list(crop_back(decoded, sizes[0]))
    else:  # each back to its own shape
        images_out = [crop_back(decoded[i:i + 1], hw)[0] for i, hw in enumerate(sizes)]
    return VAREditOutput(images_out, tokens, sizes)
