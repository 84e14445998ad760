"""AREdit nodes (training-free editing on Infinity): source cache, edit, and the gamma x threshold x seed sweep."""
from __future__ import annotations

import itertools

import torch

from ..core.grid_image import SWEEP_CELL_PX, labelled_grid
from ..core.images import grid_to_mask, model_to_comfy
from ..core.defaults import AUTO, auto, resolve
from ..core.infinity.aredit import DEFAULT_GAMMA, AREditSettings
from ..core.infinity.scales import STRIDE
from ..core.pipelines import infinity
from ..core.sampling import seed_plus, seed_tensor
from ..core.sweeps import check_rows, parse_values
from . import checks
from . import comfy_bridge as bridge
from .generate import PREVIEW_VAE_INPUT, auto_tooltip, bits_preview, infinity_sampling, infinity_sampling_inputs
from .types import (AREDIT_SOURCE, BIT_TOKENS, BSQ_VAE, CATEGORY, COMPILE_INPUT, INFINITY_CONDITIONING, INFINITY_MODEL,
                    MAX_SEED)


class AREditSourceCache:
    DESCRIPTION = ("AREdit source cache, built once and reused for any number of edits: the source's bits of every "
                   "scale and their probabilities under the source prompt. Generated tokens bring their prompt and "
                   "probabilities (free when the settings below equal the generation's); a real image's tokens "
                   "need its description and cost one pass.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": (INFINITY_MODEL,), "tokens": (BIT_TOKENS,), **{
            k: v for k, v in infinity_sampling_inputs().items()}},
            "optional": {"source_conditioning": (INFINITY_CONDITIONING, {
                "tooltip": "the source prompt: required for a real image, optional for generated tokens"})}}

    RETURN_TYPES = (AREDIT_SOURCE,)
    RETURN_NAMES = ("source",)
    FUNCTION = "build"
    CATEGORY = f"{CATEGORY}/editing"

    def build(self, model, tokens, cfg, tau, top_p, cfg_per_scale, tau_per_scale, source_conditioning=None):
        node = "AR AREdit Source Cache"
        tokens = checks.bit_tokens(tokens, node)
        net = checks.infinity_model(model, node)
        sampling = infinity_sampling(net, cfg, tau, top_p, cfg_per_scale, tau_per_scale)
        cond = None if source_conditioning is None else source_conditioning.to(net.device)
        return (infinity.aredit_source(net, tokens, cond, sampling, progress=bridge.progress(len(tokens.schedule))),)


def aredit_inputs() -> dict:
    return {
        "gamma": ("INT", {"default": DEFAULT_GAMMA, "min": 0, "max": 15,
                  "tooltip": "leading scales reused as they are (layout and colour); more = closer to the source"}),
        # every value below -1 regenerates freely (a probability drops by at most 1), so -1 is free to mean AUTO
        "threshold": ("FLOAT", {"default": AUTO, "min": -2.0, "max": 2.0, "step": 0.01,
                      "tooltip": "a bit is resampled when the target prompt lowers its probability by more than "
                                 "this; > 1 keeps the source, < -1 regenerates freely; " +
                                 auto_tooltip("infinity", "aredit", "threshold")}),
    }


def _seeds(source, seed, use_source_seed, rows):
    if use_source_seed and source.tokens.seeds is not None:
        return source.tokens.seeds.cpu().repeat(rows // source.batch)
    return seed_tensor([seed_plus(seed, i % source.batch) for i in range(rows)])


class AREdit:
    DESCRIPTION = ("AREdit: edits an Infinity source with a target prompt. Scales before gamma are reused; after it, "
                   "only bits whose probability drops under the target prompt by more than the threshold are "
                   "resampled. Optional mask: only the white area may change. edit_mask shows what the adaptive "
                   "mask selected (share of scales per pixel).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (INFINITY_MODEL,), "source": (AREDIT_SOURCE,),
                "conditioning": (INFINITY_CONDITIONING, {"tooltip": "the target prompt (AR Infinity Text Encode)"}),
                **aredit_inputs(),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
                "use_source_seed": ("BOOLEAN", {"default": True, "tooltip": "reuse a generated source's seeds"}),
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the source's bits are kept"}),
                         "compile": COMPILE_INPUT,
                         "preview_vae": PREVIEW_VAE_INPUT},
        }

    RETURN_TYPES = (BIT_TOKENS, "MASK", "MASK")
    RETURN_NAMES = ("tokens", "edit_mask", "changed_mask")
    OUTPUT_TOOLTIPS = ("edited tokens (decode them)", "adaptive mask: share of the scales after gamma that resampled "
                       "bits here", "tokens of the finest scale that differ from the source")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, source, conditioning, gamma, threshold, seed, use_source_seed, mask=None, preview_vae=None,
             compile="auto"):
        node = "AR AREdit Edit"
        source = checks.aredit_source(source, node)
        checks.infinity_model(model, node, load=False)
        checks.load_for_run([model, preview_vae], source.batch, model,
                            source.schedule)
        net = model.load()
        render = bits_preview(preview_vae, net, source.schedule, node)
        settings = resolve(net, "aredit", gamma=gamma, threshold=auto(threshold)).validate(len(source.schedule))
        seeds = _seeds(source, seed, use_source_seed, source.batch)
        result = infinity.aredit(net, source, conditioning, settings, seeds, checks.mask(mask, node),
                                 progress=bridge.progress(len(source.schedule), preview=render), compile=compile)
        return (result.tokens,) + _masks(result, [gamma] * source.batch)


