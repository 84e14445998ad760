"""Lumina-mGPT nodes (ISLock's second backbone): loaders for the model folder and Meta's Chameleon VQGAN,
text-to-image, Image <-> Codes, and Anchor Token Matching / naive edits with an optional mask."""
from __future__ import annotations

import os

from ..core.defaults import AUTO, auto, resolve
from ..core.files.model_files import KNOWN_FILES, ensure_local, is_complete
from ..core.images import grid_to_mask
from ..core.llamagen.atm import CANDIDATE_MODES, FALLBACKS, ATMSettings
from ..core.lumina.chameleon import ChameleonLM, kv_bytes_per_row
from ..core.lumina.vqgan import ChameleonVQGAN, load_vqgan
from ..core.pipelines import lumina
from ..core.pipelines.common import batch_seeds
from ..core.records import TokenBatch
from ..core.sampling import seed_tensor
from ..core.sweeps import expand, parse_values
from ..core.shapes.embedded import EMBEDDED_DIR, LUMINA_CHOICES, embedded_defaults
from . import checks
from . import comfy_bridge as bridge
from .atm import draft_chunk, edit_seeds, sweep_grid, sweep_seeds
from .generate import auto_tooltip
from .types import CATEGORY, CHAMELEON_VQGAN, DRAFT_INPUT, LUMINA_CODES, LUMINA_MODEL, MAX_SEED

EMBEDDED = {kind: (name, os.path.join(EMBEDDED_DIR, sub)) for kind, (name, sub) in LUMINA_CHOICES.items()}
OFFICIAL = [n for n, f in KNOWN_FILES.items() if f.whole_repo]


def _folders(kind: str, marker: str) -> list[str]:
    """Folders under models/<kind> holding `marker` (config.json of a Chameleon model, or vqgan.ckpt)."""
    found = []
    for d in bridge.model_dirs(kind):
        if os.path.isdir(d):
            found += [n for n in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, n, marker))]
    return found


def _choices(kind: str, marker: str) -> list[str]:
    name, path = EMBEDDED[kind]
    local = _folders(kind, marker)
    # the official folders are offered even when absent (the model downloads; Meta's VQGAN goes in models/vq/chameleon)
    extra = [n for n in (OFFICIAL if kind == "autoregressive" else ["chameleon"]) if n not in local]
    return ([name] if os.path.isdir(path) else []) + local + extra


def _resolve(kind: str, name: str, marker: str, what: str) -> str:
    embedded_name, path = EMBEDDED[kind]
    if name == embedded_name:
        return path
    outside = bridge.outside_models_folder(name)
    if outside:
        raise ValueError(outside)
    for d in bridge.model_dirs(kind):
        if os.path.isfile(os.path.join(d, name, marker)) and (name not in KNOWN_FILES or
                                                              is_complete(os.path.join(d, name), kind)):
            return os.path.join(d, name)
    if name in KNOWN_FILES:  # an official folder: fetched from the hub into the first models folder
        return ensure_local(name, bridge.model_dirs(kind)[0])
    where = os.path.join(bridge.model_dirs(kind)[0], name)
    raise FileNotFoundError(f"{name} is not in models/{kind}: {what} (expected {where}/{marker})")


def _problem(kind: str, name: str, marker: str, what: str) -> str | None:
    """Why the loader could not get `name` now (checked before the graph runs), else None."""
    if name in KNOWN_FILES:
        return bridge.file_problem(kind, name)
    try:
        _resolve(kind, name, marker, what)
    except (ValueError, FileNotFoundError) as e:
        return str(e)
    return None


VQGAN_TIP = "Lumina-mGPT's image tokenizer, from AR Chameleon VQGAN Loader"
MODEL_HELP = "a Hugging Face folder: config.json, the safetensors shards with their index, tokenizer.json"
VQGAN_HELP = ("Meta's Chameleon VQGAN (vqgan.ckpt + vqgan.yaml from the tokenizer/ folder of the Chameleon weights, "
              "ai.meta.com/resources/models-and-libraries/chameleon-downloads) goes in models/vq/<name>/")


