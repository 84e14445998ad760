"""A labelled contact sheet of an image batch (for sweeps)."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def label_font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a fixed-size bitmap font only
        return ImageFont.load_default()


def enlarge(images: torch.Tensor, min_side: int) -> torch.Tensor:
    """[B, H, W, C] -> nearest-neighbour enlarged by a whole factor so the short side is >= min_side (cells stay crisp)."""
    factor = max(1, math.ceil(min_side / min(images.shape[1:3])))
    if factor == 1:
        return images
    return images.repeat_interleave(factor, 1).repeat_interleave(factor, 2)


SWEEP_CELL_PX = 192  # a sweep grid's cells are enlarged to at least this: 48 px pictures and their labels readable


def labelled_grid(images: torch.Tensor, labels: list[str], columns: int | None = None, pad: int = 4,
                  min_side: int = 0) -> torch.Tensor:
    """images [B, H, W, 3] in 0..1 -> one image [1, H', W', 3] with each cell's label under it; cells smaller than
    `min_side` enlarged by a whole factor (nearest neighbour, crisp pixels)."""
    images = enlarge(images, min_side) if min_side else images
    B, H, W, _ = images.shape
    if len(labels) != B:
        raise ValueError(f"{B} images but {len(labels)} labels")
    cols = columns or math.ceil(math.sqrt(B))
    rows = math.ceil(B / cols)
    font_px = max(10, min(24, W // 12))
    font = label_font(font_px)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [_wrap(label, font, W - 4, measure) for label in labels]
    label_h = max(len(lines) for lines in wrapped) * (font_px + 2) + 4
    sheet = Image.new("RGB", (cols * (W + pad) + pad, rows * (H + label_h + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    arr = (images.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    for i in range(B):
        r, c = divmod(i, cols)
        x, y = pad + c * (W + pad), pad + r * (H + label_h + pad)
        sheet.paste(Image.fromarray(arr[i]), (x, y))
        for k, line in enumerate(wrapped[i]):
            draw.text((x + 2, y + H + 2 + k * (font_px + 2)), line, fill=(235, 235, 235), font=font)
    return torch.from_numpy(np.asarray(sheet, dtype=np.float32) / 255.0)[None]


def _wrap(label: str, font, width: int, draw) -> list[str]:
    """Break a label at ', ' / ' | ' so each line fits the cell width (a single long part stays whole)."""
    parts = [p for chunk in label.split(" | ") for p in chunk.split(", ")]
    lines: list[str] = []
    for part in parts:
        if lines and draw.textlength(f"{lines[-1]}, {part}", font=font) <= width:
            lines[-1] = f"{lines[-1]}, {part}"
        else:
            lines.append(part)
    return lines or [""]
