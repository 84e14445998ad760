"""Nodes for the Infinity backbone (next-scale, bitwise) and AREdit editing.

Loading, text encoding and decoding use the shared nodes (AR Model Loader, AR Tokenizer Loader, AR Text
Encode with the model connected, AR Image to Tokens, AR Tokens to Image); these add what is Infinity's own.
"""
from __future__ import annotations

import itertools

import torch

from ..core.aredit import DEFAULT_GAMMA, DEFAULT_THRESHOLD, AREditSettings, aredit_edit, build_source
from ..core.grid_image import labelled_grid
from ..core.images import fit_image, grid_to_mask, model_to_comfy
from ..core.infinity_codec import bits_to_images
from ..core.infinity_generate import BitTokens, InfinitySampling, generate
from ..core.infinity_model import InfinityTransformer
from ..core.infinity_scales import RESOLUTIONS, TEMPLATES, scale_schedule
from ..core.infinity_vae import BSQVAE
from ..core.sweeps import MAX_SWEEP_ROWS, parse_values
from . import comfy_bridge as bridge
from .llamagen_nodes import MAX_SEED
from .types import AR_CONDITIONING, AR_MODEL, AR_SOURCE, AR_TOKENIZER, AR_TOKENS, CATEGORY

ASPECTS = ["1:1"] + [f"{r}" for r in sorted(TEMPLATES) if r != 1.0]


def _aspect(value: str) -> float:
    return 1.0 if value == "1:1" else float(value)


def _infinity(model) -> InfinityTransformer:
    if not isinstance(model.module, InfinityTransformer):
        raise ValueError(f"{model.name} is not an Infinity model (LlamaGen models use AR Generate / ATM edit)")
    return model.load()


def _vae(tokenizer) -> BSQVAE:
    if not isinstance(tokenizer.module, BSQVAE):
        raise ValueError(f"{tokenizer.name} is not Infinity's BSQ VAE")
    return tokenizer.load()


def _per_scale(text: str, fallback: float, name: str) -> float | tuple[float, ...]:
    return fallback if not text.strip() else tuple(parse_values(text, float, name))


def infinity_sampling_inputs() -> dict:
    return {
        "cfg": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 30.0, "step": 0.1, "tooltip": "guidance; 1 = off (2B: 3-4)"}),
        "tau": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 5.0, "step": 0.01, "tooltip": "temperature of the bit logits"}),
        "top_p": ("FLOAT", {"default": 0.97, "min": 0.01, "max": 1.0, "step": 0.01,
                  "tooltip": "a bit whose minority probability is <= 1 - top_p takes the majority value; 1 = off"}),
        "cfg_per_scale": ("STRING", {"default": "", "tooltip": "optional: one cfg per scale, coarse to fine "
                                     "(comma list); empty = cfg everywhere"}),
        "tau_per_scale": ("STRING", {"default": "", "tooltip": "optional: one tau per scale; empty = tau everywhere"}),
    }


def _sampling(cfg, tau, top_p, cfg_per_scale, tau_per_scale) -> InfinitySampling:
    return InfinitySampling(_per_scale(cfg_per_scale, cfg, "cfg_per_scale"), _per_scale(tau_per_scale, tau, "tau_per_scale"),
                            top_p).validate()


