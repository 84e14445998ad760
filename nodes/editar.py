"""Node for EditAR: instruction editing and depth / canny / segmentation -> image on LlamaGen."""
from __future__ import annotations

import torch

from ..core.defaults import AUTO, auto, defaults, resolve
from ..core.grid_image import SWEEP_CELL_PX, labelled_grid
from ..core.images import model_to_comfy
from ..core.llamagen.editar import DEFAULT_IMAGE_CFG, TASK_TEMPLATES, task_prompt
from ..core.pipelines import editar, llamagen
from ..core.pipelines.common import token_region
from ..core.records import TokenBatch
from ..core.sampling import seed_plus, seed_tensor
from ..core.sweeps import check_rows, parse_values
from . import checks
from . import comfy_bridge as bridge
from .atm import draft_chunk
from .generate import auto_tooltip, sampling_inputs, vq_preview
from .types import AR_TEXT_ENCODER, CATEGORY, COMPILE_INPUT, DRAFT_INPUT, EDITAR_MODEL, VQ_TOKENIZER, VQ_TOKENS


class EditAR:
    DESCRIPTION = ("EditAR (editar_release.pt): edits an image by instruction, or turns a depth / canny / "
                   "segmentation map (any IMAGE, e.g. from a preprocessor node) into an image. The image is "
                   "resized like EditAR's training data (short side to the model size with Lanczos, centre crop). "
                   "Optional mask: only the white area may change.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs("editar")
        return {
            "required": {
                "model": (EDITAR_MODEL,), "tokenizer": (VQ_TOKENIZER,), "text_encoder": (AR_TEXT_ENCODER,),
                "image": ("IMAGE", {"tooltip": "the image to edit, or the depth / edge / segmentation map"}),
                "instruction": ("STRING", {"multiline": True, "default": "",
                                "tooltip": "edit: the instruction; depth/canny/segmentation: the image description"}),
                "task": (list(TASK_TEMPLATES), {"default": "edit", "tooltip": "edit: change the picture by the instruction. depth / canny / "
                      "segmentation: make a new picture from that kind of map and the description"}),
                "seed": s["seed"],
                "text_cfg": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 30.0, "step": 0.1,
                             "tooltip": "how strongly the edit follows the instruction: higher = a clearer "
                                        "change, less of the picture kept; 1 = no extra push; " +
                                        auto_tooltip("editar", "editar", "text_cfg")}),
                "image_cfg": ("FLOAT", {"default": DEFAULT_IMAGE_CFG, "min": 0.0, "max": 30.0, "step": 0.1,
                              "tooltip": "how strongly the result sticks to the input picture: higher = "
                                         "keeps more of it; 1 = no extra push (the released code's setting)"}),
                "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the input is kept"}),
                         "draft_decoding": DRAFT_INPUT, "compile": COMPILE_INPUT},
        }

    RETURN_TYPES = (VQ_TOKENS, VQ_TOKENS)
    RETURN_NAMES = ("tokens", "input_tokens")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, tokenizer, text_encoder, image, instruction, task, seed, text_cfg, image_cfg, temperature,
             top_k, top_p, mask=None, draft_decoding=True, compile="auto"):
        edited, source, _ = run_editar(model, tokenizer, text_encoder, image, instruction, task, [seed], [text_cfg],
                                       [image_cfg], temperature, top_k, top_p, mask, draft_decoding, compile)
        return edited, source


