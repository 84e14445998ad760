"""Nodes for the LlamaGen backbone: loaders, text encoding, generation, VQ encode/decode."""
from __future__ import annotations

import os

import torch

from ..core import decode_tokens_to_images, encode_images, loaders
from ..core.embedded import embedded_choices, embedded_file
from ..core.infinity_codec import bits_to_images, image_to_bits
from ..core.infinity_generate import BitTokens
from ..core.infinity_model import InfinityTransformer
from ..core.infinity_vae import BSQVAE
from ..core.images import RESIZE_MODES, comfy_to_model, model_to_comfy
from ..core.llamagen_generate import Condition, generate
from ..core.model_files import known_files
from ..core.records import TokenBatch
from ..core.sampling import SamplingSettings
from ..core.text_encoders import T5TextEncoder, validate_prompts
from . import comfy_bridge as bridge
from .types import AR_CONDITIONING, AR_MODEL, AR_TEXT_ENCODER, AR_TOKENIZER, AR_TOKENS, CATEGORY, PRECISIONS

MAX_SEED = 0xFFFFFFFFFFFFFFFF


def _choices(kind: str) -> list[str]:
    """The embedded models first (need no download), then local files, then downloadable official files."""
    local = bridge.list_files(kind)
    return embedded_choices(kind) + local + [n for n in known_files(kind) if n not in local] or ["(no model files found)"]


def _model_path(kind: str, name: str) -> str:
    return embedded_file(kind, name) or bridge.resolve_file(kind, name)


def _image_size_option(value: str) -> int | None:
    return None if value == "auto" else int(value)


class ModelLoader:
    DESCRIPTION = ("Loads an autoregressive image transformer: LlamaGen t2i/c2i, EditAR, or Infinity (2B/8B; the "
                   "backbone is read off the file). Files (or sharded folders) go in models/autoregressive; "
                   "official files not found there are downloaded on first use.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": (_choices("autoregressive"), {"tooltip": "checkpoint (.pt/.pth/.safetensors)"}),
            "precision": (PRECISIONS, {"default": "auto", "tooltip": "auto: bf16 on GPUs that support it, fp32 on CPU"}),
            "image_size": (["auto", "256", "384", "512", "768", "1024"], {"default": "auto",
                           "tooltip": "LlamaGen: resolution the model was trained for; auto reads it from the "
                                      "file. Infinity: ignored (its generate node picks the resolution)"}),
        }}

    RETURN_TYPES = (AR_MODEL,)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    def load(self, model_name, precision, image_size):
        path = _model_path("autoregressive", model_name)
        device = bridge.torch_device()
        dtype = loaders.resolve_dtype(precision, device)  # chosen for the compute device, stored offloaded
        module = loaders.load_gpt(path, image_size=_image_size_option(image_size), precision=dtype,
                                  device=bridge.offload_device())
        return (bridge.ManagedModel(module, model_name, device),)


class TokenizerLoader:
    DESCRIPTION = ("Loads an image tokenizer: LlamaGen VQ-16/VQ-8, or Infinity's BSQ VAE (d32 / d56). Files go in "
                   "models/vq.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer_name": (_choices("vq"),),
            "precision": (PRECISIONS, {"default": "fp32", "tooltip": "fp32 recommended: the decoder is small"}),
        }}

    RETURN_TYPES = (AR_TOKENIZER,)
    RETURN_NAMES = ("tokenizer",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    def load(self, tokenizer_name, precision):
        path = _model_path("vq", tokenizer_name)
        device = bridge.torch_device()
        module = loaders.load_vq(path, precision=loaders.resolve_dtype(precision, device),
                                 device=bridge.offload_device())
        return (bridge.ManagedModel(module, tokenizer_name, device),)


class TextEncoderLoader:
    DESCRIPTION = ("Loads a T5 text encoder folder (LlamaGen: flan-t5-xl) from models/text_encoders; "
                   "downloaded from google/flan-t5-xl on first use when missing.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "encoder_name": (_choices("text_encoders"),),
            "precision": (PRECISIONS, {"default": "auto"}),
            "device": (["default", "cpu"], {"default": "default",
                       "tooltip": "cpu keeps the encoder off the GPU (slower prompts, more VRAM for the model)"}),
        }}

    RETURN_TYPES = (AR_TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    def load(self, encoder_name, precision, device):
        path = _model_path("text_encoders", encoder_name)
        target = torch.device("cpu") if device == "cpu" else bridge.torch_device()
        if os.path.isfile(path):  # a single-file encoder: the embedded word-level one
            encoder = loaders.load_word_encoder(path)
        else:
            encoder = T5TextEncoder(path, device="cpu", dtype=loaders.resolve_dtype(precision, target))
        return (_EncoderHandle(encoder, encoder_name, target),)


class _EncoderHandle(bridge.ManagedModel):
    """ManagedModel whose module is the T5 network, keeping the tokenizer/preprocessing alongside."""

    def __init__(self, encoder, name, device):
        super().__init__(encoder.model, name, device)
        self.encoder = encoder


class TextEncode:
    DESCRIPTION = "Encodes a prompt (or one prompt per line) into caption features for an AR model."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": (AR_TEXT_ENCODER,),
            "prompt": ("STRING", {"multiline": True, "default": ""}),
            "one_prompt_per_line": ("BOOLEAN", {"default": False,
                                    "tooltip": "encode each non-empty line as its own prompt (a batch)"}),
        }, "optional": {
            "model": (AR_MODEL, {"tooltip": "connect an Infinity model so the prompt is encoded its way (raw "
                                 "text, up to 512 tokens); LlamaGen models need nothing here"}),
        }}

    RETURN_TYPES = (AR_CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    def encode(self, text_encoder, prompt, one_prompt_per_line, model=None):
        prompts = [l for l in prompt.splitlines() if l.strip()] if one_prompt_per_line else [prompt]
        prompts = validate_prompts(prompts or [""])
        text_encoder.load()
        if model is not None and isinstance(model.module, InfinityTransformer):
            emb = text_encoder.encoder.encode_infinity(prompts)
            return (Condition(emb.features, emb.mask, emb.prompts, "infinity"),)
        emb = text_encoder.encoder.encode(prompts)
        return (Condition(emb.features, emb.mask, emb.prompts),)


class ClassLabel:
    DESCRIPTION = "Condition for class-to-image models (ImageNet class id, 0..999)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"class_id": ("INT", {"default": 207, "min": 0, "max": 999999})}}

    RETURN_TYPES = (AR_CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/conditioning"

    def encode(self, class_id):
        return (Condition(torch.tensor([class_id], dtype=torch.long), None, [f"class {class_id}"]),)


def sampling_inputs(cfg_default: float = 7.5) -> dict:
    """Widgets every sampler node shares (LlamaGen t2i defaults)."""
    return {
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
        "cfg_scale": ("FLOAT", {"default": cfg_default, "min": 0.0, "max": 30.0, "step": 0.1,
                      "tooltip": "classifier-free guidance; 1 = off"}),
        "temperature": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01, "tooltip": "0 = greedy"}),
        "top_k": ("INT", {"default": 1000, "min": 0, "max": 65536, "tooltip": "0 = off"}),
        "top_p": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": "1 = off"}),
    }


