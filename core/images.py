"""Conversions between ComfyUI-style images/masks and model tensors, and the resize policy.

ComfyUI IMAGE: float [B, H, W, C] in 0..1 (C = 3, or 4 with alpha); MASK: float [B, H, W] in 0..1.
Model images: float [B, 3, H, W] in [-1, 1].

Resize policy for images going into a tokenizer of stride s at a target size S x S:
- "center_crop" (default): scale the short side to S (area filter when shrinking, bicubic when
  enlarging), then cut the centred S x S square. Nothing is stretched; the edges of non-square images
  are lost. This is how LlamaGen prepares its training images.
- "stretch": resize to S x S, ignoring the aspect ratio.
- "none": use the image as it is; its sides must be multiples of s, and for editing the token grid
  must equal the model's, else a clear error.
An alpha channel is composited over white.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("center_crop", "stretch", "none")


def _resize_lanczos(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """PIL's Lanczos filter, image by image (preprocessing, not a generation loop)."""
    import numpy as np
    from PIL import Image

    out = []
    for img in x.clamp(0, 1).cpu():
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pil = Image.fromarray(arr if arr.shape[-1] == 3 else arr[..., 0]).resize((w, h), Image.LANCZOS)
        t = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0)
        out.append(t.permute(2, 0, 1) if t.dim() == 3 else t[None])
    return torch.stack(out).to(x.device)


def _resize(x: torch.Tensor, h: int, w: int, resample: str = "auto") -> torch.Tensor:
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if resample == "lanczos":
        return _resize_lanczos(x, h, w)
    shrinking = h <= x.shape[-2] and w <= x.shape[-1]
    if shrinking:
        return F.interpolate(x, size=(h, w), mode="area")
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def fit_image(x: torch.Tensor, size: int | tuple[int, int] | None, mode: str, stride: int,
              resample: str = "auto") -> torch.Tensor:
    """x [B, C, H, W] in 0..1 -> resized per the policy above to size x size, or to (height, width)
    (resample "auto": area down, bicubic up; "lanczos": PIL's Lanczos, as EditAR and Infinity prepare
    their inputs)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    H, W = x.shape[-2:]
    if mode == "none" or size is None:
        if H % stride or W % stride:
            raise ValueError(f"image is {W}x{H}; with resize 'none' both sides must be multiples of {stride} "
                             f"(choose 'center_crop' or 'stretch' to resize it)")
        return x
    th, tw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if th % stride or tw % stride:
        raise ValueError(f"target size {tw}x{th} is not a multiple of the tokenizer stride {stride}")
    if mode == "stretch":
        return _resize(x, th, tw, resample)
    scale = max(th / H, tw / W)  # cover the target, then cut the centre
    h, w = max(th, round(H * scale)), max(tw, round(W * scale))
    x = _resize(x, h, w, resample)
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top:top + th, left:left + tw]


def comfy_to_model(image: torch.Tensor, size: int | tuple[int, int] | None = None, mode: str = "center_crop", stride: int = 16,
                   resample: str = "auto") -> torch.Tensor:
    """IMAGE [B, H, W, C] 0..1 -> [B, 3, S, S] in [-1, 1] (alpha dropped, grey expanded to RGB)."""
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE [B, H, W, C] with C in 1/3/4, got {list(image.shape)}")
    image = image.float().clamp(0, 1)
    if image.shape[-1] == 4:  # RGBA: composite over white (transparent areas become white, as EditAR does)
        image = image[..., :3] * image[..., 3:] + (1 - image[..., 3:])
    x = image if image.shape[-1] == 3 else image.expand(*image.shape[:-1], 3)
    x = x.permute(0, 3, 1, 2)
    return fit_image(x, size, mode, stride, resample) * 2 - 1


def model_to_comfy(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in 0..1 -> IMAGE [B, H, W, 3] on the CPU."""
    return x.permute(0, 2, 3, 1).float().cpu().contiguous()


def mask_to_grid(mask: torch.Tensor, grid_h: int, grid_w: int, batch: int, threshold: float = 0.5,
                 mode: str = "center_crop", image_size: int | None = None) -> torch.Tensor:
    """MASK [B|1, H, W] -> bool token mask [batch, gh, gw]: a token is inside when the mean mask value over
    its cell is >= threshold. The mask goes through the same resize policy as its image."""
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() != 3:
        raise ValueError(f"expected a MASK [B, H, W], got {list(mask.shape)}")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"mask batch {mask.shape[0]} does not match image batch {batch}")
    m = mask.float()[:, None].clamp(0, 1)
    if mode != "none" and image_size is not None and mode in RESIZE_MODES:
        m = fit_image(m, image_size, mode, 1)
    cells = F.interpolate(m, size=(grid_h, grid_w), mode="area")[:, 0]
    return (cells >= threshold).expand(batch, grid_h, grid_w).clone()


def grid_to_mask(grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool/float token grid [B, gh, gw] -> MASK [B, H, W] float (nearest upsampling), on the CPU."""
    return F.interpolate(grid.float()[:, None], size=(height, width), mode="nearest")[:, 0].cpu()
