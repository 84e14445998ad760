"""Janus-Pro nodes: the loader (a deepseek-ai/Janus-Pro folder, either layout; it gives the model and its VQ-16
tokenizer), text-to-image, and Anchor Token Matching / naive edits with an optional mask. Janus-Pro's codes are
LlamaGen VQ tokens, so AR Image to Tokens, AR Edit Source Cache and AR Tokens to Image take the loader's tokenizer."""
from __future__ import annotations

import os

from ..core.defaults import AUTO, auto, resolve
from ..core.files.checkpoints import read_config_json
from ..core.files.model_files import KNOWN_FILES, ensure_local, is_complete
from ..core.images import grid_to_mask, model_to_comfy
from ..core.janus.model import JanusGen
from ..core.llamagen.atm import ATMSettings
from ..core.pipelines import janus, llamagen
from ..core.pipelines.common import batch_seeds
from ..core.records import TokenBatch
from ..core.sampling import seed_tensor
from ..core.sweeps import expand, parse_values
from ..core.shapes.embedded import EMBEDDED_DIR, JANUS_CHOICES
from . import checks
from . import comfy_bridge as bridge
from .atm import CANDIDATES_INPUT, atm_inputs, draft_chunk, edit_seeds, sweep_grid, sweep_seeds
from .generate import auto_tooltip
from .types import ATM_SOURCE, CATEGORY, DRAFT_INPUT, JANUS_MODEL, MAX_SEED, PRECISIONS, VQ_TOKENIZER, VQ_TOKENS

OFFICIAL = [n for n, f in KNOWN_FILES.items() if n.startswith("Janus-Pro")]
HELP = ("a deepseek-ai/Janus-Pro folder as downloaded: config.json, tokenizer.json and the weights (pytorch_model.bin, "
        "or the shards with their index; or transformers' converted safetensors)")


EMBEDDED_NAME, _sub = JANUS_CHOICES["autoregressive"]
EMBEDDED_PATH = os.path.join(EMBEDDED_DIR, _sub)


def _is_janus(folder: str) -> bool:
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return False
    try:
        cfg = read_config_json(folder)
    except ValueError:
        return False
    return "language_config" in cfg or cfg.get("model_type") == "janus"


def _choices() -> list[str]:
    local = [n for d in bridge.model_dirs("autoregressive") if os.path.isdir(d) for n in sorted(os.listdir(d))
             if _is_janus(os.path.join(d, n))]
    own = [EMBEDDED_NAME] if os.path.isdir(EMBEDDED_PATH) else []  # runs with no download
    return own + local + [n for n in OFFICIAL if n not in local]  # the official folders download when picked


def _resolve(name: str) -> str:
    if name == EMBEDDED_NAME:
        return EMBEDDED_PATH
    outside = bridge.outside_models_folder(name)
    if outside:
        raise ValueError(outside)
    for d in bridge.model_dirs("autoregressive"):
        path = os.path.join(d, name)
        if _is_janus(path) and (name not in KNOWN_FILES or is_complete(path, "autoregressive")):
            return path
    if name in KNOWN_FILES:
        return ensure_local(name, bridge.model_dirs("autoregressive")[0])
    raise FileNotFoundError(f"{name} is not a Janus-Pro folder in models/autoregressive ({HELP})")


