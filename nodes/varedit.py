"""Nodes for VAREdit: instruction editing on the Infinity backbone (Scale-Aligned Reference)."""
from __future__ import annotations

import torch

from ..core.grid_image import SWEEP_CELL_PX, labelled_grid
from ..core.images import model_to_comfy
from ..core.infinity.generate import InfinitySampling
from ..core.infinity.scales import scale_schedule, total_tokens
from ..core.defaults import AUTO, PUBLISHED, defaults
from ..core.infinity.varedit import SIZES
from ..core.pipelines import varedit
from ..core.sampling import seed_plus, seed_tensor
from ..core.sweeps import check_rows, parse_values
from ..core.text.encoders import validate_prompts
from . import checks
from . import comfy_bridge as bridge
from .generate import auto_tooltip, bits_preview
from .types import AR_TEXT_ENCODER, BIT_TOKENS, BSQ_VAE, CATEGORY, COMPILE_INPUT, MAX_SEED, VAREDIT_MODEL


def run_varedit(model, tokenizer, text_encoder, image, instruction, resolution, seeds, cfgs, tau, top_p, mask,
                compile="auto"):
    """Every (seed, cfg) for every input image as ONE batched pass. Row order: image, seed, cfg (fastest);
    image i uses seed + i. -> (cropped images [rows, H, W, 3], square tokens, labels)."""
    node = "AR VAREdit"
    validate_prompts([instruction])
    checks.image(image, node)
    checks.mask(mask, node)
    combos = [(s, c) for s in seeds for c in cfgs]
    n_img = image.shape[0]
    checks.batch_rows(n_img, len(combos))
    checks.bsq_vae(tokenizer, node, load=False)
    size = varedit.edit_size(checks.varedit_model(model, node, load=False).module, resolution, getattr(model, "name", ""))
    schedule = scale_schedule(size)  # the source's scales sit in the cache before the edit's
    checks.load_for_run([model, tokenizer, text_encoder], n_img * len(combos), model, schedule, total_tokens(schedule))
    vae, net = tokenizer.load(), model.load()
    encoder = checks.instruction_encoder(text_encoder, node, "VAREdit", "encode_infinity")
    text_encoder.load()
    own = defaults(net, "sampling").cfg
    combos = [(s, own if c == AUTO else c) for s, c in combos]
    settings = [InfinitySampling(c, tau, top_p).validate() for _ in range(n_img) for _, c in combos]
    seeds_t = seed_tensor([seed_plus(s, i) for i in range(n_img) for s, _ in combos])
    out = varedit.edit(net, vae, encoder, image, [instruction], size, settings, seeds_t, mask, len(combos),
                       progress=bridge.progress(len(schedule), preview=bits_preview(tokenizer, net, schedule, node)),
                       compile=compile)
    images = model_to_comfy(torch.stack(out.images))  # one input size, so one shape
    labels = [f"seed={s}, cfg={c:g}" for s, c in combos] * n_img
    return images, out.tokens, labels


def varedit_inputs() -> dict:
    return {
        "model": (VAREDIT_MODEL, {"tooltip": "a VAREdit checkpoint (HiDream-ai/VAREdit: 2B-512.pth, 8B-512.pth, 8B-1024.pth)"}),
        "tokenizer": (BSQ_VAE, {"tooltip": "2B: infinity_vae_d32reg.pth; 8B: infinity_vae_d56_f8_14_patchify.pth"}),
        "text_encoder": (AR_TEXT_ENCODER,),
        "image": ("IMAGE", {"tooltip": "the image to edit (any aspect ratio: pasted on a white square, cropped back)"}),
        "instruction": ("STRING", {"multiline": True, "default": ""}),
        "resolution": (["auto", "48", *[str(s) for s in SIZES]], {"default": "auto",
                       "tooltip": "the size the edit is made at. auto: the checkpoint's own (2B-512 / 8B-512: 512, "
                                  "8B-1024: 1024, the embedded editor: 48)"}),
    }


def _tau_top_p() -> dict:
    base = PUBLISHED[("varedit", "sampling")]
    return {"tau": ("FLOAT", {"default": base.tau, "min": 0.01, "max": 5.0, "step": 0.01,
                              "tooltip": "randomness of each step: lower = safer, smoother; higher = more varied"}),
            "top_p": ("FLOAT", {"default": base.top_p, "min": 0.01, "max": 1.0, "step": 0.01})}


class VAREdit:
    DESCRIPTION = ("VAREdit: edits an image by instruction with a fine-tuned Infinity (Scale-Aligned Reference). "
                   "Non-square images are pasted on a white square and cropped back. Optional mask: outside it "
                   "the image's own multi-scale bits are kept.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **varedit_inputs(),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
                "cfg": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1,
                        "tooltip": "how strongly the edit follows the instruction: higher = a clearer change, "
                                "less of the picture kept; 1 = no extra push; " +
                                   auto_tooltip("varedit", "sampling", "cfg")}),
                **_tau_top_p(),
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change)"}), "compile": COMPILE_INPUT},
        }

    RETURN_TYPES = ("IMAGE", BIT_TOKENS)
    RETURN_NAMES = ("image", "tokens")
    OUTPUT_TOOLTIPS = ("the edited image, at the input's aspect ratio", "the edited tokens (square canvas)")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, tokenizer, text_encoder, image, instruction, resolution, seed, cfg, tau, top_p, mask=None,
             compile="auto"):
        images, tokens, _ = run_varedit(model, tokenizer, text_encoder, image, instruction, resolution, [seed], [cfg],
                                        tau, top_p, mask, compile)
        return images.to(bridge.output_device()), tokens


class VAREditSweep:
    DESCRIPTION = "VAREdit for every combination of the listed seeds and cfg scales as ONE batched pass, with a grid."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **varedit_inputs(),
                "seed_values": ("STRING", {"default": "0, 1"}),
                "cfg_values": ("STRING", {"default": "3.0, 4.0, 5.0"}),
                **_tau_top_p(),
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = one per cfg"}),
            },
            "optional": {"mask": ("MASK",), "compile": COMPILE_INPUT},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", BIT_TOKENS)
    RETURN_NAMES = ("images", "grid", "tokens")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/editing"

    def sweep(self, model, tokenizer, text_encoder, image, instruction, resolution, seed_values, cfg_values, tau, top_p,
              columns, mask=None, compile="auto"):
        check_rows({"seed_values": seed_values, "cfg_values": cfg_values}, checks.image(image, "AR VAREdit Sweep").shape[0])
        cfgs = parse_values(cfg_values, float, "cfg_values")
        images, tokens, labels = run_varedit(model, tokenizer, text_encoder, image, instruction, resolution,
                                             parse_values(seed_values, int, "seed_values"), cfgs, tau, top_p, mask,
                                             compile)
        grid = labelled_grid(images, labels, columns or len(cfgs), min_side=SWEEP_CELL_PX)
        out = bridge.output_device()
        return images.to(out), grid.to(out), tokens