class LuminaLoader:
    DESCRIPTION = ("Loads Lumina-mGPT (a Hugging Face folder in models/autoregressive: config.json, safetensors "
                   "shards with their index, tokenizer.json), or the embedded Lumina-architecture model.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": (_choices("autoregressive", "config.json") or ["(no model folders found)"],
                           {"tooltip": "a Lumina-mGPT folder in models/autoregressive"}),
            "precision": (["auto", "bf16", "fp16", "fp32"], {"default": "auto", "tooltip": "auto: the file's own "
                          "(bf16 for the released folders; the embedded model fp32)"}),
        }}

    RETURN_TYPES = (LUMINA_MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("the Lumina-mGPT model, for AR Lumina Generate and AR Lumina Edit",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    @classmethod
    def VALIDATE_INPUTS(cls, model_name):
        return _problem("autoregressive", model_name, "config.json", MODEL_HELP) or True

    def load(self, model_name, precision):
        import torch

        path = _resolve("autoregressive", model_name, "config.json", MODEL_HELP)
        dtype = None if precision == "auto" else {"bf16": torch.bfloat16, "fp16": torch.float16,
                                                  "fp32": torch.float32}[precision]
        module = lumina.load_lumina(path, dtype, bridge.offload_device())
        return (bridge.ManagedModel(module, model_name, bridge.torch_device()),)


class ChameleonVQGANLoader:
    DESCRIPTION = "Loads Meta's Chameleon VQGAN (vqgan.ckpt + vqgan.yaml), Lumina-mGPT's image tokenizer."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vqgan_name": (_choices("vq", "vqgan.ckpt") or ["(no VQGAN folders found)"],
                                            {"tooltip": "a folder with vqgan.ckpt and vqgan.yaml in models/vq"})}}

    RETURN_TYPES = (CHAMELEON_VQGAN,)
    RETURN_NAMES = ("vqgan",)
    OUTPUT_TOOLTIPS = ("the image tokenizer, for AR Lumina Image to Codes and Codes to Image",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    @classmethod
    def VALIDATE_INPUTS(cls, vqgan_name):
        return _problem("vq", vqgan_name, "vqgan.ckpt", VQGAN_HELP) or True

    def load(self, vqgan_name):
        module = load_vqgan(_resolve("vq", vqgan_name, "vqgan.ckpt", VQGAN_HELP), bridge.offload_device())
        return (bridge.ManagedModel(module, vqgan_name, bridge.torch_device()),)


def _module(handle, want: type, node: str, what: str):
    module = getattr(handle, "module", handle)
    if not isinstance(module, want):
        raise ValueError(f"{node}: {what} must come from its loader, got {type(module).__name__}")
    return handle.load() if isinstance(handle, bridge.ManagedModel) else module


def _codes(codes, node: str) -> TokenBatch:
    if not isinstance(codes, TokenBatch):
        raise ValueError(f"{node}: codes must come from a Lumina node (generate, edit or Image to Codes)")
    return codes


PREVIEW_VQGAN_INPUT = (CHAMELEON_VQGAN, {"tooltip": "optional: the model's VQGAN, to watch the picture being drawn in "
                                              "the node while ComfyUI's previews are on"})


def _vqgan_preview(vqgan, model: ChameleonLM, grid: tuple[int, int], node: str):
    """The live preview's picture-so-far (None without a preview VQGAN)."""
    if vqgan is None:
        return None
    vq = _module(vqgan, ChameleonVQGAN, node, "preview_vqgan")
    lumina.check_pair(vq, model)
    return bridge.grid_preview(lambda codes: lumina.decode(vq, codes), grid, vq.downsample)


def _size(value: int, model: ChameleonLM) -> int:
    return model.picture_px if value == 0 else value


def _sampling(model, cfg_scale, temperature, top_k):
    return resolve(model, "sampling", cfg_scale=auto(cfg_scale), temperature=temperature, top_k=auto(top_k))


def sampling_inputs() -> dict:
    return {
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
        "cfg_scale": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1, "tooltip":
                      "how strongly the picture follows the prompt; " + auto_tooltip("lumina", "sampling", "cfg_scale")}),
        "temperature": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}),
        "top_k": ("INT", {"default": AUTO, "min": AUTO, "max": 65536, "tooltip": "only the k most likely image "
                  "codes are allowed at each step (0 = no limit); " + auto_tooltip("lumina", "sampling", "top_k")}),
    }


def _run_memory(model: ChameleonLM, rows: int, prompt_tokens: int, grid: tuple[int, int]) -> int:
    tokens = prompt_tokens + 3 + grid[0] * (grid[1] + 1)
    return kv_bytes_per_row(model.cfg, tokens, model.lm_head.weight.element_size()) * 2 * rows  # both branches


