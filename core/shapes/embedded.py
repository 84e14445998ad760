"""The embedded default models, trained on ShapesWorld and shipped with the pack (embedded/), so everything
runs with no download: LlamaGen-architecture (VQ, T2I transformer; tools/train_embedded.py) and
Infinity-architecture (BSQ VAE, next-scale transformer; tools/train_embedded_infinity.py), sharing one
word-level text encoder."""
from __future__ import annotations

import os

import torch

EMBEDDED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "embedded")
# Loader choice -> file in embedded/, per loader kind: the LlamaGen set (the demo's), then the Infinity set.
EMBEDDED_CHOICES = {
    "autoregressive": ("(embedded) shapes-t2i", "shapes_gpt.safetensors"),
    "vq": ("(embedded) shapes-vq", "shapes_vq.safetensors"),
    "text_encoders": ("(embedded) shapes-words", "shapes_text.safetensors"),
}
INFINITY_CHOICES = {
    "autoregressive": ("(embedded) shapes-infinity", "shapes_infinity.safetensors"),
    "vq": ("(embedded) shapes-infinity-vae", "shapes_infinity_vae.safetensors"),
    "text_encoders": EMBEDDED_CHOICES["text_encoders"],
}


def embedded_path(kind: str, infinity: bool = False) -> str:
    return os.path.join(EMBEDDED_DIR, (INFINITY_CHOICES if infinity else EMBEDDED_CHOICES)[kind][1])


def embedded_choices(kind: str) -> list[str]:
    """The loader choices for `kind` whose embedded files are present."""
    names = dict.fromkeys(table[kind][0] for table in (EMBEDDED_CHOICES, INFINITY_CHOICES))
    return [n for n in names if embedded_file(kind, n)]


def embedded_file(kind: str, name: str) -> str | None:
    """The embedded file behind a loader choice (None: not an embedded choice, or its file is missing)."""
    for table in (EMBEDDED_CHOICES, INFINITY_CHOICES):
        if table[kind][0] == name:
            path = os.path.join(EMBEDDED_DIR, table[kind][1])
            return path if os.path.isfile(path) else None
    return None


def _require(table: dict, script: str) -> None:
    missing = [f for _, f in table.values() if not os.path.isfile(os.path.join(EMBEDDED_DIR, f))]
    if missing:
        raise FileNotFoundError(f"embedded model files missing in {EMBEDDED_DIR}: {', '.join(missing)} "
                                f"(train them with python {script})")


def load_embedded(device: torch.device | str = "cpu"):
    """-> (gpt, text_encoder, vq) on `device`, fp32."""
    from ..files.loaders import load_gpt, load_vq, load_word_encoder

    _require(EMBEDDED_CHOICES, "tools/train_embedded.py")
    return (load_gpt(embedded_path("autoregressive"), precision="fp32", device=device),
            load_word_encoder(embedded_path("text_encoders"), device=device),
            load_vq(embedded_path("vq"), precision="fp32", device=device))


def load_embedded_infinity(device: torch.device | str = "cpu"):
    """-> (infinity transformer, text_encoder, BSQ VAE) on `device`, fp32."""
    from ..files.loaders import load_gpt, load_vq, load_word_encoder

    _require(INFINITY_CHOICES, "tools/train_embedded_infinity.py")
    return (load_gpt(embedded_path("autoregressive", True), precision="fp32", device=device),
            load_word_encoder(embedded_path("text_encoders"), device=device),
            load_vq(embedded_path("vq", True), precision="fp32", device=device))
