"""Node for EditAR: instruction editing and depth / canny / segmentation -> image on LlamaGen."""
from __future__ import annotations

import torch

from ..core import encode_images
from ..core.editar import TASK_TEMPLATES, EditARGPT, editar_generate, task_prompt
from ..core.images import comfy_to_model, mask_to_grid
from ..core.llamagen_generate import Condition
from ..core.records import TokenBatch
from ..core.sampling import SamplingSettings
from . import comfy_bridge as bridge
from .llamagen_nodes import sampling_inputs
from .types import AR_MODEL, AR_TEXT_ENCODER, AR_TOKENIZER, AR_TOKENS, CATEGORY


class EditAR:
    DESCRIPTION = ("EditAR (editar_release.pt): edits an image by instruction, or turns a depth / canny / "
                   "segmentation map (any IMAGE, e.g. from a preprocessor node) into an image. The image is "
                   "resized like EditAR's training data (short side to the model size with Lanczos, centre crop). "
                   "Optional mask: only the white area may change.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {
            "required": {
                "model": (AR_MODEL,), "tokenizer": (AR_TOKENIZER,), "text_encoder": (AR_TEXT_ENCODER,),
                "image": ("IMAGE", {"tooltip": "the image to edit, or the depth / edge / segmentation map"}),
                "instruction": ("STRING", {"multiline": True, "default": "",
                                "tooltip": "edit: the instruction; depth/canny/segmentation: the image description"}),
                "task": (list(TASK_TEMPLATES), {"default": "edit", "tooltip": "selects the prompt template EditAR was trained with"}),
                "seed": s["seed"],
                "text_cfg": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 30.0, "step": 0.1,
                             "tooltip": "guidance on the instruction (released EditAR: 3.0)"}),
                "image_cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 30.0, "step": 0.1,
                              "tooltip": "guidance on the input image (paper); 1 = off, as the released code"}),
                "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
            },
            "optional": {"mask": ("MASK", {"tooltip": "edit region (1 = may change); outside it the input is kept"})},
        }

    RETURN_TYPES = (AR_TOKENS, AR_TOKENS)
    RETURN_NAMES = ("tokens", "input_tokens")
    FUNCTION = "edit"
    CATEGORY = f"{CATEGORY}/editing"

    def edit(self, model, tokenizer, text_encoder, image, instruction, task, seed, text_cfg, image_cfg, temperature,
             top_k, top_p, mask=None):
        sampling = SamplingSettings(1.0, temperature, top_k, top_p).validate()
        prompt = task_prompt(task, instruction)
        gpt = model.load()
        if not isinstance(gpt, EditARGPT):
            raise ValueError(f"{model.name} is not an EditAR model (no img_uncond_embedding): load editar_release.pt")
        vq = tokenizer.load()
        if vq.cfg.codebook_size != gpt.cfg.vocab_size:
            raise ValueError(f"tokenizer has {vq.cfg.codebook_size} codes, the model {gpt.cfg.vocab_size}: they do not match")
        size = gpt.cfg.image_size
        cond = encode_images(vq, comfy_to_model(image, size, "center_crop", vq.downsample, resample="lanczos"))
        B, g = cond.shape[0], gpt.cfg.grid_size
        text_encoder.load()
        encoder = text_encoder.encoder
        if not hasattr(encoder, "encode_raw"):
            raise ValueError(f"{text_encoder.name} cannot drive EditAR: load the T5 encoder (flan-t5-xl)")
        emb = encoder.encode_raw([prompt] * B, gpt.cfg.cls_token_num)
        keep = None if mask is None else ~mask_to_grid(mask, g, g, B, image_size=size)
        seeds = torch.arange(B, dtype=torch.int64) + seed
        tokens = editar_generate(gpt, cond.to(gpt.device), Condition(emb.features.to(gpt.device), None, [prompt] * B),
                                 sampling, seeds, text_cfg, image_cfg, keep, progress=bridge.progress(g * g))
        return (TokenBatch(tokens.view(B, g, g), "edited", None, seeds, sampling, vq.downsample),
                TokenBatch(cond, "encoded", stride=vq.downsample))