class JanusLoader:
    DESCRIPTION = ("Loads Janus-Pro (1B or 7B) from its folder in models/autoregressive, DeepSeek's files or "
                   "transformers' converted ones: the model and its VQ-16 image tokenizer. Only what drawing needs is "
                   "loaded (not the picture-understanding encoder).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": (_choices() or ["(no Janus-Pro folders found)"], {"tooltip": "a Janus-Pro folder in "
                           "models/autoregressive; Janus-Pro-1B / -7B download when picked (4.2 / 14.8 GB); (embedded) shapes-janus: "
                           "the pack's small ShapesWorld model in Janus-Pro's layout, no download"}),
            "precision": (PRECISIONS, {"default": "auto", "tooltip": "auto: the file's own (bf16 for the released "
                          "folders, the embedded one fp32), as the official code runs it"}),
        }}

    RETURN_TYPES = (JANUS_MODEL, VQ_TOKENIZER)
    RETURN_NAMES = ("model", "tokenizer")
    OUTPUT_TOOLTIPS = ("the Janus-Pro model, for AR Janus Generate and AR Janus Edit",
                       "its VQ-16 image tokenizer (fp32), for AR Image to Tokens, AR Edit Source Cache and AR Tokens "
                       "to Image")
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    @classmethod
    def VALIDATE_INPUTS(cls, model_name):
        if model_name in KNOWN_FILES:
            return bridge.file_problem("autoregressive", model_name) or True
        try:
            _resolve(model_name)
        except (ValueError, FileNotFoundError) as e:
            return str(e)
        return True

    def load(self, model_name, precision):
        import torch

        dtype = None if precision == "auto" else {"bf16": torch.bfloat16, "fp16": torch.float16,
                                                  "fp32": torch.float32}[precision]
        module, vq = janus.load_janus(_resolve(model_name), dtype, bridge.offload_device())
        # offload: on a GPU too small for all of it (the 7B: 12.3 GiB in bf16), ComfyUI keeps what does not fit
        # in CPU memory and streams it in per step (slower, but it runs)
        return (bridge.ManagedModel(module, model_name, bridge.torch_device(), offload=True),
                bridge.ManagedModel(vq, f"{model_name} VQ", bridge.torch_device()))


def _model(handle, node: str) -> JanusGen:
    if not isinstance(getattr(handle, "module", handle), JanusGen):
        raise ValueError(f"{node} needs a Janus-Pro model from AR Janus Loader, got "
                         f"'{getattr(handle, 'name', type(handle).__name__)}'")
    return handle.load() if isinstance(handle, bridge.ManagedModel) else handle


PREVIEW_INPUT = (VQ_TOKENIZER, {"tooltip": "optional: the loader's tokenizer, to watch the picture being drawn in the "
                                "node while ComfyUI's previews are on"})


def _preview(tokenizer, model: JanusGen, node: str):
    if tokenizer is None:
        return None
    vq = checks.vq_tokenizer(tokenizer, node)
    janus.check_pair(vq, model)
    g = model.cfg.grid_size
    return bridge.grid_preview(lambda ids: llamagen.decode(vq, ids).permute(0, 2, 3, 1), (g, g), vq.downsample)


def _load(models, model, rows: int, prompt: list[int]) -> JanusGen:
    """One load for the run, with room for its buffers (KV cache of both CFG branches, activations; the pipeline's
    estimate): ComfyUI frees that much, and what of the model then does not fit stays in CPU memory."""
    module = getattr(model, "module", model)
    bridge.load_models(models, janus.decode_memory(module, [prompt]).per_row * rows)
    return module


def sampling_inputs() -> dict:
    return {
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
        "cfg_scale": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1, "tooltip":
                      "how strongly the picture follows the prompt; " + auto_tooltip("janus", "sampling", "cfg_scale")}),
        "temperature": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}),
        "top_k": ("INT", {"default": AUTO, "min": AUTO, "max": 16384, "tooltip": "only the k most likely codes at each "
                  "step (0 = no limit); " + auto_tooltip("janus", "sampling", "top_k")}),
    }


def janus_atm_inputs() -> dict:
    """LlamaGen's ATM widgets, with K and tau defaulting to the model's own (the embedded set has tuned ones)."""
    own = atm_inputs()
    return {**own,
            "K": ("INT", {**own["K"][1], "default": AUTO, "min": AUTO,
                          "tooltip": own["K"][1]["tooltip"] + "; " + auto_tooltip("janus", "atm", "K")}),
            "tau": ("FLOAT", {**own["tau"][1], "default": AUTO, "min": AUTO,
                              "tooltip": own["tau"][1]["tooltip"] + "; " + auto_tooltip("janus", "atm", "tau")})}


def _atm(module, K, alpha, tau, fallback, candidates) -> ATMSettings:
    base = resolve(module, "atm")
    return ATMSettings(base.K if K == AUTO else K, alpha, base.tau if tau == AUTO else tau, fallback,
                       base.candidates if candidates == "auto" else candidates).validate()


def _sampling(model, cfg_scale, temperature, top_k):
    return resolve(model, "sampling", cfg_scale=auto(cfg_scale), temperature=temperature, top_k=auto(top_k))


