"""Nodes for looking at results: ShapesWorld scenes for the no-download workflows, a labelled side-by-side
grid, and a mask shown over the image it belongs to."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.grid_image import enlarge, labelled_grid
from ..core.shapes import instructions, world
from . import checks
from . import comfy_bridge as bridge
from .types import CATEGORY

COMPARE_SLOTS = 6


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255.0)[None]


class ShapesScene:
    DESCRIPTION = ("Draws a ShapesWorld scene from its caption: the 48 px image the embedded models know, its edge "
                   "map and its segmentation map. A source for the no-download workflows, exact to the pixel.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "caption": ("STRING", {"multiline": True, "default": world.EXAMPLE_CAPTION,
                        "tooltip": "the scene in the embedded world's words: 'a [small] <colour> <shape> <position>', "
                                   "joined by 'and', then 'on a <background> background'"}),
            "texture_seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31 - 1,
                             "tooltip": "0: plain empty cells. Another number gives the empty cells faint textures "
                                        "(stripes, dots) that no caption mentions: the details an edit should keep"}),
        }}

    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("image", "edge_map", "segmentation_map")
    OUTPUT_TOOLTIPS = ("the scene, 48 x 48 px", "its objects' outlines (for EditAR's canny task)",
                       "its objects filled with one colour per shape (for EditAR's segmentation task)")
    FUNCTION = "draw"
    CATEGORY = f"{CATEGORY}/embedded"

    def draw(self, caption, texture_seed):
        scene = world.with_textures(world.parse_caption(caption), texture_seed)
        out = bridge.output_device()
        return tuple(_to_tensor(img).to(out) for img in (world.render(scene), instructions.edge_map(scene),
                                                         instructions.segmentation_map(scene)))


class CompareGrid:
    DESCRIPTION = ("Puts up to six images side by side with a label under each (e.g. the same edit by several "
                   "methods), enlarged with crisp pixels so small images are easy to see.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "labels": ("STRING", {"multiline": True, "default": "source\nedit",
                           "tooltip": "one label per line, in the order of the connected images"}),
                "min_size": ("INT", {"default": 256, "min": 16, "max": 4096, "step": 16,
                             "tooltip": "small images are enlarged (nearest neighbour, by a whole factor) to at "
                                        "least this many pixels on the short side"}),
                "columns": ("INT", {"default": 0, "min": 0, "max": 16, "tooltip": "images per row; 0 = all in one row"}),
            },
            "optional": {f"image_{i}": ("IMAGE", {"tooltip": f"image {i} (its first picture if a batch)"})
                         for i in range(1, COMPARE_SLOTS + 1)},
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("grid",)
    OUTPUT_TOOLTIPS = ("the labelled grid",)
    FUNCTION = "compare"
    CATEGORY = f"{CATEGORY}/view"

    def compare(self, labels, min_size, columns, **images):
        shown = [(k, images[k]) for k in (f"image_{i}" for i in range(1, COMPARE_SLOTS + 1)) if images.get(k) is not None]
        if not shown:
            raise ValueError("AR Compare: connect at least one image")
        names = [line.strip() for line in labels.splitlines() if line.strip()]
        names += [k.replace("_", " ") for k, _ in shown[len(names):]]  # unlabelled images keep their slot name
        first = [checks.image(img, "AR Compare", k)[:1, ..., :3].float().cpu() for k, img in shown]
        side = max(max(f.shape[1], f.shape[2]) for f in first)
        cells = []
        for f in first:  # the largest size, by whole factors where possible, so pixels stay square
            f = enlarge(f, side)
            if f.shape[1:3] != (side, side):
                f = F.interpolate(f.permute(0, 3, 1, 2), size=(side, side), mode="nearest").permute(0, 2, 3, 1)
            cells.append(enlarge(f, min_size))
        grid = labelled_grid(torch.cat(cells), names[:len(cells)], columns or len(cells))
        return (grid.to(bridge.output_device()),)


class MaskOverlay:
    DESCRIPTION = "Shows a mask over the image it belongs to (tinted), enlarged with crisp pixels, for viewing."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "the image the mask belongs to"}),
            "mask": ("MASK", {"tooltip": "e.g. an edit node's changed-token or edit-region mask"}),
            "opacity": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 1.0, "step": 0.05,
                        "tooltip": "how strongly the masked area is tinted"}),
            "min_size": ("INT", {"default": 256, "min": 16, "max": 4096, "step": 16,
                         "tooltip": "small images are enlarged (nearest neighbour) to at least this size"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("the image with the masked area tinted red",)
    FUNCTION = "overlay"
    CATEGORY = f"{CATEGORY}/view"

    def overlay(self, image, mask, opacity, min_size):
        img = checks.image(image, "AR Mask Overlay")[..., :3].float().cpu()
        if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3):
            raise ValueError("AR Mask Overlay: mask must be a MASK [batch, height, width]")
        m = mask.float().cpu()
        m = m[None] if m.dim() == 2 else m
        m = F.interpolate(m[:, None], size=img.shape[1:3], mode="nearest")[:, 0].clamp(0, 1)
        if m.shape[0] not in (1, img.shape[0]):
            raise ValueError(f"AR Mask Overlay: {m.shape[0]} masks for {img.shape[0]} images")
        tint = torch.tensor([0.9, 0.1, 0.1])
        a = (opacity * m)[..., None]
        return (enlarge(img * (1 - a) + tint * a, min_size).to(bridge.output_device()),)


class Enlarge:
    DESCRIPTION = ("Enlarges small pictures by a whole factor with nearest neighbour (crisp pixels), e.g. the embedded "
                   "models' 48 px results before saving, so the saved files can be seen.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "the pictures to enlarge"}),
            "min_size": ("INT", {"default": 384, "min": 16, "max": 4096, "step": 16,
                         "tooltip": "pictures whose short side is under this are enlarged by a whole factor to at "
                                    "least this; larger ones pass unchanged"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("the pictures, enlarged with crisp pixels",)
    FUNCTION = "enlarge"
    CATEGORY = f"{CATEGORY}/view"

    def enlarge(self, image, min_size):
        img = checks.image(image, "AR Enlarge")
        return (enlarge(img, min_size).to(bridge.output_device()),)
