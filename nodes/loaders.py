"""Loader nodes: one per model family (each lists its own family's files and refuses another's), and the text
encoders' loader; embedded models or files from ComfyUI's models/ folders."""
from __future__ import annotations

import torch

from ..core.files import loaders
from ..core.files.model_files import MODEL_FAMILIES, file_family, known_files
from ..core.infinity.vae import BSQVAE
from ..core.shapes.embedded import CHOICE_FAMILY, embedded_choices, embedded_file
from . import comfy_bridge as bridge
from .types import (AR_TEXT_ENCODER, BSQ_VAE, CATEGORY, EDITAR_MODEL, INFINITY_MODEL, LLAMAGEN_MODEL, PRECISIONS,
                    VAREDIT_MODEL, VQ_TOKENIZER)


def _choices(kind: str, family: str | None = None) -> list[str]:
    """The embedded models first (need no download), then local files, then downloadable official files; with a
    family, only its files (and local files whose family cannot be told without loading them)."""
    local = bridge.list_files(kind)
    names = embedded_choices(kind) + local + [n for n in known_files(kind) if n not in local]
    if family is not None:
        names = [n for n in names if _family(kind, n) in (family, None)]
    return names or ["(no model files found)"]


def _family(kind: str, name: str) -> str | None:
    if name in CHOICE_FAMILY:
        return CHOICE_FAMILY[name]
    return file_family(kind, name, bridge.local_path(kind, name))


def _model_path(kind: str, name: str) -> str:
    outside = bridge.outside_models_folder(name)
    if outside:
        raise ValueError(outside)
    return embedded_file(kind, name) or bridge.resolve_file(kind, name)


def _image_size_option(value: str) -> int | None:
    return None if value == "auto" else int(value)


# What each family's loader is called, for a file loaded by the wrong one.
LOADER_OF = {"llamagen": "AR LlamaGen Loader", "editar": "AR EditAR Loader", "infinity": "AR Infinity Loader",
             "varedit": "AR VAREdit Loader", "vq": "AR VQ Tokenizer Loader", "bsq_vae": "AR BSQ VAE Loader"}


CALLED = {"llamagen": "a LlamaGen model", "editar": "an EditAR model", "infinity": "an Infinity text-to-image model",
          "varedit": "a VAREdit editor", "vq": "a LlamaGen VQ tokenizer", "bsq_vae": "Infinity's BSQ VAE"}


def _check_family(module, family: str, name: str) -> None:
    got = loaders.model_family(module) if family in MODEL_FAMILIES else (
        "bsq_vae" if isinstance(module, BSQVAE) else "vq")
    if got != family:
        raise ValueError(f"{name} is {CALLED.get(got, got)}, not {CALLED[family]}: load it with "
                         f"{LOADER_OF.get(got, 'its own loader')}")


# Each loader checks its file before any node runs (VALIDATE_INPUTS): ComfyUI then lists every missing file of a
# graph in one go, and offline no download is attempted.


class _ModelLoader:
    FAMILY = ""
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    @classmethod
    def INPUT_TYPES(cls):
        required = {
            "model_name": (_choices("autoregressive", cls.FAMILY), {"tooltip": "checkpoint (.pt/.pth/.safetensors) "
                           "or sharded folder, in models/autoregressive"}),
            "precision": (PRECISIONS, {"default": "auto", "tooltip": "auto: bf16 on GPUs that support it, fp32 on CPU"}),
        }
        if cls.FAMILY in ("infinity", "varedit"):
            return {"required": required}
        required["image_size"] = (["auto", "256", "384", "512", "768", "1024"], {
            "default": "auto", "tooltip": "the resolution the model was trained for; auto reads it from the file"})
        return {"required": required, "optional": {"n_head": ("INT", {
            "default": 0, "min": 0, "max": 256, "tooltip": "attention heads of a custom-size file that matches no "
            "official size and does not store them (0 = read from the file or the official size)"})}}

    @classmethod
    def VALIDATE_INPUTS(cls, model_name):
        return bridge.file_problem("autoregressive", model_name) or True

    def load(self, model_name, precision, image_size="auto", n_head=0):
        path = _model_path("autoregressive", model_name)
        device = bridge.torch_device()
        dtype = loaders.resolve_dtype(precision, device)  # chosen for the compute device, stored offloaded
        module = loaders.load_gpt(path, image_size=_image_size_option(image_size), precision=dtype,
                                  device=bridge.offload_device(), n_head=n_head or None)
        _check_family(module, self.FAMILY, model_name)
        return (bridge.ManagedModel(module, model_name, device),)


class LlamaGenLoader(_ModelLoader):
    DESCRIPTION = ("Loads a LlamaGen GPT (text-to-image or class-to-image). Files go in models/autoregressive; "
                   "official files not found there are downloaded on first use.")
    FAMILY = "llamagen"
    RETURN_TYPES = (LLAMAGEN_MODEL,)


class EditARLoader(_ModelLoader):
    DESCRIPTION = "Loads EditAR (editar_release.pt, a fine-tuned LlamaGen GPT-XL) or the embedded EditAR editor."
    FAMILY = "editar"
    RETURN_TYPES = (EDITAR_MODEL,)


class InfinityLoader(_ModelLoader):
    DESCRIPTION = ("Loads an Infinity text-to-image transformer (2B file or 8B sharded folder; the layout is read "
                   "off the file). Precision applies to the blocks; text, embeddings and head stay fp32.")
    FAMILY = "infinity"
    RETURN_TYPES = (INFINITY_MODEL,)


class VAREditLoader(_ModelLoader):
    DESCRIPTION = "Loads a VAREdit instruction editor (2B-512.pth, 8B-512.pth, 8B-1024.pth) or the embedded one."
    FAMILY = "varedit"
    RETURN_TYPES = (VAREDIT_MODEL,)


class _TokenizerLoader:
    FAMILY = ""
    RETURN_NAMES = ("tokenizer",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokenizer_name": (_choices("vq", cls.FAMILY), {"tooltip": "in models/vq"}),
            "precision": (PRECISIONS, {"default": "fp32", "tooltip": "fp32 recommended: the decoder is small"}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, tokenizer_name):
        return bridge.file_problem("vq", tokenizer_name) or True

    def load(self, tokenizer_name, precision):
        path = _model_path("vq", tokenizer_name)
        device = bridge.torch_device()
        module = loaders.load_vq(path, precision=loaders.resolve_dtype(precision, device),
                                 device=bridge.offload_device())
        _check_family(module, self.FAMILY, tokenizer_name)
        return (bridge.ManagedModel(module, tokenizer_name, device),)


class VQLoader(_TokenizerLoader):
    DESCRIPTION = "Loads a LlamaGen VQ tokenizer (VQ-16 / VQ-8) for LlamaGen and EditAR."
    FAMILY = "vq"
    RETURN_TYPES = (VQ_TOKENIZER,)


class BSQVAELoader(_TokenizerLoader):
    DESCRIPTION = "Loads Infinity's BSQ VAE (d32 for the 2B models, d56 for the 8B ones) for Infinity and VAREdit."
    FAMILY = "bsq_vae"
    RETURN_TYPES = (BSQ_VAE,)


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