class Generate:
    DESCRIPTION = ("Samples image tokens with the AR model (static KV cache, CFG). batch_size images per "
                   "prompt with seeds seed, seed+1, ...; the output can be decoded or used as an edit source.")

    @classmethod
    def INPUT_TYPES(cls):
        s = sampling_inputs()
        return {"required": {
            "model": (AR_MODEL,),
            "conditioning": (AR_CONDITIONING,),
            "seed": s["seed"],
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
            "cfg_scale": s["cfg_scale"], "temperature": s["temperature"], "top_k": s["top_k"], "top_p": s["top_p"],
        }}

    RETURN_TYPES = (AR_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"

    def generate(self, model, conditioning, seed, batch_size, cfg_scale, temperature, top_k, top_p):
        if isinstance(model.module, InfinityTransformer):
            raise ValueError("this is an Infinity model: use the AR Infinity Generate node (it has the resolution, "
                             "aspect ratio and per-scale settings Infinity needs)")
        settings = SamplingSettings(cfg_scale, temperature, top_k, top_p).validate()
        gpt = model.load()
        cond = conditioning.repeat_interleave(batch_size).to(gpt.device)
        seeds = torch.tensor([seed + i for _ in range(conditioning.batch) for i in range(batch_size)], dtype=torch.int64)
        n = gpt.cfg.num_image_tokens
        tokens = generate(gpt, cond, settings, seeds, progress=bridge.progress(n))
        g = gpt.cfg.grid_size
        return (TokenBatch(tokens.view(-1, g, g), "generated", cond, seeds.to(tokens.device), settings,
                           gpt.cfg.downsample),)


class ImageToTokens:
    DESCRIPTION = ("Encodes images into tokens (a real photo as an edit source). LlamaGen VQ: a size x size square; "
                   "Infinity VAE: size is the resolution tier (256/512/1024) and the aspect ratio picks the nearest "
                   "template. Resize: center_crop (cover, cut the centre), stretch, or none (sizes must fit).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer": (AR_TOKENIZER,),
            "image": ("IMAGE",),
            "size": ("INT", {"default": 512, "min": 0, "max": 4096, "step": 16,
                     "tooltip": "LlamaGen: square side in pixels (the AR model's resolution; 0 = keep). "
                                "Infinity: resolution tier 256, 512, 768 or 1024 (48 for the embedded model)"}),
            "resize": (list(RESIZE_MODES), {"default": "center_crop"}),
        }}

    RETURN_TYPES = (AR_TOKENS,)
    RETURN_NAMES = ("tokens",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def encode(self, tokenizer, image, size, resize):
        if isinstance(tokenizer.module, BSQVAE):
            return (image_to_bits(tokenizer.load(), image, size, resize),)
        vq = tokenizer.load()
        tokens = encode_images(vq, comfy_to_model(image, size or None, resize, vq.downsample))
        return (TokenBatch(tokens, "encoded", stride=vq.downsample),)


class TokensToImage:
    DESCRIPTION = "Decodes VQ tokens into images."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokenizer": (AR_TOKENIZER,), "tokens": (AR_TOKENS,)}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/tokenizer"

    def decode(self, tokenizer, tokens):
        is_vae, is_bits = isinstance(tokenizer.module, BSQVAE), isinstance(tokens, BitTokens)
        if is_vae != is_bits:
            raise ValueError("the tokens come from " + ("Infinity" if is_bits else "LlamaGen") + " but the tokenizer is "
                             + ("Infinity's BSQ VAE" if is_vae else "a LlamaGen VQ") + ": load the matching tokenizer")
        if is_vae:
            return (model_to_comfy(bits_to_images(tokenizer.load(), tokens)).to(bridge.output_device()),)
        images = decode_tokens_to_images(tokenizer.load(), tokens.tokens)
        return (model_to_comfy(images).to(bridge.output_device()),)