class LuminaGenerate:
    DESCRIPTION = ("Draws pictures with Lumina-mGPT from a prompt (one per line), both CFG branches in one batch; "
                   "decode the codes with AR Lumina Codes to Image.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (LUMINA_MODEL,),
            "prompt": ("STRING", {"multiline": True, "default": "a red circle at the top left on a white background"}),
            "width": ("INT", {"default": 0, "min": 0, "max": 2048, "step": 8, "tooltip": "0 = the model's own size"}),
            "height": ("INT", {"default": 0, "min": 0, "max": 2048, "step": 8, "tooltip": "0 = the model's own size"}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": checks.MAX_BATCH}),
            **sampling_inputs(),
        }, "optional": {"preview_vqgan": PREVIEW_VQGAN_INPUT}}

    RETURN_TYPES = (LUMINA_CODES,)
    RETURN_NAMES = ("codes",)
    OUTPUT_TOOLTIPS = ("the pictures as image codes: decode them, or edit them with AR Lumina Edit",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/lumina"

    def generate(self, model, prompt, width, height, batch_size, seed, cfg_scale, temperature, top_k,
                 preview_vqgan=None):
        node = "AR Lumina Generate"
        captions = [line.strip() for line in prompt.splitlines() if line.strip()]
        if not captions:
            raise ValueError(f"{node}: the prompt is empty")
        captions = [c for c in captions for _ in range(int(batch_size))]
        if len(captions) > checks.MAX_SWEEP_ROWS:
            raise ValueError(f"{node}: {len(captions)} pictures in one batch; at most {checks.MAX_SWEEP_ROWS}")
        net = getattr(model, "module", model)
        w, h = _size(width, net), _size(height, net)
        grid = lumina.grid(h, w, net.stride)
        bridge.load_models([model, preview_vqgan], _run_memory(net, len(captions), 64, grid))
        net = _module(model, ChameleonLM, node, "model")
        sampling = _sampling(net, cfg_scale, temperature, top_k)
        seeds = batch_seeds(seed, len(captions))
        render = _vqgan_preview(preview_vqgan, net, grid, node)
        out = lumina.generate(net, captions, h, w, seeds, sampling, bridge.progress(grid[0] * grid[1], preview=render))
        return (out,)


class LuminaImageToCodes:
    DESCRIPTION = "Encodes pictures into Chameleon VQGAN codes (to edit a photo with Lumina-mGPT)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vqgan": (CHAMELEON_VQGAN, {"tooltip": VQGAN_TIP}), "image": ("IMAGE",),
            "width": ("INT", {"default": 0, "min": 0, "max": 2048, "step": 8,
                      "tooltip": "0 = the picture's own width, rounded to a size the model makes"}),
            "height": ("INT", {"default": 0, "min": 0, "max": 2048, "step": 8,
                       "tooltip": "0 = the picture's own height, rounded to a size the model makes"}),
        }}

    RETURN_TYPES = (LUMINA_CODES,)
    RETURN_NAMES = ("codes",)
    OUTPUT_TOOLTIPS = ("the pictures as image codes, a source for AR Lumina Edit",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/lumina"

    def encode(self, vqgan, image, width, height):
        node = "AR Lumina Image to Codes"
        image = checks.image(image, node)
        vq = _module(vqgan, ChameleonVQGAN, node, "vqgan")
        unit = 2 * vq.downsample  # size tokens count pairs of codes
        h = height or max(unit, round(image.shape[1] / unit) * unit)
        w = width or max(unit, round(image.shape[2] / unit) * unit)
        return (lumina.encode(vq, image, h, w),)


class LuminaCodesToImage:
    DESCRIPTION = "Decodes Chameleon VQGAN codes into pictures."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vqgan": (CHAMELEON_VQGAN, {"tooltip": VQGAN_TIP}),
                             "codes": (LUMINA_CODES, {"tooltip": "image codes from a Lumina node"})}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("the decoded pictures",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/lumina"

    def decode(self, vqgan, codes):
        node = "AR Lumina Codes to Image"
        codes = _codes(codes, node)
        vq = _module(vqgan, ChameleonVQGAN, node, "vqgan")
        if codes.stride != vq.downsample:
            raise ValueError(f"{node}: these codes are of a {codes.stride} px VQGAN, this one codes every "
                             f"{vq.downsample} px: use the VQGAN that belongs to the model")
        return (lumina.decode(vq, codes).to(bridge.output_device()),)


class LuminaEdit:
    DESCRIPTION = ("Edits a source with a new prompt on Lumina-mGPT. method 'atm': Anchor Token Matching (ISLock) "
                   "keeps each code close to the source's where the new prompt allows (the paper's K 100, tau 0.4 "
                   "on first-layer embedding cosine); 'naive': plain regeneration with the same seed. Optional mask: "
                   "only the white area may change.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (LUMINA_MODEL,), "source": (LUMINA_CODES, {"tooltip": "the picture to edit, as codes "
                                                                 "(from AR Lumina Generate or Image to Codes)"}),
                "prompt": ("STRING", {"multiline": True, "default": "a blue circle at the top left on a white background"}),
                "method": (list(lumina.EDIT_METHODS), {"default": "atm"}),
                "seed": s["seed"],
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "cfg_scale": s["cfg_scale"], "temperature": s["temperature"], "top_k": s["top_k"],
                "K": ("INT", {"default": AUTO, "min": AUTO, "max": 65536, "tooltip": "candidates drawn at each step "
                      "to find one close to the source; " + auto_tooltip("lumina", "atm", "K")}),
                "alpha": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "how fast "
                          "the candidates narrow down towards the end of the picture: higher = later parts keep "
                          "less of the source; 0 = never narrows"}),
                "tau": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 2.0, "step": 0.01, "tooltip": "how close "
                        "(1 - cosine) a candidate must be to the source's code to keep it: higher = keeps more of "
                        "the source; " + auto_tooltip("lumina", "atm", "tau")}),
                "fallback": (list(FALLBACKS), {"default": "greedy", "tooltip": "what is drawn where no candidate "
                             "is close to the source: greedy = the most likely choice; sample = a random one"}),
            },
            "optional": {"mask": ("MASK",), "candidates": (list(CANDIDATE_MODES), {"default": "auto", "tooltip":
                         "how the K candidates are drawn: distinct = K different codes (the paper); sampled = K "
                         "ordinary draws; auto = the model file's own (the embedded model: "
                         f"{embedded_defaults('lumina', 'atm').candidates}), else sampled when K is 10% of the codes "
                         "or more"}), "draft_decoding": DRAFT_INPUT, "preview_vqgan": PREVIEW_VQGAN_INPUT},
        }

    RETURN_TYPES = (LUMINA_CODES, "MASK", "FLOAT")
    RETURN_NAMES = ("codes", "changed_mask", "locked_fraction")
    OUTPUT_TOOLTIPS = ("edited codes (decode them)", "where the edit differs from the source",
                       "share of codes equal to the source's (mean over the batch)")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/lumina"

    def edit(self, model, source, prompt, method, seed, use_source_seed, cfg_scale, temperature, top_k, K, alpha,
             tau, fallback, mask=None, candidates="auto", draft_decoding=True, preview_vqgan=None):
        node = "AR Lumina Edit"
        source = _codes(source, node)
        captions = [line.strip() for line in prompt.splitlines() if line.strip()] or [""]
        net = getattr(model, "module", model)
        bridge.load_models([model, preview_vqgan], _run_memory(net, source.batch, 64, source.grid))
        net = _module(model, ChameleonLM, node, "model")
        render = _vqgan_preview(preview_vqgan, net, source.grid, node)
        if source.stride != net.stride:
            raise ValueError(f"{node}: the source's codes are of a {source.stride} px VQGAN; this model reads "
                             f"{net.stride} px codes: encode the picture with the model's VQGAN")
        base = resolve(net, "atm")
        atm = ATMSettings(base.K if K == AUTO else K, alpha, base.tau if tau == AUTO else tau, fallback,
                          base.candidates if candidates == "auto" else candidates).validate()
        sampling = _sampling(net, cfg_scale, temperature, top_k)
        seeds = edit_seeds(source, seed, use_source_seed)
        cache = lumina.source_cache(net, source)
        result = lumina.edit(net, cache, captions, seeds, method, sampling, atm, checks.mask(mask, node),
                             bridge.progress(source.grid[0] * source.grid[1], preview=render),
                             max_chunk=draft_chunk(draft_decoding))
        tokens = result.tokens.view(source.batch, *source.grid)
        out = TokenBatch(tokens, "edited", None, seeds.to(tokens.device), sampling, source.stride)
        changed = grid_to_mask(result.changed.view(source.batch, *source.grid), source.grid[0] * source.stride,
                               source.grid[1] * source.stride)
        return (out, changed.to(bridge.output_device()), float(result.locked_fraction.mean()))


