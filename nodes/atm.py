"""Nodes for Anchor Token Matching (ISLock) editing: source cache, edit, parameter sweep."""
from __future__ import annotations

from ..core.defaults import AUTO, defaults
from ..core.grid_image import SWEEP_CELL_PX, labelled_grid
from ..core.images import grid_to_mask, model_to_comfy
from ..core.llamagen.atm import CANDIDATE_MODES, FALLBACKS, ATMSettings
from ..core.llamagen.generate import DRAFT_CHUNK
from ..core.pipelines import llamagen
from ..core.pipelines.common import batch_seeds, token_region
from ..core.records import TokenBatch
from ..core.sampling import SEED_RANGE, seed_tensor
from ..core.sweeps import check_rows, expand, parse_values, run_sweep
from . import checks
from . import comfy_bridge as bridge
from .generate import PREVIEW_TOKENIZER_INPUT, auto_tooltip, llamagen_sampling, sampling_inputs, vq_preview
from .types import ATM_SOURCE, CATEGORY, COMPILE_INPUT, DRAFT_INPUT, LLAMAGEN_CONDITIONING, LLAMAGEN_MODEL, VQ_TOKENIZER, VQ_TOKENS

METHODS = list(llamagen.EDIT_METHODS)


class SourceCacheNode:
    DESCRIPTION = ("Caches an edit source once: generated tokens (keeps their prompt, seeds and settings) or a "
                   "real image's tokens, plus the tokenizer codebook, on the device. Reuse it for many edits.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokens": (VQ_TOKENS,), "tokenizer": (VQ_TOKENIZER,)}}

    RETURN_TYPES = (ATM_SOURCE,)
    RETURN_NAMES = ("source",)
    FUNCTION = "build"
    CATEGORY = f"{CATEGORY}/editing"

    def build(self, tokens, tokenizer):
        node = "AR Edit Source Cache"
        tokens = checks.llamagen_tokens(tokens, node)
        vq = checks.vq_tokenizer(tokenizer, node)
        try:
            llamagen.check_codes(tokens.tokens, vq, f"'{tokenizer.name}'")
        except ValueError as e:
            raise ValueError(f"{node}: {e}") from None
        return (llamagen.source_cache(tokens, vq, bridge.torch_device()),)


CANDIDATES_INPUT = (list(CANDIDATE_MODES), {
    "default": "auto", "tooltip": "how the K candidate tokens are drawn. distinct: K different tokens (the paper). "
    "sampled: K ordinary draws, so only plausible tokens; needed when K is a large share of the tokenizer's codes, "
    "or edits snap back to the source. auto: sampled when K is 10% of the codes or more, else distinct"})


_ATM = ATMSettings()  # the paper's K, alpha, tau (the embedded model's are the same)


def atm_inputs() -> dict:
    return {
        "K": ("INT", {"default": _ATM.K, "min": 1, "max": 16384, "tooltip": "how many candidates are drawn at each step to find one close to the source: more = keeps more of the source, slower"}),
        "alpha": ("FLOAT", {"default": _ATM.alpha, "min": 0.0, "max": 1.0, "step": 0.01,
                  "tooltip": "how fast the candidates narrow down towards the end of the image: higher = later parts keep less of the source; 0 = never narrows"}),
        "tau": ("FLOAT", {"default": _ATM.tau, "min": -1.0, "max": 4.0, "step": 0.05,
                "tooltip": "how close a candidate must be to the source to keep it: higher = keeps more of the source (smaller, safer edits); lower = changes more"}),
        "fallback": (list(FALLBACKS), {"default": _ATM.fallback, "tooltip": "what is drawn where no candidate is close to the source: greedy = the most likely choice; sample = a random one (more variety)"}),
    }


def _region(mask, source, node):
    return token_region(checks.mask(mask, node), source.grid, source.stride, source.batch)


