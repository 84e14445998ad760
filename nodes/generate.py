"""Generation nodes: LlamaGen next-token sampling and Infinity next-scale sampling, with the widgets they share."""
from __future__ import annotations

from fractions import Fraction

import torch

from ..core.defaults import AUTO, PUBLISHED, auto, defaults, resolve
from ..core.infinity.generate import InfinitySampling
from ..core.infinity.scales import RESOLUTIONS, TEMPLATES
from ..core.pipelines import infinity, llamagen
from ..core.sampling import SamplingSettings, seed_plus, seed_tensor
from ..core.shapes.embedded import embedded_defaults
from ..core.sweeps import parse_values
from . import comfy_bridge as bridge
from . import checks
from .types import (BIT_TOKENS, CATEGORY, INFINITY_CONDITIONING, INFINITY_MODEL, LLAMAGEN_CONDITIONING, LLAMAGEN_MODEL,
                    MAX_SEED, VQ_TOKENIZER, VQ_TOKENS, COMPILE_INPUT, BSQ_VAE)


PREVIEW_TOKENIZER_INPUT = (VQ_TOKENIZER, {"tooltip": "optional: the model's VQ tokenizer, to watch the picture "
                                        "being drawn in the node while ComfyUI's previews are on"})


def vq_preview(tokenizer, gpt, grid: tuple[int, int], node: str):
    """The live preview's picture-so-far for a LlamaGen-family run (None without a preview tokenizer)."""
    if tokenizer is None:
        return None
    vq = checks.vq_tokenizer(tokenizer, node)
    if vq.cfg.codebook_size != gpt.cfg.vocab_size:
        raise ValueError(f"{node}: the preview tokenizer '{tokenizer.name}' has {vq.cfg.codebook_size} codes, the "
                         f"model draws from {gpt.cfg.vocab_size}: connect the model's own VQ tokenizer")
    return bridge.grid_preview(lambda ids: llamagen.decode(vq, ids).permute(0, 2, 3, 1), grid, vq.cfg.downsample)


PREVIEW_VAE_INPUT = (BSQ_VAE, {"tooltip": "optional: the model's BSQ VAE, to watch the picture sharpen scale by "
                                "scale in the node while ComfyUI's previews are on"})


def bits_preview(vae, net, schedule, node: str):
    """The live preview for Infinity's scale loop (None without a preview VAE): the first row's scales so far
    decoded (a coarse picture at the last scale done), enlarged to the final size."""
    if vae is None:
        return None
    from ..core.infinity.codec import bits_to_images
    from ..core.infinity.generate import BitTokens

    vae = checks.bsq_vae(vae, node)

    def render(scales, done: int) -> torch.Tensor | None:
        bits = [b[:1] for b in scales()[:done]]
        with torch.inference_mode():
            picture = bits_to_images(vae, BitTokens(bits, schedule[:done], "generated", net.cfg.patchify)).float()
        h, w = schedule[-1]
        factor = picture.shape[-1] // schedule[done - 1][1]  # px per token of this VAE
        full = torch.nn.functional.interpolate(picture, size=(h * factor, w * factor), mode="nearest")
        return full.permute(0, 2, 3, 1).cpu()

    return render


def auto_tooltip(family: str, kind: str, field: str) -> str:
    """What AUTO means for a widget, in words: the embedded model's value and the official files' one."""
    return (f"-1 = the model file's own (the embedded model: {getattr(embedded_defaults(family, kind), field):g}; "
            f"official files: {getattr(PUBLISHED[(family, kind)], field):g})")


