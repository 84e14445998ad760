"""The embedded default models, trained on ShapesWorld and shipped with the pack (embedded/), so everything
runs with no download: LlamaGen-architecture (VQ, T2I transformer; tools/train_embedded.py) and
Infinity-architecture (BSQ VAE, next-scale transformer; tools/train_embedded_infinity.py), sharing one
word-level text encoder; the instruction editors; and folders in the official Lumina-mGPT and Janus-Pro layouts."""
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


# The instruction editors (tools/train_embedded_editors.py): loader kind -> choice, file. They read the
# instruction encoder (the caption encoder's vocabulary plus the instruction words).
EDITOR_FILES = {
    "editar": ("(embedded) shapes-editar", "shapes_editar.safetensors"),
    "varedit": ("(embedded) shapes-varedit", "shapes_varedit.safetensors"),
    "text_encoders": ("(embedded) shapes-instructions", "shapes_instructions.safetensors"),
}
# The Lumina-mGPT-architecture set (tools/train_embedded_lumina.py), in the official layouts: folders.
LUMINA_CHOICES = {
    "autoregressive": ("(embedded) shapes-lumina", os.path.join("shapes-lumina", "transformer")),
    "vq": ("(embedded) shapes-chameleon-vqgan", os.path.join("shapes-lumina", "vqgan")),
}
# The Janus-Pro-architecture set (tools/train_embedded_janus.py): one folder in DeepSeek's layout, its VQ-16 inside.
JANUS_CHOICES = {"autoregressive": ("(embedded) shapes-janus", "shapes-janus")}
_CHOICES = [(kind, *entry) for table in (EMBEDDED_CHOICES, INFINITY_CHOICES) for kind, entry in table.items()] + [
    ("autoregressive" if k != "text_encoders" else k, *entry) for k, entry in EDITOR_FILES.items()] + [
    (kind, *entry) for table in (LUMINA_CHOICES, JANUS_CHOICES) for kind, entry in table.items()]


# Loader choice -> family (core.files.model_files): which loader node lists it.
CHOICE_FAMILY = {"(embedded) shapes-t2i": "llamagen", "(embedded) shapes-vq": "vq", "(embedded) shapes-infinity": "infinity",
                 "(embedded) shapes-infinity-vae": "bsq_vae", "(embedded) shapes-editar": "editar",
                 "(embedded) shapes-varedit": "varedit", "(embedded) shapes-lumina": "lumina",
                 "(embedded) shapes-chameleon-vqgan": "chameleon_vqgan", "(embedded) shapes-janus": "janus"}


def all_embedded() -> list[tuple[str, str]]:
    """(loader kind, choice) of every embedded model, present or not."""
    return [(kind, name) for kind, name, _ in _CHOICES]


def embedded_path(kind: str, infinity: bool = False) -> str:
    return os.path.join(EMBEDDED_DIR, (INFINITY_CHOICES if infinity else EMBEDDED_CHOICES)[kind][1])


def editor_path(kind: str) -> str:
    """embedded/ file of an editor entry: "editar", "varedit" or "text_encoders" (the instruction encoder)."""
    return os.path.join(EMBEDDED_DIR, EDITOR_FILES[kind][1])


def embedded_choices(kind: str) -> list[str]:
    """The loader choices for `kind` whose embedded files are present."""
    names = dict.fromkeys(name for k, name, _ in _CHOICES if k == kind)
    return [n for n in names if embedded_file(kind, n)]


def embedded_file(kind: str, name: str) -> str | None:
    """The embedded file behind a loader choice (None: not an embedded choice, or its file is missing)."""
    for k, choice, file in _CHOICES:
        if k == kind and choice == name:
            path = os.path.join(EMBEDDED_DIR, file)
            return path if os.path.isfile(path) or os.path.isdir(path) else None
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


def load_embedded_editor(method: str, device: torch.device | str = "cpu"):
    """-> (the "editar" or "varedit" editor, the instruction encoder) on `device`, fp32."""
    from ..files.loaders import load_gpt, load_word_encoder

    if method not in ("editar", "varedit"):
        raise ValueError(f"method must be editar or varedit, got {method!r}")
    _require({k: EDITOR_FILES[k] for k in (method, "text_encoders")}, "tools/train_embedded_editors.py")
    return (load_gpt(editor_path(method), precision="fp32", device=device),
            load_word_encoder(editor_path("text_encoders"), device=device))


def load_embedded_infinity(device: torch.device | str = "cpu"):
    """-> (infinity transformer, text_encoder, BSQ VAE) on `device`, fp32."""
    from ..files.loaders import load_gpt, load_vq, load_word_encoder

    _require(INFINITY_CHOICES, "tools/train_embedded_infinity.py")
    return (load_gpt(embedded_path("autoregressive", True), precision="fp32", device=device),
            load_word_encoder(embedded_path("text_encoders"), device=device),
            load_vq(embedded_path("vq", True), precision="fp32", device=device))


# The embedded transformers' files and families, for their tuned settings (the files' metadata, core.defaults;
# a Hugging Face folder's config.json "ar_edit" -> "tuned").
_TUNED_FILES = {"llamagen": EMBEDDED_CHOICES["autoregressive"][1], "infinity": INFINITY_CHOICES["autoregressive"][1],
                "editar": EDITOR_FILES["editar"][1], "varedit": EDITOR_FILES["varedit"][1],
                "lumina": os.path.join(LUMINA_CHOICES["autoregressive"][1], "config.json"),
                "janus": os.path.join(JANUS_CHOICES["autoregressive"][1], "config.json")}
_tuned_cache: dict[str, dict] = {}


def embedded_defaults(family: str, kind: str):
    """The embedded `family` model's own `kind` settings, read from its file's header (no weights loaded)."""
    import json

    from safetensors import safe_open

    from ..defaults import PUBLISHED, TUNED_KEY, parse_tuned

    if family not in _tuned_cache:
        path = os.path.join(EMBEDDED_DIR, _TUNED_FILES[family])
        if path.endswith(".json"):
            with open(path) as f:
                own = json.load(f).get("ar_edit") or {}
            text = json.dumps(own["tuned"]) if own.get("tuned") else None
        else:
            with safe_open(path, "pt") as f:
                text = (f.metadata() or {}).get(TUNED_KEY)
        _tuned_cache[family] = parse_tuned(text, family, os.path.basename(path)) if text else {}
    return _tuned_cache[family].get(kind, PUBLISHED[(family, kind)])