def sweep_seeds(source, lists: dict, seed_values: str, use_source_seed: bool, node: str) -> list[int]:
    """A sweep's seeds: the single source picture's own (use_source_seed on a generated source), else the listed
    ones; checks first that the listed combinations (`lists`: widget name -> text) are not too many rows."""
    from_source = use_source_seed and source.seeds is not None
    check_rows({**lists, **({} if from_source else {"seed_values": seed_values})}, source.batch)
    if not from_source:
        return parse_values(seed_values, int, "seed_values")
    if source.batch != 1:
        raise ValueError(f"{node}: use_source_seed sweeps need a single source picture; turn it off to sweep seeds")
    return [int(source.seeds[0]) % SEED_RANGE]


def sweep_grid(images, settings, varying, method: str, batch: int, columns: int):
    """The sweep's pictures [rows, H, W, C] side by side, each labelled with its setting; tau varies along a row."""
    labels = [f"{s.label(varying)} | {method}" for s in settings] * batch
    taus = len({s.atm.tau for s in settings})
    return labelled_grid(images, labels, columns or (taus if taus > 1 else None), min_side=SWEEP_CELL_PX)


def draft_chunk(draft_decoding: bool) -> int:
    """The draft_decoding widget -> how many source tokens one pass may verify (1: one token per pass)."""
    return DRAFT_CHUNK if draft_decoding else 1


def edit_seeds(source, seed, use_source_seed):
    """A source's own seeds (a generated source, with use_source_seed on), else seed, seed + 1, ... per row. `source`:
    a SourceCache or a TokenBatch (both carry .seeds and .batch)."""
    if use_source_seed and source.seeds is not None:
        return source.seeds.cpu()
    return batch_seeds(seed, source.batch)


class ATMEdit:
    DESCRIPTION = ("Edits a source with a new prompt. method 'atm': Anchor Token Matching (ISLock) keeps each "
                   "token close to the source's where the edit allows; 'naive': plain regeneration with the "
                   "same seed (baseline). Optional mask: only the white area may change.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (LLAMAGEN_MODEL,), "source": (ATM_SOURCE,), "conditioning": (LLAMAGEN_CONDITIONING,),
                "method": (METHODS, {"default": "atm"}),
                "seed": s["seed"],
                "use_source_seed": ("BOOLEAN", {"default": True,
                                    "tooltip": "on: a generated source's own seeds are reused, so unchanged parts come out the same (a loaded photo has none; then seed is used)"}),
                "cfg_scale": s["cfg_scale"], "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
                **atm_inputs(),
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the source is kept"}),
                         "candidates": CANDIDATES_INPUT, "draft_decoding": DRAFT_INPUT, "compile": COMPILE_INPUT,
                         "preview_tokenizer": PREVIEW_TOKENIZER_INPUT},
        }

    RETURN_TYPES = (VQ_TOKENS, "MASK", "FLOAT")
    RETURN_NAMES = ("tokens", "changed_mask", "locked_fraction")
    OUTPUT_TOOLTIPS = ("edited tokens (decode them)", "where the edit differs from the source tokens",
                       "share of tokens equal to the source's (mean over the batch)")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, source, conditioning, method, seed, use_source_seed, cfg_scale, temperature, top_k, top_p,
             K, alpha, tau, fallback, mask=None, candidates="auto", draft_decoding=True, compile="auto",
             preview_tokenizer=None):
        node = "AR Anchor Token Matching Edit"
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        source = checks.atm_source(source, node)
        atm = ATMSettings(K, alpha, tau, fallback, candidates).validate()
        region = _region(mask, source, node)
        checks.load_for_run([model, preview_tokenizer], source.batch,
                            model)
        gpt = checks.llamagen_model(model, node)
        sampling = llamagen_sampling(gpt, cfg_scale, temperature, top_k, top_p)
        render = vq_preview(preview_tokenizer, gpt, source.grid, node)
        result = llamagen.edit(gpt, source, conditioning, sampling, atm, edit_seeds(source, seed, use_source_seed), method,
                               region=region, progress=bridge.progress(source.anchors.shape[1], preview=render),
                               max_chunk=draft_chunk(draft_decoding), compile=compile)
        gh, gw = source.grid
        changed = grid_to_mask(result.changed, gh * source.stride, gw * source.stride)
        return (result.tokens, changed.to(bridge.output_device()), float(result.locked_fraction.mean()))