def sampling_inputs(family: str = "llamagen") -> dict:
    """Widgets every LlamaGen-style sampler node shares; cfg_scale and top_k default to the model's own (AUTO)."""
    base = PUBLISHED[(family, "sampling")]
    return {
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
        "cfg_scale": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1,
                      "tooltip": "how strongly the picture follows the prompt: higher = closer to the words but less "
                                 "varied and harsher; 1 = no extra push; " + auto_tooltip(family, "sampling", "cfg_scale")}),
        "temperature": ("FLOAT", {"default": base.temperature, "min": 0.0, "max": 5.0, "step": 0.01, "tooltip": "randomness: lower = safer, more repetitive choices; 0 = always the most likely; higher = wilder"}),
        "top_k": ("INT", {"default": AUTO, "min": AUTO, "max": 65536,
                  "tooltip": "only the k most likely choices are allowed at each step (0 = no limit); lower = safer, "
                             "less varied; " + auto_tooltip(family, "sampling", "top_k")}),
        "top_p": ("FLOAT", {"default": base.top_p, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": "only the most likely choices that together make up this share are allowed; lower = safer, less varied; 1 = no limit"}),
    }


def llamagen_sampling(model, cfg_scale, temperature, top_k, top_p) -> SamplingSettings:
    """The sampler widgets -> settings, AUTO fields from the model file (ManagedModel or module)."""
    return resolve(model, "sampling", cfg_scale=auto(cfg_scale), temperature=temperature, top_k=auto(top_k),
                   top_p=top_p)


class Generate:
    DESCRIPTION = ("Samples image tokens with the AR model (static KV cache, CFG). batch_size images per "
                   "prompt with seeds seed, seed+1, ...; the output can be decoded or used as an edit source.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {"required": {
            "model": (LLAMAGEN_MODEL,),
            "conditioning": (LLAMAGEN_CONDITIONING,),
            "seed": s["seed"],
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
            "cfg_scale": s["cfg_scale"], "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
        }, "optional": {"compile": COMPILE_INPUT, "preview_tokenizer": PREVIEW_TOKENIZER_INPUT},
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"}}  # to check the decoding tokenizer first

    RETURN_TYPES = (VQ_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"

    def generate(self, model, conditioning, seed, batch_size, cfg_scale, temperature, top_k, top_p, compile="auto",
                 preview_tokenizer=None, prompt=None, unique_id=None):
        checks.batch_size(batch_size, conditioning, "AR Generate")
        net = checks.llamagen_model(model, "AR Generate", load=False)
        checks.tokenizers_fit(getattr(net, "module", net), prompt, unique_id, "AR Generate")
        checks.load_for_run([model, preview_tokenizer], conditioning.batch * batch_size, model)
        gpt = checks.llamagen_model(model, "AR Generate")
        g = gpt.cfg.grid_size
        render = vq_preview(preview_tokenizer, gpt, (g, g), "AR Generate")
        settings = llamagen_sampling(gpt, cfg_scale, temperature, top_k, top_p)
        cond = conditioning.repeat_interleave(batch_size).to(gpt.device)
        seeds = seed_tensor([seed_plus(seed, i) for _ in range(conditioning.batch) for i in range(batch_size)])
        return (llamagen.generate(gpt, cond, settings, seeds, compile=compile,
                                  progress=bridge.progress(gpt.cfg.num_image_tokens, preview=render)),)


def _aspect_label(h_div_w: float) -> str:
    """A template's height / width -> "width:height" in small whole numbers (1.333 -> "3:4")."""
    f = Fraction(h_div_w).limit_denominator(10)
    return f"{f.denominator}:{f.numerator}"


# One format, as photographers write it: width:height. Square first, then wide, then tall.
def _aspect_order(label: str) -> tuple:
    w, h = (int(v) for v in label.split(":"))
    return (w != h, w < h, w / h if w >= h else h / w)


ASPECTS = sorted((_aspect_label(r) for r in TEMPLATES), key=_aspect_order)


def _per_scale(text: str, fallback: float, name: str) -> float | tuple[float, ...]:
    return fallback if not text.strip() else tuple(parse_values(text, float, name))


def infinity_sampling_inputs() -> dict:
    base = PUBLISHED[("infinity", "sampling")]
    return {
        "cfg": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1,
                "tooltip": "how strongly the picture follows the prompt: higher = closer to the words, less varied; "
                           "1 = no extra push; " + auto_tooltip("infinity", "sampling", "cfg")}),
        "tau": ("FLOAT", {"default": base.tau, "min": 0.01, "max": 5.0, "step": 0.01, "tooltip": "randomness of each step: lower = safer, smoother pictures; higher = more varied and noisier"}),
        "top_p": ("FLOAT", {"default": base.top_p, "min": 0.01, "max": 1.0, "step": 0.01,
                  "tooltip": "lower = only confident choices are kept (safer, less varied); 1 = no limit"}),
        "cfg_per_scale": ("STRING", {"default": "", "tooltip": "optional: one cfg per scale, coarse to fine "
                                     "(comma list); empty = cfg everywhere"}),
        "tau_per_scale": ("STRING", {"default": "", "tooltip": "optional: one tau per scale; empty = tau everywhere"}),
    }


