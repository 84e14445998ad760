"""VAREdit: instruction editing with a fine-tuned Infinity and the Scale-Aligned Reference (SAR).

Facts from the official HiDream-ai/VAREdit code (shared/docs/editar_varedit.md), implemented anew:
- Source: the image is pasted at (0, 0) on a white square, resized (Lanczos) to 512/1024, and the VAE
  encoder's continuous features (not quantised) of the finest grid (8B: 2x2 pixel-unshuffled) go
  through `word_embed`, with the level embedding of the last scale. The source tokens sit in front of the
  scales in every layer's KV cache and attend to each other bidirectionally, once per CFG branch (the
  null-text branch sees the source under the null text).
- SAR: in layer 0 the queries of target scale k see the source keys/values area-downsampled from the
  finest grid to (h_k, w_k) (after RoPE), then the target tokens so far; every other layer sees the
  full-resolution source.
- RoPE quirk, kept for checkpoint fidelity: one table built from the 1024 px template, [source block of
  the 64x64 grid at positions (64 + i, 64 + j) | the 13 scales]; source tokens read it from 0 in raster
  order of the 64-wide grid, the scales from H*W of the actual final grid (so at 512 px they fall inside
  the source block).
- CFG on logits with the learned null text, per-bit sampling with top-p 0.97 (the Infinity sampler).

Beyond the original: a user MASK keeps the source's own multi-scale bits (the VAE's labels of the source)
outside the region; rows carry their own CFG / seed, so sweeps are one batched pass.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..condition import Condition
from ..images import _resize
from .aredit import region_per_scale
from .bsq import quantize_multiscale
from .codec import check_pair
from .generate import (BitTokens, InfinitySampling, Prefix, ProgressFn, per_row, run_scales,
                                vae_bits_to_tokens, vae_schedule)
from .model import InfinityTransformer, _angles, scale_positions
from .scales import SMALL_TIERS, TEMPLATES, reference_grid, total_tokens
from .vae import BSQVAE

# The paper and the function signature use cfg 4.0 / tau 0.5; the demo script uses 3.0 / 0.1 (and its
# main() 3.0 / 1.0). We follow the paper: it is what the reported numbers were measured with.
DEFAULT_CFG = 4.0
DEFAULT_TAU = 0.5
SIZES = (512, 1024)


def supported_sizes(model: InfinityTransformer) -> list[int]:
    """The canvas sizes a VAREdit model runs at: 512 / 1024 for the official files, what ours store."""
    return [r for r in model.resolutions if r in SIZES or r in SMALL_TIERS]


def default_size(model: InfinityTransformer, name: str = "") -> int:
    """A file of one size: that one; the official files: the size in their name (8B-1024.pth), else 512."""
    sizes = supported_sizes(model)
    if len(sizes) == 1:
        return sizes[0]
    return 1024 if "1024" in name and 1024 in sizes else 512


def full_template(schedule: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    schedule = [tuple(s) for s in schedule]
    for grids in TEMPLATES.values():
        if grids[:len(schedule)] == schedule:
            return grids
    raise ValueError(f"the schedule {schedule} is not a prefix of an Infinity template")


def varedit_rope(schedule: Sequence[tuple[int, int]], model: InfinityTransformer, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(source rope [2, N, Hd/2], scales rope [2, S, Hd/2]) with the reference's indexing quirk. A small tier
    (the embedded 48 px models; no official file) has no quirk: its scales sit where the Infinity model such an
    editor starts from puts them (normalised by the reference grid (H, W)), and each source token at its final-
    scale cell's position shifted by (H, W) -- the 1024 px layout, where source (64 + i, 64 + j) faces cell
    (i, j): one constant offset between a cell and its source, whatever the cell."""
    if [tuple(s) for s in schedule] in [list(t) for t in SMALL_TIERS.values()]:
        H, W = reference_grid(schedule)
        tgt = _angles(*scale_positions(schedule, (H, W)), model.cfg)
        rows, cols = scale_positions(schedule[-1:], (H, W))
        return _angles(H + rows, W + cols, model.cfg).to(device), tgt.to(device)
    full = full_template(schedule)
    H, W = full[-1]
    f = torch.arange(H * W)
    src = _angles(H + f // W, W + f % W, model.cfg)
    tgt = _angles(*scale_positions(full, (H, W)), model.cfg)
    table = torch.cat([src, tgt], 1)
    h, w = schedule[-1]
    n = h * w
    return table[:, :n].to(device), table[:, n:n + total_tokens(schedule)].to(device)


def _area_down(t: torch.Tensor, grid: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Keys/values [B, Hh, H*W, Hd] on the finest grid -> [B, Hh, h*w, Hd], area-averaged per channel."""
    if tuple(grid) == tuple(hw):
        return t
    B, Hh, _, D = t.shape
    x = t.permute(0, 1, 3, 2).reshape(B, Hh * D, *grid)
    x = F.interpolate(x.float(), size=hw, mode="area").to(t.dtype)
    return x.reshape(B, Hh, D, -1).permute(0, 1, 3, 2)


def source_tokens(vae: BSQVAE, images: torch.Tensor, patchify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """images [B, 3, S, S] in [-1, 1] -> (continuous source tokens [B, N, d], latent [B, d', S/s, S/s])."""
    z = vae.encode_latent(images)
    x = F.pixel_unshuffle(z, 2) if patchify else z
    return x.flatten(2).transpose(1, 2), z


def source_prefix(model: InfinityTransformer, tokens: torch.Tensor, schedule: Sequence[tuple[int, int]]):
    """prefix_for(rows) for run_scales: the source pass and the scale-aligned reference."""
    schedule = [tuple(s) for s in schedule]
    grid, K, dev = schedule[-1], len(schedule), model.device
    n = grid[0] * grid[1]
    if tokens.shape[1] != n or tokens.shape[2] != model.cfg.token_bits:
        raise ValueError(f"source tokens {tuple(tokens.shape[1:])} do not fit the schedule's {grid[0]}x{grid[1]} grid "
                         f"of {model.cfg.token_bits}-d tokens: the image size must match the resolution, and the VAE "
                         f"must belong to the model")
    src_rope, tgt_rope = varedit_rope(schedule, model, dev)

    def prefix_for(rows: int) -> Prefix:
        x = model.embed_bits_input(tokens.to(dev))
        x = x.repeat(rows // x.shape[0], 1, 1)  # both CFG branches read the same source
        reference: list[tuple[torch.Tensor, torch.Tensor]] = []

        def prefill(ts, cache):
            levels = torch.full((n,), K - 1, dtype=torch.long, device=dev)
            model.forward_tokens(x, levels, ts, src_rope, cache, 0)  # bidirectional among the source
            k0, v0 = cache[0][0][:, :, :n], cache[0][1][:, :, :n]
            reference.extend((_area_down(k0, grid, hw), _area_down(v0, grid, hw)) for hw in schedule)

        def layer_attn(k: int) -> dict:
            return {0: {"attend_from": n, "prefix_kv": reference[k]}}  # SAR in layer 0 only

        return Prefix(n, tgt_rope, prefill, layer_attn)

    return prefix_for


def canvas(image: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """ComfyUI IMAGE [B, H, W, C] -> ([B, 3, size, size] in [-1, 1], (H, W)): pasted at the top left of a
    white square, resized with Lanczos (VAREdit's preprocessing)."""
    from ..images import comfy_to_model

    if image.dim() == 3:
        image = image[None]
    if size not in SIZES and size not in SMALL_TIERS:
        raise ValueError(f"VAREdit runs at {SIZES[0]} or {SIZES[1]} px (the embedded editor: 48), got {size}")
    x = comfy_to_model(image, None, "none", 1)  # RGB in [-1, 1], alpha over white
    H, W = x.shape[-2:]
    side = max(H, W)
    x = F.pad(x, (0, side - W, 0, side - H), value=1.0)  # white
    x = _resize((x + 1) / 2, size, size, "lanczos") * 2 - 1
    return x, (H, W)


def mask_canvas(mask: torch.Tensor, size: int) -> torch.Tensor:
    """MASK [B, H, W] -> [B, size, size] on the same canvas (outside the image: not editable)."""
    m = mask.float()[:, None] if mask.dim() == 3 else mask.float()[None, None]
    H, W = m.shape[-2:]
    side = max(H, W)
    m = F.pad(m, (0, side - W, 0, side - H), value=0.0)
    return F.interpolate(m, size=(size, size), mode="area")[:, 0]


def crop_back(images: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """[B, 3, S, S] in 0..1 -> the original aspect: resized to the canvas side, top-left H x W."""
    H, W = hw
    side = max(H, W)
    return _resize(images, side, side, "lanczos")[..., :H, :W]


def varedit_edit(model: InfinityTransformer, vae: BSQVAE, cond: Condition, images: torch.Tensor,
                 schedule: Sequence[tuple[int, int]], sampling: InfinitySampling | Sequence[InfinitySampling],
                 seeds: torch.Tensor, region: torch.Tensor | None = None,
                 progress: ProgressFn | None = None, compile: str | bool = "off") -> BitTokens:
    """images [B, 3, S, S] in [-1, 1] (one per row) + instructions -> edited bits. region [B|1, S, S]:
    outside it the source's own multi-scale bits are kept."""
    check_pair(model, vae)
    patchify = model.cfg.patchify
    settings = per_row(sampling, cond.batch)
    if images.shape[0] != cond.batch:
        raise ValueError(f"{images.shape[0]} source images for {cond.batch} instructions")
    with torch.inference_mode():
        tokens, latent = source_tokens(vae, images, patchify)
    pick = None  # no region: plain sampling
    if region is not None:
        vae_bits = quantize_multiscale(latent, vae_schedule(schedule, patchify))[0]
        src_bits = [vae_bits_to_tokens(b, patchify).reshape(b.shape[0], -1, model.cfg.token_bits).to(model.device)
                    for b in vae_bits]
        editable = [r.reshape(r.shape[0], -1, 1).to(model.device) for r in region_per_scale(region, schedule, cond.batch)]

        def keep_outside(k, p1, sampled):
            return torch.where(editable[k], sampled, src_bits[k])

        pick = keep_outside

    bits, p1 = run_scales(model, cond, schedule, settings, seeds, pick=pick, progress=progress,
                          prefix_for=source_prefix(model, tokens, schedule), compile=compile)
    return BitTokens(bits, [tuple(s) for s in schedule], "edited", patchify, cond, seeds.cpu(), settings, p1)


def varedit_forward(model: InfinityTransformer, text: torch.Tensor, text_mask: torch.Tensor, tokens: torch.Tensor,
                    inputs: torch.Tensor, schedule: Sequence[tuple[int, int]]) -> torch.Tensor:
    """One pass over [source | all scales] with explicit attention masks (training-style, no per-scale cache): for
    teacher-forced training, and the reference the cached editor is tested against. text [B, Lt, Ct] right-padded,
    as encoded; inputs [B, S - 1, d] = next-scale inputs. -> logits [B, S, d, 2]."""
    schedule = [tuple(s) for s in schedule]
    grid, K, dev = schedule[-1], len(schedule), model.device
    n = grid[0] * grid[1]
    sizes = [h * w for h, w in schedule]
    S = sum(sizes)
    ts = model.prepare_text(text, text_mask)
    src_rope, tgt_rope = varedit_rope(schedule, model, dev)
    x = torch.cat([model.embed_bits_input(tokens), model.start_tokens(ts), model.embed_bits_input(inputs)], 1)
    levels = torch.cat([torch.full((n,), K - 1), torch.repeat_interleave(torch.arange(K), torch.tensor(sizes))]).to(dev)
    x = x + model.lvl_embed(levels).float()[None]
    rope = torch.cat([src_rope, tgt_rope], 1)
    scale_of = torch.cat([torch.full((n,), -1), torch.repeat_interleave(torch.arange(K), torch.tensor(sizes))]).to(dev)
    # layers >= 1: source <-> source; scale k -> source and scales <= k
    mask = (scale_of[None, :] == -1) & (scale_of[:, None] == -1) | (scale_of[:, None] >= 0) & (scale_of[None, :] <= scale_of[:, None])
    cache = model.new_cache(x.shape[0], n + S)
    for i, (blk, (ck, cv), kv) in enumerate(zip(model.layers, cache, ts.kv)):
        if i > 0:
            x = blk(x, ts.gss, kv, rope, ck, cv, 0, mask)
            continue
        # layer 0: the source attends to itself first; its keys/values then give every scale its
        # area-downsampled reference, laid out as extra keys [ref_0 | ref_1 | ... | sequence]
        blk(x[:, :n], ts.gss, kv, src_rope, ck, cv, 0)
        refs = [(_area_down(ck[:, :, :n], grid, hw), _area_down(cv[:, :, :n], grid, hw)) for hw in schedule]
        prefix = (torch.cat([r[0] for r in refs], 2), torch.cat([r[1] for r in refs], 2))
        ref_scale = torch.repeat_interleave(torch.arange(K), torch.tensor(sizes)).to(dev)
        m_ref = (scale_of[:, None] >= 0) & (ref_scale[None, :] == scale_of[:, None])
        m_seq = (scale_of[None, :] == -1) & (scale_of[:, None] == -1) | (scale_of[None, :] >= 0) & (scale_of[:, None] >= 0) & (scale_of[None, :] <= scale_of[:, None])
        x = blk(x, ts.gss, kv, rope, ck, cv, 0, torch.cat([m_ref, m_seq], 1), prefix_kv=prefix)
    return model.bit_logits(x[:, n:], ts.cond)