class InfinityGenerate:
    DESCRIPTION = ("Generates with an Infinity model, scale by scale (KV cache across scales, CFG on logits, per-bit "
                   "sampling). batch_size images per prompt with seeds seed, seed+1, ...; the tokens keep their "
                   "probabilities, so they serve as an AREdit source at no extra cost.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (AR_MODEL,),
            "conditioning": (AR_CONDITIONING, {"tooltip": "from AR Text Encode with this model connected"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
            "resolution": ([str(r) for r in RESOLUTIONS], {"default": "1024",
                           "tooltip": "resolution tier: 256 / 512 / 768 / 1024 px (7 / 10 / 12 / 13 scales); "
                                      "48 px (3 scales, square) for the embedded ShapesWorld model"}),
            "aspect_ratio": (ASPECTS, {"default": "1:1", "tooltip": "height / width of the template"}),
            **infinity_sampling_inputs(),
        }, "optional": {
            "negative": (AR_CONDITIONING, {"tooltip": "a negative prompt for guidance instead of the learned "
                                           "null text (AR Text Encode with the model connected)"}),
        }}

    RETURN_TYPES = (AR_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"

    def generate(self, model, conditioning, seed, batch_size, resolution, aspect_ratio, cfg, tau, top_p,
                 cfg_per_scale, tau_per_scale, negative=None):
        sampling = _sampling(cfg, tau, top_p, cfg_per_scale, tau_per_scale)
        net = _infinity(model)
        schedule = scale_schedule(int(resolution), _aspect(aspect_ratio))
        cond = conditioning.repeat_interleave(batch_size).to(net.device)
        seeds = torch.tensor([seed + i for _ in range(conditioning.batch) for i in range(batch_size)], dtype=torch.int64)
        if negative is not None and negative.batch not in (1, conditioning.batch):
            raise ValueError(f"{negative.batch} negative prompts for {conditioning.batch} prompts: give 1 or one each")
        neg = None if negative is None else negative.repeat_interleave(batch_size if negative.batch > 1 else 1)
        return (generate(net, cond, schedule, sampling, seeds, progress=bridge.progress(len(schedule)), negative=neg),)


class AREditSourceCache:
    DESCRIPTION = ("AREdit source cache, built once and reused for any number of edits: the source's bits of every "
                   "scale and their probabilities under the source prompt. Generated tokens bring their prompt and "
                   "probabilities (free when the settings below equal the generation's); a real image's tokens "
                   "need its description and cost one pass.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": (AR_MODEL,), "tokens": (AR_TOKENS,), **{
            k: v for k, v in infinity_sampling_inputs().items()}},
            "optional": {"source_conditioning": (AR_CONDITIONING, {
                "tooltip": "the source prompt: required for a real image, optional for generated tokens"})}}

    RETURN_TYPES = (AR_SOURCE,)
    RETURN_NAMES = ("source",)
    FUNCTION = "build"
    CATEGORY = f"{CATEGORY}/editing"

    def build(self, model, tokens, cfg, tau, top_p, cfg_per_scale, tau_per_scale, source_conditioning=None):
        if not isinstance(tokens, BitTokens):
            raise ValueError("these are LlamaGen tokens: cache them with AR Edit Source Cache (ATM)")
        sampling = _sampling(cfg, tau, top_p, cfg_per_scale, tau_per_scale)
        net = _infinity(model)
        cond = None if source_conditioning is None else source_conditioning.to(net.device)
        return (build_source(net, tokens, cond, sampling, progress=bridge.progress(len(tokens.schedule))),)


def aredit_inputs() -> dict:
    return {
        "gamma": ("INT", {"default": DEFAULT_GAMMA, "min": 0, "max": 15,
                  "tooltip": "leading scales reused as they are (layout and colour); more = closer to the source"}),
        "threshold": ("FLOAT", {"default": DEFAULT_THRESHOLD, "min": -2.0, "max": 2.0, "step": 0.01,
                      "tooltip": "a bit is resampled when the target prompt lowers its probability by more than "
                                 "this; > 1 keeps the source, < -1 regenerates freely"}),
    }


def _region(mask, source):
    """A MASK drawn on the source image -> the tokens' pixel grid, by the rule images are encoded with
    (cover + centre crop; a no-op for masks the size of the source)."""
    if mask is None:
        return None
    H, W = source.tokens.grid
    m = mask[None] if mask.dim() == 2 else mask
    return fit_image(m.float()[:, None].clamp(0, 1), (H * 16, W * 16), "center_crop", 1)[:, 0]


def _seeds(source, seed, use_source_seed, rows):
    if use_source_seed and source.tokens.seeds is not None:
        return source.tokens.seeds.cpu().repeat(rows // source.batch)
    return torch.arange(rows, dtype=torch.int64) % source.batch + seed


class AREdit:
    DESCRIPTION = ("AREdit: edits an Infinity source with a target prompt. Scales before gamma are reused; after it, "
                   "only bits whose probability drops under the target prompt by more than the threshold are "
                   "resampled. Optional mask: only the white area may change. edit_mask shows what the adaptive "
                   "mask selected (share of scales per pixel).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (AR_MODEL,), "source": (AR_SOURCE,),
                "conditioning": (AR_CONDITIONING, {"tooltip": "the target prompt (AR Text Encode with the model connected)"}),
                **aredit_inputs(),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
                "use_source_seed": ("BOOLEAN", {"default": True, "tooltip": "reuse a generated source's seeds"}),
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the source's bits are kept"})},
        }

    RETURN_TYPES = (AR_TOKENS, "MASK", "MASK")
    RETURN_NAMES = ("tokens", "edit_mask", "changed_mask")
    OUTPUT_TOOLTIPS = ("edited tokens (decode them)", "adaptive mask: share of the scales after gamma that resampled "
                       "bits here", "tokens of the finest scale that differ from the source")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, source, conditioning, gamma, threshold, seed, use_source_seed, mask=None):
        net = _infinity(model)
        settings = AREditSettings(gamma, threshold).validate(len(source.schedule))
        seeds = _seeds(source, seed, use_source_seed, source.batch)
        result = aredit_edit(net, source, conditioning.to(net.device), settings, seeds, _region(mask, source),
                             progress=bridge.progress(len(source.schedule)))
        return (result.tokens,) + _masks(result, [gamma] * source.batch)


def _masks(result, gammas) -> tuple[torch.Tensor, torch.Tensor]:
    H, W = result.tokens.grid
    out = bridge.output_device()
    edit_map = grid_to_mask(result.edit_map(gammas), H * 16, W * 16)
    return edit_map.to(out), grid_to_mask(result.changed[-1], H * 16, W * 16).to(out)


class AREditSweep:
    DESCRIPTION = ("Every combination of the listed gamma / threshold / seed values as ONE batched edit pass over "
                   "one source cache; returns the images, a labelled grid, the tokens and the edit masks.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (AR_MODEL,), "tokenizer": (AR_TOKENIZER,), "source": (AR_SOURCE,),
                "conditioning": (AR_CONDITIONING,),
                "gamma_values": ("STRING", {"default": "0, 1, 2"}),
                "threshold_values": ("STRING", {"default": "0.5, 0.8, 0.9"}),
                "seed_values": ("STRING", {"default": "0", "tooltip": "ignored with use_source_seed on a generated source"}),
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = one per threshold"}),
            },
            "optional": {"mask": ("MASK",)},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", AR_TOKENS, "MASK")
    RETURN_NAMES = ("images", "grid", "tokens", "edit_masks")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/editing"

    def sweep(self, model, tokenizer, source, conditioning, gamma_values, threshold_values, seed_values,
              use_source_seed, columns, mask=None):
        net = _infinity(model)
        vae = _vae(tokenizer)
        gammas = parse_values(gamma_values, int, "gamma_values")
        thresholds = parse_values(threshold_values, float, "threshold_values")
        from_source = use_source_seed and source.tokens.seeds is not None
        seeds = [None] if from_source else parse_values(seed_values, int, "seed_values")
        combos = list(itertools.product(gammas, seeds, thresholds))  # threshold varies fastest: along a row
        rows = len(combos) * source.batch
        if rows > MAX_SWEEP_ROWS:
            raise ValueError(f"the sweep has {rows} rows (combinations x source images); the limit is {MAX_SWEEP_ROWS}")
        settings = [AREditSettings(g, t).validate(len(source.schedule)) for _ in range(source.batch) for g, _, t in combos]
        idx = torch.arange(source.batch).repeat_interleave(len(combos))
        src = source.index(idx)
        if from_source:
            seed_rows = src.tokens.seeds.cpu()
        else:
            seed_rows = torch.tensor([s for _ in range(source.batch) for _, s, _ in combos], dtype=torch.int64)
        cond = conditioning.to(net.device)
        if cond.batch not in (1, source.batch):
            raise ValueError(f"target prompts ({cond.batch}) must be 1 or one per source image ({source.batch})")
        if cond.batch > 1:
            cond = cond.index(idx)
        result = aredit_edit(net, src, cond, settings, seed_rows, _region(mask, source),
                             progress=bridge.progress(len(source.schedule)))
        images = model_to_comfy(bits_to_images(vae, result.tokens))
        labels = [f"gamma {g} | thr {t:g}" + ("" if s is None else f" | seed {s}") for _ in range(source.batch)
                  for g, s, t in combos]
        grid = labelled_grid(images, labels, columns or (len(thresholds) if len(thresholds) > 1 else None))
        edit_masks, _ = _masks(result, [s.gamma for s in settings])
        out = bridge.output_device()
        return images.to(out), grid.to(out), result.tokens, edit_masks