def _masks(result, gammas) -> tuple[torch.Tensor, torch.Tensor]:
    H, W = result.tokens.grid
    out = bridge.output_device()
    edit_map = grid_to_mask(result.edit_map(gammas), H * STRIDE, W * STRIDE)
    return edit_map.to(out), grid_to_mask(result.changed[-1], H * STRIDE, W * STRIDE).to(out)


class AREditSweep:
    DESCRIPTION = ("Every combination of the listed gamma / threshold / seed values as ONE batched edit pass over "
                   "one source cache; returns the images, a labelled grid, the tokens and the edit masks.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (INFINITY_MODEL,), "tokenizer": (BSQ_VAE,), "source": (AREDIT_SOURCE,),
                "conditioning": (INFINITY_CONDITIONING,),
                "gamma_values": ("STRING", {"default": "0, 1, 2"}),
                "threshold_values": ("STRING", {"default": "0.5, 0.8, 0.9"}),
                "seed_values": ("STRING", {"default": "0", "tooltip": "ignored with use_source_seed on a generated source"}),
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = one per threshold"}),
            },
            "optional": {"mask": ("MASK",), "compile": COMPILE_INPUT},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", BIT_TOKENS, "MASK")
    RETURN_NAMES = ("images", "grid", "tokens", "edit_masks")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/editing"

    def sweep(self, model, tokenizer, source, conditioning, gamma_values, threshold_values, seed_values,
              use_source_seed, columns, mask=None, compile="auto"):
        node = "AR AREdit Sweep"
        source = checks.aredit_source(source, node)
        checks.infinity_model(model, node, load=False)
        checks.bsq_vae(tokenizer, node, load=False)
        from_source = use_source_seed and source.tokens.seeds is not None
        check_rows({"gamma_values": gamma_values, "threshold_values": threshold_values,
                    **({} if from_source else {"seed_values": seed_values})}, source.batch)
        gammas = parse_values(gamma_values, int, "gamma_values")
        thresholds = parse_values(threshold_values, float, "threshold_values")
        seeds = [None] if from_source else parse_values(seed_values, int, "seed_values")
        combos = list(itertools.product(gammas, seeds, thresholds))  # threshold varies fastest: along a row
        checks.load_for_run([model, tokenizer], source.batch * len(combos), model, source.schedule)
        net, vae = model.load(), tokenizer.load()
        settings = [AREditSettings(g, t).validate(len(source.schedule)) for _ in range(source.batch) for g, _, t in combos]
        idx = torch.arange(source.batch).repeat_interleave(len(combos))
        src = source.index(idx)
        if from_source:
            seed_rows = src.tokens.seeds.cpu()
        else:
            seed_rows = seed_tensor([s for _ in range(source.batch) for _, s, _ in combos])
        cond = conditioning.to(net.device)
        if cond.batch not in (1, source.batch):
            raise ValueError(f"target prompts ({cond.batch}) must be 1 or one per source image ({source.batch})")
        if cond.batch > 1:
            cond = cond.index(idx)
        result = infinity.aredit(net, src, cond, settings, seed_rows, checks.mask(mask, node),
                                 progress=bridge.progress(len(source.schedule)), compile=compile)
        images = model_to_comfy(infinity.decode(vae, result.tokens))
        labels = [f"gamma {g} | thr {t:g}" + ("" if s is None else f" | seed {s}") for _ in range(source.batch)
                  for g, s, t in combos]
        grid = labelled_grid(images, labels, columns or (len(thresholds) if len(thresholds) > 1 else None),
                             min_side=SWEEP_CELL_PX)
        edit_masks, _ = _masks(result, [s.gamma for s in settings])
        out = bridge.output_device()
        return images.to(out), grid.to(out), result.tokens, edit_masks
