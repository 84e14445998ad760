"""Janus-Pro image generation with both CFG branches in one batched pass, and the pickers editing reuses.

The semantics are the official generate()'s (deepseek-ai/Janus generation_inference.py, the README's Janus-Pro
example): the prompt of core.janus.prompt; the unconditional row is the same ids padded between BOS and
<begin_of_image>, at the same positions, its pads attended; every code fed back through gen_aligner(gen_embed);
logits u + w (c - u) in the weights' dtype (bf16 for the released files), then softmax(l / T) over all 16,384 codes
(no top-k or top-p in the official; ours are off by default and off in its defaults). All 576 codes are drawn: no
forced or end token. Rows of different prompt lengths are left-padded and masked, each with its own positions from
0, so each row is what the official computes for its prompt alone.

A picker (SamplePicker, ATM's AnchorPicker) sees guided logits [B, L, C] with the step = the code's index in the
grid, so the editing rules written for LlamaGen apply unchanged, as on Lumina-mGPT.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..llamagen.generate import DRAFT_CHUNK, DecodeStats, draft_loop
from ..llamagen.generate import SamplePicker  # noqa: F401 - re-exported: one sampling rule for every next-token family
from ..lumina.generate import left_pad  # each row left-padded, with its own positions from 0
from ..sampling import combine_cfg
from .model import JanusGen

TokenPicker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[int, int], None]
__all__ = ["SamplePicker", "decode_codes", "DEFAULT_CFG"]

DEFAULT_CFG = 5.0  # the official generate()'s cfg_weight (temperature 1)


@torch.no_grad()
def decode_codes(model: JanusGen, prompts: Sequence[Sequence[int]], scale: torch.Tensor | Sequence[float] | float,
                 pick: TokenPicker, progress: ProgressFn | None = None, draft: torch.Tensor | None = None,
                 forced: torch.Tensor | None = None, max_chunk: int = DRAFT_CHUNK,
                 stats: DecodeStats | None = None) -> torch.Tensor:
    """Prompts (ids from JanusTokenizer.prompt_ids, one per row) -> VQ codes [B, N] (raster order) picked by `pick`.

    With a `draft` [B, N] (an edit's source codes) up to `max_chunk` codes are verified per pass by LlamaGen's draft
    loop, with exactly the codes of one-code-per-pass decoding; `forced` [B, N] marks codes whose pick is the draft's
    whatever the logits (outside a mask)."""
    tok = model.tokenizer
    if tok is None:
        raise ValueError("this model has no tokenizer (load it from its folder: load_janus)")
    B, dev, N = len(prompts), model.device, model.cfg.num_image_tokens
    scale = torch.as_tensor(scale, dtype=torch.float32).expand(B).to(dev) if not isinstance(scale, torch.Tensor) \
        else scale.to(dev, torch.float32).expand(B)
    guided = bool((scale != 1).any())  # host read once: with no guidance the unconditional rows are not run
    rows = [list(p) for p in prompts] + ([tok.unconditional(list(p)) for p in prompts] if guided else [])
    ids, real, pos = left_pad(rows, dev)
    R, P = ids.shape
    cache = model.new_cache(R, P + N - 1)
    slots = torch.arange(P + N, device=dev)
    j = torch.arange(N, device=dev)
    base_pos = pos[:, -1:] + 1  # [R, 1]: each row's position of the first code
    stats = stats if stats is not None else DecodeStats()

    def guide(logits: torch.Tensor) -> torch.Tensor:  # [R, L, C] -> [B, L, C] fp32
        if not guided:
            return logits.float()
        c, u = logits[:B], logits[B:]
        return torch.where(scale[:, None, None] == 1, c.float(), combine_cfg(c, u, scale).float())

    def run(x: torch.Tensor, at: int) -> torch.Tensor:
        """Codes x [B, L] at grid positions at.. -> the picks of the L positions after them."""
        L = x.shape[1]
        stats.passes, stats.positions = stats.passes + 1, stats.positions + L * R
        emb = model.embed_codes(x.repeat(R // B, 1))
        logits = model.forward_embeddings(emb, base_pos + at + j[:L], slots[P + at:P + at + L], cache)
        return pick(j[at + 1:at + 1 + L], guide(logits))

    logits = model.forward_embeddings(model.embed_text(ids), pos, slots[:P], cache, real)[:, -1:]  # [R, 1, C]
    stats.passes, stats.positions = stats.passes + 1, stats.positions + P * R
    codes = torch.empty(B, N, dtype=torch.long, device=dev)
    codes[:, :1] = pick(j[:1], guide(logits))
    if progress is not None:
        progress(1, N)
    if draft is not None and max_chunk > 1:
        return draft_loop(run, progress, codes, draft.to(dev).reshape(B, N), max_chunk,
                          None if forced is None else forced.to(dev).reshape(B, N))
    preview = getattr(progress, "preview", None)
    for n in range(1, N):
        codes[:, n:n + 1] = run(codes[:, n - 1:n], n - 1)
        if progress is not None:
            progress(n + 1, N)
            if preview is not None:
                preview(n + 1, N, lambda: codes[:, :n + 1])
    return codes
