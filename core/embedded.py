"""The embedded default models: small LlamaGen-architecture models trained on ShapesWorld and shipped
with the pack (embedded/), so everything runs with no download. Trained by tools/train_embedded.py."""
from __future__ import annotations

import os

import torch

EMBEDDED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "embedded")
# Loader choice -> file in embedded/.
EMBEDDED_CHOICES = {
    "autoregressive": ("(embedded) shapes-t2i", "shapes_gpt.safetensors"),
    "vq": ("(embedded) shapes-vq", "shapes_vq.safetensors"),
    "text_encoders": ("(embedded) shapes-words", "shapes_text.safetensors"),
}


def embedded_path(kind: str) -> str:
    return os.path.join(EMBEDDED_DIR, EMBEDDED_CHOICES[kind][1])


def embedded_choice(kind: str) -> str | None:
    """The loader choice for `kind`, if the embedded file is present."""
    name, _ = EMBEDDED_CHOICES[kind]
    return name if os.path.isfile(embedded_path(kind)) else None


def is_embedded(kind: str, name: str) -> bool:
    return name == EMBEDDED_CHOICES[kind][0]


def load_embedded(device: torch.device | str = "cpu"):
    """-> (gpt, text_encoder, vq) on `device`, fp32."""
    from .loaders import load_gpt, load_vq, load_word_encoder

    missing = [k for k in EMBEDDED_CHOICES if not os.path.isfile(embedded_path(k))]
    if missing:
        raise FileNotFoundError(f"embedded model files missing in {EMBEDDED_DIR}: "
                                f"{', '.join(EMBEDDED_CHOICES[k][1] for k in missing)} (train them with "
                                f"python tools/train_embedded.py)")
    return (load_gpt(embedded_path("autoregressive"), precision="fp32", device=device),
            load_word_encoder(embedded_path("text_encoders"), device=device),
            load_vq(embedded_path("vq"), precision="fp32", device=device))