def run_editar(model, tokenizer, text_encoder, image, instruction, task, seeds, text_cfgs, image_cfgs, temperature,
               top_k, top_p, mask, draft_decoding=True, compile="auto"):
    """Every (seed, text_cfg, image_cfg) combination for every input image as ONE batched decode.
    Row order: image, then seed, then text_cfg, then image_cfg (fastest); image i uses seed + i.
    -> (edited, inputs, labels)."""
    node = "AR EditAR"
    prompt = task_prompt(task, instruction)
    checks.image(image, node)
    checks.mask(mask, node)
    checks.batch_rows(image.shape[0], len(seeds) * len(text_cfgs) * len(image_cfgs))
    checks.load_for_run([model, tokenizer, text_encoder], image.shape[0] * len(seeds) * len(text_cfgs) * len(image_cfgs),
                        model)
    vq = checks.vq_tokenizer(tokenizer, node)
    gpt = checks.editar_model(model, node)
    own = defaults(gpt, "editar").text_cfg
    combos = [(s, own if t == AUTO else t, i) for s in seeds for t in text_cfgs for i in image_cfgs]
    sampling = resolve(gpt, "sampling", temperature=temperature, top_k=auto(top_k), top_p=top_p)
    encoder = checks.instruction_encoder(text_encoder, node, "EditAR", "encode_raw")
    try:
        llamagen.check_pair(vq, gpt)
    except ValueError as e:
        raise ValueError(f"{node}: {e}") from None
    inputs = editar.prepare(gpt, vq, image)  # the node centre-crops, as EditAR's training data was cut
    n_img, g = inputs.batch, gpt.cfg.grid_size
    text_encoder.load()
    src = torch.arange(n_img).repeat_interleave(len(combos))
    rows_in = TokenBatch(inputs.tokens[src.to(inputs.tokens.device)], "encoded", stride=vq.downsample)
    region = token_region(mask, (g, g), vq.downsample, n_img)
    region = None if region is None else region[src]
    seeds_t = seed_tensor([seed_plus(c[0], i) for i in range(n_img) for c in combos])
    tokens = editar.edit(gpt, vq, encoder, rows_in, [prompt], seeds_t, [c[1] for c in combos] * n_img,
                         [c[2] for c in combos] * n_img, sampling, region=region,
                         progress=bridge.progress(g * g, preview=vq_preview(tokenizer, gpt, (g, g), node)),
                         max_chunk=draft_chunk(draft_decoding), compile=compile)
    labels = [f"seed={c[0]}, text={c[1]:g}, image={c[2]:g}" for c in combos] * n_img
    return tokens, inputs, labels


class EditARSweep:
    DESCRIPTION = ("Runs EditAR for every combination of the listed seeds and text / image guidance scales as ONE "
                   "batched pass; returns the images and a labelled grid.")

    @classmethod
    def INPUT_TYPES(cls):
        base = EditAR.INPUT_TYPES()
        req = {k: v for k, v in base["required"].items() if k not in ("seed", "text_cfg", "image_cfg")}
        req.update({
            "seed_values": ("STRING", {"default": "0, 1, 2"}),
            "text_cfg_values": ("STRING", {"default": "2.0, 3.0, 5.0"}),
            "image_cfg_values": ("STRING", {"default": "1.0"}),
            "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "grid columns; 0 = one per text scale"}),
        })
        return {"required": req, "optional": base["optional"]}

    RETURN_TYPES = ("IMAGE", "IMAGE", VQ_TOKENS)
    RETURN_NAMES = ("images", "grid", "tokens")
    FUNCTION = "sweep"
    CATEGORY = f"{CATEGORY}/editing"

    def sweep(self, model, tokenizer, text_encoder, image, instruction, task, temperature, top_k, top_p, seed_values,
              text_cfg_values, image_cfg_values, columns, mask=None, draft_decoding=True, compile="auto"):
        check_rows({"seed_values": seed_values, "text_cfg_values": text_cfg_values,
                    "image_cfg_values": image_cfg_values}, checks.image(image, "AR EditAR Sweep").shape[0])
        text_cfgs = parse_values(text_cfg_values, float, "text_cfg_values")
        image_cfgs = parse_values(image_cfg_values, float, "image_cfg_values")
        edited, _, labels = run_editar(model, tokenizer, text_encoder, image, instruction, task,
                                       parse_values(seed_values, int, "seed_values"), text_cfgs, image_cfgs,
                                       temperature, top_k, top_p, mask, draft_decoding, compile)
        images = model_to_comfy(llamagen.decode(tokenizer.load(), edited))
        grid = labelled_grid(images, labels, columns or len(text_cfgs) * len(image_cfgs), min_side=SWEEP_CELL_PX)
        out = bridge.output_device()
        return (images.to(out), grid.to(out), edited)
