"""A job's scores, read from the pixels it wrote (what the user sees) against the ground truth it brought.

- A changed-region mask (given, or where the expected image differs from the source): background PSNR / SSIM
  outside it, against the source.
- An expected image: PSNR to it.
- ShapesEdit: when the source and the expected image are ShapesWorld renders, the benchmark's own scores (edit
  success, structure, exact scene), computed by the same code as `tools/shapes_benchmark.py`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..images import fit_image
from ..shapes import bench, world


def fit_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, C] -> [h, w, C], resized the way sources are fitted to the model (cover, centre crop)."""
    if image.shape[:2] == tuple(hw):
        return image
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    y = fit_image(x, tuple(hw), "center_crop", 1)
    return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _as_scene(image: np.ndarray) -> world.Scene | None:
    """The scene an image is an exact ShapesWorld render of, else None."""
    if image.shape != (world.SIZE, world.SIZE, 3):
        return None
    scene = world.parse_image(image)
    return scene if np.array_equal(world.render(scene), image) else None


def infer_kind(source: world.Scene, target: world.Scene) -> str:
    if source.background != target.background:
        return "background"
    n, m = len(source.objects), len(target.objects)
    if m != n:
        return "add" if m > n else "remove"
    changed = [c for c in range(9) if source.object_at(c) != target.object_at(c)]
    return "replace" if any(source.object_at(c).shape != target.object_at(c).shape for c in changed
                            if source.object_at(c) and target.object_at(c)) else "attribute"


def _unit(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


def score(source: np.ndarray, output: np.ndarray, expected: np.ndarray | None = None,
          changed: np.ndarray | None = None, kind: str | None = None) -> dict:
    """uint8 images [H, W, 3] (source and expected fitted to the output's size here); changed: bool [H, W]."""
    hw = output.shape[:2]
    source = fit_to(source, hw)
    expected = None if expected is None else fit_to(expected, hw)
    if changed is not None and changed.shape != hw:
        changed = fit_to(changed.astype(np.uint8)[..., None] * 255, hw)[..., 0] >= 128
    if changed is None and expected is not None:
        changed = (expected != source).any(-1)
    out: dict = {}
    src_scene = _as_scene(source)
    tgt_scene = None if expected is None else _as_scene(expected)
    if src_scene is not None and tgt_scene is not None:
        edit = world.Edit(kind or infer_kind(src_scene, tgt_scene), src_scene, tgt_scene, "")
        s = bench.score_edits([edit], source[None], _unit(output))[0]
        out.update(kind=s.kind, bg_psnr=s.bg_psnr, bg_ssim=s.bg_ssim, success=s.success, exact=s.exact,
                   structure=None if math.isnan(s.structure) else s.structure)
    elif changed is not None:
        keep = torch.from_numpy(~changed)[None]
        out.update(bg_psnr=float(bench.psnr(_unit(output), _unit(source), keep)[0]),
                   bg_ssim=float(bench.ssim(_unit(output), _unit(source), keep)[0]))
        if kind:
            out["kind"] = kind
    if expected is not None:
        out["psnr_to_expected"] = float(bench.psnr(_unit(output), _unit(expected))[0])
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