class LuminaSweep:
    DESCRIPTION = ("Tries many edit settings of a Lumina-mGPT edit at once: every combination of the tau, K, alpha, "
                   "cfg and seed values (comma-separated lists or start:stop:step) as ONE batch, with a labelled grid "
                   "to compare them. Each picture equals the single AR Lumina Edit with its setting.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (LUMINA_MODEL,), "vqgan": (CHAMELEON_VQGAN, {"tooltip": "decodes the grid's pictures"}),
                "source": (LUMINA_CODES, {"tooltip": "the picture to edit, as codes (AR Lumina Image to Codes or "
                                                     "Generate)"}),
                "prompt": ("STRING", {"multiline": True, "default": "a blue circle at the top left on a white background"}),
                "method": (list(lumina.EDIT_METHODS), {"default": "atm"}),
                "tau_values": ("STRING", {"default": "0.2, 0.4, 0.6", "tooltip": "thresholds to try (1 - cosine)"}),
                "K_values": ("STRING", {"default": str(AUTO), "tooltip": "candidates per step to try; "
                                        + auto_tooltip("lumina", "atm", "K")}),
                "alpha_values": ("STRING", {"default": "0.6"}),
                "cfg_values": ("STRING", {"default": str(AUTO), "tooltip": "guidance scales to try; "
                                          + auto_tooltip("lumina", "sampling", "cfg_scale")}),
                "seed_values": ("STRING", {"default": "0", "tooltip": "ignored with use_source_seed on a generated source"}),
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "fallback": (list(FALLBACKS), {"default": "greedy"}),
                "temperature": s["temperature"], "top_k": s["top_k"],
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = automatic"}),
            },
            "optional": {"mask": ("MASK",), "candidates": LuminaEdit.INPUT_TYPES()["optional"]["candidates"],
                         "draft_decoding": DRAFT_INPUT},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", LUMINA_CODES)
    RETURN_NAMES = ("images", "grid", "codes")
    OUTPUT_TOOLTIPS = ("every setting's picture, source major", "the pictures side by side, each labelled with "
                       "its setting", "the edited codes of every setting")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/lumina"

    def sweep(self, model, vqgan, source, prompt, method, tau_values, K_values, alpha_values, cfg_values,
              seed_values, use_source_seed, fallback, temperature, top_k, columns, mask=None, candidates="auto",
              draft_decoding=True):
        node = "AR Lumina Sweep"
        source = _codes(source, node)
        seeds = sweep_seeds(source, {"tau_values": tau_values, "K_values": K_values, "alpha_values": alpha_values,
                                     "cfg_values": cfg_values}, seed_values, use_source_seed, node)
        net = getattr(model, "module", model)
        if not isinstance(net, ChameleonLM):  # the family first: what follows reads its settings
            raise ValueError(f"{node}: model must come from its loader, got {type(net).__name__}")
        base_atm, base = resolve(net, "atm"), _sampling(net, AUTO, temperature, top_k)
        Ks = [base_atm.K if k == AUTO else k for k in parse_values(K_values, int, "K_values")]
        cfgs = [base.cfg_scale if c == AUTO else c for c in parse_values(cfg_values, float, "cfg_values")]
        settings, varying = expand(Ks, parse_values(alpha_values, float, "alpha_values"),
                                   parse_values(tau_values, float, "tau_values"), seeds, cfgs, fallback,
                                   base_atm.candidates if candidates == "auto" else candidates)
        rows = source.batch * len(settings)
        bridge.load_models([model, vqgan], _run_memory(net, rows, 64, source.grid))
        net = _module(model, ChameleonLM, node, "model")
        vq = _module(vqgan, ChameleonVQGAN, node, "vqgan")
        if source.stride != net.stride or vq.downsample != net.stride:
            raise ValueError(f"{node}: the source's codes ({source.stride} px), the model ({net.stride} px) and the "
                             f"VQGAN ({vq.downsample} px) must code alike: use the model's own VQGAN")
        captions = [line.strip() for line in prompt.splitlines() if line.strip()] or [""]
        result = lumina.sweep(net, lumina.source_cache(net, source), captions, settings, method, base,
                              checks.mask(mask, node), bridge.progress(source.grid[0] * source.grid[1]),
                              max_chunk=draft_chunk(draft_decoding))
        codes = result.tokens.view(rows, *source.grid)
        images = lumina.decode(vq, codes)
        grid = sweep_grid(images, settings, varying, method, source.batch, columns)
        out = TokenBatch(codes, "edited", None, seed_tensor([s.seed for s in settings] * source.batch).to(codes.device),
                         base, source.stride)
        dev = bridge.output_device()
        return (images.to(dev), grid.to(dev), out)