class ATMSweep:
    DESCRIPTION = ("Runs every combination of the listed values (comma lists or start:stop:step) as ONE batched "
                   "edit sharing the source cache and prompt embedding; returns the images and a labelled grid.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (LLAMAGEN_MODEL,), "tokenizer": (VQ_TOKENIZER,), "source": (ATM_SOURCE,),
                "conditioning": (LLAMAGEN_CONDITIONING,), "method": (METHODS, {"default": "atm"}),
                "tau_values": ("STRING", {"default": "0.5, 1.0, 2.0"}),
                "K_values": ("STRING", {"default": str(_ATM.K)}),
                "alpha_values": ("STRING", {"default": f"{_ATM.alpha:g}"}),
                "seed_values": ("STRING", {"default": "0", "tooltip": "ignored with use_source_seed on a generated source"}),
                "cfg_values": ("STRING", {"default": str(AUTO), "tooltip": "guidance scales to try; " +
                                          auto_tooltip("llamagen", "sampling", "cfg_scale")}),
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "fallback": (list(FALLBACKS), {"default": _ATM.fallback}),
                "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = automatic"}),
            },
            "optional": {"mask": ("MASK",), "candidates": CANDIDATES_INPUT, "draft_decoding": DRAFT_INPUT,
                         "compile": COMPILE_INPUT},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", VQ_TOKENS)
    RETURN_NAMES = ("images", "grid", "tokens")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/editing"

    def sweep(self, model, tokenizer, source, conditioning, method, tau_values, K_values, alpha_values, seed_values,
              cfg_values, use_source_seed, fallback, temperature, top_k, top_p, columns, mask=None,
              candidates="auto", draft_decoding=True, compile="auto"):
        node = "AR Anchor Token Matching Sweep"
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        source = checks.atm_source(source, node)
        vq = checks.vq_tokenizer(tokenizer, node)  # before the sweep runs, not after
        seeds = sweep_seeds(source, {"tau_values": tau_values, "K_values": K_values, "alpha_values": alpha_values,
                                     "cfg_values": cfg_values}, seed_values, use_source_seed, node)
        checks.llamagen_model(model, node, load=False)  # the family first: what follows reads its settings
        own_cfg = defaults(model, "sampling").cfg_scale
        cfgs = [own_cfg if c == AUTO else c for c in parse_values(cfg_values, float, "cfg_values")]
        settings, varying = expand(parse_values(K_values, int, "K_values"), parse_values(alpha_values, float, "alpha_values"),
                                   parse_values(tau_values, float, "tau_values"), seeds, cfgs, fallback, candidates)
        checks.load_for_run([model, tokenizer], source.batch * len(settings), model)
        gpt = checks.llamagen_model(model, node)
        sampling = llamagen_sampling(gpt, settings[0].cfg_scale, temperature, top_k, top_p)
        region = _region(mask, source, node)
        result = run_sweep(gpt, source, conditioning, sampling, settings, method, region,
                           progress=bridge.progress(source.anchors.shape[1]), max_chunk=draft_chunk(draft_decoding),
                           compile=compile)
        gh, gw = source.grid
        images = model_to_comfy(llamagen.decode(vq, result.tokens.view(-1, gh, gw)))
        grid = sweep_grid(images, settings, varying, method, source.batch, columns)
        seeds_rows = seed_tensor([s.seed for s in settings] * source.batch)
        tokens = TokenBatch(result.tokens.view(-1, gh, gw), "edited", None, seeds_rows, sampling, source.stride)
        out = bridge.output_device()
        return (images.to(out), grid.to(out), tokens)