class JanusGenerate:
    DESCRIPTION = ("Draws 384 px pictures with Janus-Pro from a prompt, both guidance branches in one batch (the "
                   "official prompt format and sampler); decode them with AR Tokens to Image and the loader's "
                   "tokenizer.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (JANUS_MODEL,),
            "prompt": ("STRING", {"multiline": True, "default": "a photo of a red fox sitting in fresh snow"}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": checks.MAX_BATCH}),
            **sampling_inputs(),
        }, "optional": {"preview_tokenizer": PREVIEW_INPUT}}

    RETURN_TYPES = (VQ_TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("the pictures' codes (with their prompt and seeds, for an edit's source)",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/janus"

    def generate(self, model, prompt, batch_size, seed, cfg_scale, temperature, top_k, preview_tokenizer=None):
        node = "AR Janus Generate"
        module = _model(getattr(model, "module", model), node)
        ids = janus.encode_prompts(module, [prompt])[0]  # a bad prompt fails before anything loads
        module = _load([model, preview_tokenizer], model, batch_size, ids)
        sampling = _sampling(module, cfg_scale, temperature, top_k)
        render = _preview(preview_tokenizer, module, node)
        n = module.cfg.num_image_tokens
        return (janus.generate(module, [prompt] * batch_size, batch_seeds(seed, batch_size), sampling,
                               bridge.progress(n, preview=render)),)


class JanusEdit:
    DESCRIPTION = ("Edits a Janus-Pro picture (or a photo encoded with the loader's tokenizer at 384 px) with a new "
                   "prompt. method 'atm': Anchor Token Matching keeps each code close to the source's where the edit "
                   "allows; 'naive': plain regeneration with the same seed. Optional mask: only the white area may "
                   "change.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (JANUS_MODEL,), "source": (ATM_SOURCE,),
                "prompt": ("STRING", {"multiline": True, "default": "a photo of a white arctic fox sitting in fresh snow"}),
                "method": (list(janus.EDIT_METHODS), {"default": "atm"}),
                "seed": s["seed"],
                "use_source_seed": ("BOOLEAN", {"default": True, "tooltip": "on: a generated source's own seeds are "
                                    "reused, so unchanged parts come out the same (a photo has none; then seed)"}),
                "cfg_scale": s["cfg_scale"], "temperature": s["temperature"], "top_k": s["top_k"],
                **janus_atm_inputs(),
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the source is kept"}),
                         "candidates": CANDIDATES_INPUT, "draft_decoding": DRAFT_INPUT,
                         "preview_tokenizer": PREVIEW_INPUT},
        }

    RETURN_TYPES = (VQ_TOKENS, "MASK", "FLOAT")
    RETURN_NAMES = ("tokens", "changed_mask", "locked_fraction")
    OUTPUT_TOOLTIPS = ("edited codes (decode them)", "where the edit differs from the source",
                       "share of codes equal to the source's (mean over the batch)")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/janus"

    def edit(self, model, source, prompt, method, seed, use_source_seed, cfg_scale, temperature, top_k, K, alpha,
             tau, fallback, mask=None, candidates="auto", draft_decoding=True, preview_tokenizer=None):
        node = "AR Janus Edit"
        source = checks.atm_source(source, node)
        module = _model(getattr(model, "module", model), node)
        ids = janus.encode_prompts(module, [prompt])[0]
        atm = _atm(module, K, alpha, tau, fallback, candidates)
        mask = checks.mask(mask, node)
        module = _load([model, preview_tokenizer], model, source.batch, ids)
        seeds = edit_seeds(source, seed, use_source_seed)
        result = janus.edit(module, source, prompt, seeds, method, _sampling(module, cfg_scale, temperature, top_k),
                            atm, mask, bridge.progress(module.cfg.num_image_tokens,
                                                       preview=_preview(preview_tokenizer, module, node)),
                            draft_chunk(draft_decoding))
        gh, gw = source.grid
        changed = grid_to_mask(result.changed.view(-1, gh, gw), gh * source.stride, gw * source.stride)
        tokens = TokenBatch(result.tokens.view(-1, gh, gw), "edited", None, seeds, None, source.stride)
        return (tokens, changed.to(bridge.output_device()), float(result.locked_fraction.mean()))


class JanusSweep:
    DESCRIPTION = ("Tries many settings of a Janus-Pro edit at once: every combination of the tau, K, alpha, cfg and "
                   "seed values (comma-separated lists or start:stop:step) as ONE batch, with a labelled grid to "
                   "compare them. Each picture equals the single AR Janus Edit with its setting.")

    @classmethod
    def INPUT_TYPES(cls):
        s, a = sampling_inputs(), janus_atm_inputs()
        return {
            "required": {
                "model": (JANUS_MODEL,), "tokenizer": (VQ_TOKENIZER, {"tooltip": "the loader's tokenizer: decodes "
                                                                       "the grid's pictures"}),
                "source": (ATM_SOURCE,),
                "prompt": ("STRING", {"multiline": True, "default": "a photo of a white arctic fox sitting in fresh snow"}),
                "method": (list(janus.EDIT_METHODS), {"default": "atm"}),
                "tau_values": ("STRING", {"default": "0.5, 1.0, 2.0", "tooltip": "thresholds to try; " +
                                          auto_tooltip("janus", "atm", "tau")}),
                "K_values": ("STRING", {"default": str(AUTO), "tooltip": "candidates per step to try; " +
                                        auto_tooltip("janus", "atm", "K")}),
                "alpha_values": ("STRING", {"default": f"{a['alpha'][1]['default']:g}"}),
                "cfg_values": ("STRING", {"default": str(AUTO), "tooltip": "guidance scales to try; " +
                                          auto_tooltip("janus", "sampling", "cfg_scale")}),
                "seed_values": ("STRING", {"default": "0", "tooltip": "ignored with use_source_seed on a generated source"}),
                "use_source_seed": ("BOOLEAN", {"default": True}),
                "fallback": a["fallback"], "temperature": s["temperature"], "top_k": s["top_k"],
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = automatic"}),
            },
            "optional": {"mask": ("MASK",), "candidates": CANDIDATES_INPUT, "draft_decoding": DRAFT_INPUT},
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", VQ_TOKENS)
    RETURN_NAMES = ("images", "grid", "tokens")
    OUTPUT_TOOLTIPS = ("every setting's picture, source major", "the pictures side by side, each labelled with "
                       "its setting", "the edited codes of every setting")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/janus"

    def sweep(self, model, tokenizer, source, prompt, method, tau_values, K_values, alpha_values, cfg_values,
              seed_values, use_source_seed, fallback, temperature, top_k, columns, mask=None, candidates="auto",
              draft_decoding=True):
        node = "AR Janus Sweep"
        source = checks.atm_source(source, node)
        vq = checks.vq_tokenizer(tokenizer, node)  # before the sweep runs, not after
        seeds = sweep_seeds(source, {"tau_values": tau_values, "K_values": K_values, "alpha_values": alpha_values,
                                     "cfg_values": cfg_values}, seed_values, use_source_seed, node)
        module = _model(getattr(model, "module", model), node)  # the family first: what follows reads its settings
        janus.check_pair(vq, module)
        ids = janus.encode_prompts(module, [prompt])[0]
        base_atm, base = resolve(module, "atm"), _sampling(module, AUTO, temperature, top_k)
        Ks = [base_atm.K if k == AUTO else k for k in parse_values(K_values, int, "K_values")]
        taus = [base_atm.tau if t == AUTO else t for t in parse_values(tau_values, float, "tau_values")]
        cfgs = [base.cfg_scale if c == AUTO else c for c in parse_values(cfg_values, float, "cfg_values")]
        settings, varying = expand(Ks, parse_values(alpha_values, float, "alpha_values"), taus, seeds, cfgs, fallback,
                                   base_atm.candidates if candidates == "auto" else candidates)
        rows = source.batch * len(settings)
        module = _load([model, tokenizer], model, rows, ids)
        result = janus.sweep(module, source, prompt, settings, method, base, checks.mask(mask, node),
                             bridge.progress(module.cfg.num_image_tokens), max_chunk=draft_chunk(draft_decoding))
        gh, gw = source.grid
        codes = result.tokens.view(rows, gh, gw)
        images = model_to_comfy(llamagen.decode(vq, codes))
        grid = sweep_grid(images, settings, varying, method, source.batch, columns)
        out = TokenBatch(codes, "edited", None, seed_tensor([s.seed for s in settings] * source.batch), base,
                         source.stride)
        dev = bridge.output_device()
        return (images.to(dev), grid.to(dev), out)