def infinity_sampling(model, cfg, tau, top_p, cfg_per_scale, tau_per_scale) -> InfinitySampling:
    """The Infinity sampling widgets (shared by the generate and AREdit cache nodes) -> checked settings; cfg AUTO:
    the model file's own."""
    cfg = defaults(model, "sampling").cfg if cfg == AUTO else cfg
    return InfinitySampling(_per_scale(cfg_per_scale, cfg, "cfg_per_scale"), _per_scale(tau_per_scale, tau, "tau_per_scale"),
                            top_p).validate()


class InfinityGenerate:
    DESCRIPTION = ("Generates with an Infinity model, scale by scale (KV cache across scales, CFG on logits, per-bit "
                   "sampling). batch_size images per prompt with seeds seed, seed+1, ...; the tokens keep their "
                   "probabilities, so they serve as an AREdit source at no extra cost.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (INFINITY_MODEL,),
            "conditioning": (INFINITY_CONDITIONING, {"tooltip": "from AR Infinity Text Encode"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
            "resolution": (["auto"] + [str(r) for r in RESOLUTIONS], {"default": "auto",
                           "tooltip": "image size in pixels. auto: the largest the loaded model makes (official "
                                      "Infinity: 1024; the embedded ShapesWorld model: 48). Smaller sizes are "
                                      "faster and less detailed"}),
            "aspect_ratio": (ASPECTS, {"default": "1:1", "tooltip": "the picture's shape, width:height: 1:1 square, 4:3 or 2:1 "
                                                   "wide, 3:4 or 1:2 tall"}),
            **infinity_sampling_inputs(),
        }, "optional": {
            "negative": (INFINITY_CONDITIONING, {"tooltip": "a negative prompt for guidance instead of the learned "
                                                 "null text (AR Infinity Text Encode)"}),
            "preview_vae": PREVIEW_VAE_INPUT, "compile": COMPILE_INPUT,
        }}

    RETURN_TYPES = (BIT_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"

    def generate(self, model, conditioning, seed, batch_size, resolution, aspect_ratio, cfg, tau, top_p,
                 cfg_per_scale, tau_per_scale, negative=None, preview_vae=None, compile="auto"):
        checks.batch_size(batch_size, conditioning, "AR Infinity Generate")
        net = checks.infinity_model(model, "AR Infinity Generate", load=False).module
        sampling = infinity_sampling(net, cfg, tau, top_p, cfg_per_scale, tau_per_scale)
        schedule = infinity.schedule_for(net, resolution, aspect_ratio)
        checks.load_for_run([model, preview_vae], conditioning.batch * batch_size,
                            net, schedule)
        net = model.load()
        render = bits_preview(preview_vae, net, schedule, "AR Infinity Generate")
        cond = conditioning.repeat_interleave(batch_size).to(net.device)
        seeds = seed_tensor([seed_plus(seed, i) for _ in range(conditioning.batch) for i in range(batch_size)])
        if negative is not None and negative.batch not in (1, conditioning.batch):
            raise ValueError(f"{negative.batch} negative prompts for {conditioning.batch} prompts: give 1 or one each")
        neg = None if negative is None else negative.repeat_interleave(batch_size if negative.batch > 1 else 1)
        return (infinity.generate(net, cond, schedule, sampling, seeds, negative=neg,
                                  progress=bridge.progress(len(schedule), preview=render), compile=compile),)
