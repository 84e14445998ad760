"""What every pipeline shares: fitting pictures and masks to a model, seeds for a batch, the record of a run."""
from __future__ import annotations

from typing import Sequence

import torch

from ..images import comfy_to_model, fit_image, mask_to_grid
from ..sampling import seed_plus, seed_tensor

Images = torch.Tensor | Sequence[torch.Tensor]  # IMAGE [B, H, W, C] 0..1, or one [1, H, W, C] per row (any sizes)


def fit_images(images: Images, size, resize: str, stride: int, resample: str = "auto") -> torch.Tensor:
    """Pictures -> [B, 3, h, w] in [-1, 1], fitted to the model by `resize` (each on its own: rows may differ)."""
    if isinstance(images, torch.Tensor):
        return comfy_to_model(images, size, resize, stride, resample)
    return torch.cat([comfy_to_model(i, size, resize, stride, resample) for i in images])


def _masks(mask: torch.Tensor | Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """One MASK, or a sequence of them (left as given: a lazy one, like a batch job's, makes each mask only when
    it is read), each [1, H, W] or [H, W]."""
    if isinstance(mask, torch.Tensor):
        return [mask]
    return mask if isinstance(mask, Sequence) else list(mask)


def _one(m: torch.Tensor) -> torch.Tensor:
    return m[None] if m.dim() == 2 else m


def token_region(mask, grid: tuple[int, int], stride: int, rows: int) -> torch.Tensor | None:
    """A MASK drawn on the picture (or one per row) -> bool token grid [rows, gh, gw], True = may change.

    The mask goes through the picture's own square fit (centre crop) before it is read per token cell."""
    if mask is None:
        return None
    gh, gw = grid
    size = gh * stride if gh == gw else None
    parts = _masks(mask)
    if len(parts) == 1:
        return mask_to_grid(_one(parts[0]), gh, gw, rows, image_size=size)
    if len(parts) != rows:
        raise ValueError(f"{len(parts)} masks for {rows} rows")
    return torch.cat([mask_to_grid(_one(m), gh, gw, 1, image_size=size) for m in parts])


def pixel_region(mask, grid: tuple[int, int], stride: int) -> torch.Tensor | None:
    """A MASK (or one per row) -> float [B, H, W] on the tokens' pixel grid (cover + centre crop, the rule images
    are encoded with; a no-op for masks the size of the source)."""
    if mask is None:
        return None
    H, W = grid
    return torch.cat([fit_image(_one(m).float()[:, None].clamp(0, 1), (H * stride, W * stride), "center_crop", 1)[:, 0]
                      for m in _masks(mask)])


def batch_seeds(seed: int, rows: int) -> torch.Tensor:
    """seed, seed + 1, ... for `rows` rows (wrapping at 2**64 like the seed widgets)."""
    return seed_tensor([seed_plus(seed, i) for i in range(rows)])


def per_row(items: Sequence, rows: int, what: str = "prompts") -> list:
    """One item (a prompt, a mask) for every row, or one per row."""
    items = list(items)
    if len(items) == 1:
        return items * rows
    if len(items) != rows:
        raise ValueError(f"{len(items)} {what} for {rows} rows: give 1 or one per row")
    return items


def sweep_rows(batch: int, captions, settings: Sequence, mask=None):
    """A sweep of S settings over `batch` source rows as one batch: row = item * S + j. -> (the source row of each
    batch row [B * S], their captions, seeds, ATM settings, cfg scales, and the mask per batch row or None)."""
    S = len(settings)
    captions = per_row([captions] if isinstance(captions, str) else list(captions), batch, "captions")
    rows = torch.arange(batch).repeat_interleave(S)
    if mask is not None:
        m = torch.as_tensor(mask)
        m = m[None] if m.dim() == 2 else m
        if m.shape[0] not in (1, batch):
            raise ValueError(f"masks ({m.shape[0]}) must be 1 or one per source row ({batch})")
        mask = m if m.shape[0] == 1 else m[rows.to(m.device)]
    return (rows, [captions[i] for i in rows.tolist()], [s.seed for s in settings] * batch,
            [s.atm for s in settings] * batch, [s.cfg_scale for s in settings] * batch, mask)
