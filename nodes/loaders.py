"""Loader nodes: AR models, tokenizers (VQ / BSQ VAE) and text encoders, embedded or from ComfyUI's models/ folders."""
from __future__ import annotations

import torch

from ..core.files import loaders
from ..core.files.model_files import known_files
from ..core.shapes.embedded import embedded_choices, embedded_file
from . import comfy_bridge as bridge
from .types import AR_MODEL, AR_TEXT_ENCODER, AR_TOKENIZER, CATEGORY, PRECISIONS


def _choices(kind: str) -> list[str]:
    """The embedded models first (need no download), then local files, then downloadable official files."""
    local = bridge.list_files(kind)
    return embedded_choices(kind) + local + [n for n in known_files(kind) if n not in local] or ["(no model files found)"]


def _model_path(kind: str, name: str) -> str:
    outside = bridge.outside_models_folder(name)
    if outside:
        raise ValueError(outside)
    return embedded_file(kind, name) or bridge.resolve_file(kind, name)


def _image_size_option(value: str) -> int | None:
    return None if value == "auto" else int(value)


# Each loader checks its file before any node runs (VALIDATE_INPUTS): ComfyUI then lists every missing file of a
# graph in one go, and offline no download is attempted.


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
        }, "optional": {
            "n_head": ("INT", {"default": 0, "min": 0, "max": 256,
                       "tooltip": "LlamaGen only: attention heads of a custom-size file that matches no official "
                                  "size and does not store them (0 = read from the file or the official size)"}),
        }}

    RETURN_TYPES = (AR_MODEL,)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"

    @classmethod
    def VALIDATE_INPUTS(cls, model_name):
        return bridge.file_problem("autoregressive", model_name) or True
    CATEGORY = f"{CATEGORY}/loaders"

    def load(self, model_name, precision, image_size, n_head=0):
        path = _model_path("autoregressive", model_name)
        device = bridge.torch_device()
        dtype = loaders.resolve_dtype(precision, device)  # chosen for the compute device, stored offloaded
        module = loaders.load_gpt(path, image_size=_image_size_option(image_size), precision=dtype,
                                  device=bridge.offload_device(), n_head=n_head or None)
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

    @classmethod
    def VALIDATE_INPUTS(cls, tokenizer_name):
        return bridge.file_problem("vq", tokenizer_name) or True
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

    @classmethod
    def VALIDATE_INPUTS(cls, encoder_name):
        return bridge.file_problem("text_encoders", encoder_name) or True
    CATEGORY = f"{CATEGORY}/loaders"

    def load(self, encoder_name, precision, device):
        path = _model_path("text_encoders", encoder_name)
        target = torch.device("cpu") if device == "cpu" else bridge.torch_device()
        encoder = loaders.load_text_encoder(path, "cpu", loaders.resolve_dtype(precision, target))
        return (_EncoderHandle(encoder, encoder_name, target),)


class _EncoderHandle(bridge.ManagedModel):
    """ManagedModel whose module is the T5 network, keeping the tokenizer/preprocessing alongside."""

    def __init__(self, encoder, name, device):
        super().__init__(encoder.model, name, device)
        self.encoder = encoder
