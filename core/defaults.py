"""Where every setting's default comes from.

The published defaults live on the settings dataclasses (SamplingSettings, ATMSettings, InfinitySampling,
AREditSettings, EditARGuidance) and in the few per-method values beside them (EditAR's and VAREdit's samplers).
A model file may carry its own tuned settings in its metadata (`ar_edit.tuned`, JSON: {kind: {field: value}});
the embedded models do, as chosen on their validation cases. `defaults(model, kind)` gives the file's own where
it has them, else the published ones; `resolve` fills the fields left None from them (a node widget's `AUTO`,
-1, is None: "the model's own").
"""
from __future__ import annotations

import dataclasses
import json

from .infinity.aredit import AREditSettings
from .infinity.generate import InfinitySampling
from .infinity.varedit import DEFAULT_CFG as VAREDIT_CFG, DEFAULT_TAU as VAREDIT_TAU
from .llamagen.atm import ATMSettings
from .llamagen.editar import EditARGuidance
from .sampling import SamplingSettings

TUNED_KEY = "ar_edit.tuned"
AUTO = -1  # a widget value: "the model's own"
# Whether decode passes run through torch.compile: "auto" = on CUDA with Triton (launch-bound there), eager elsewhere.
COMPILE = "auto"

# (family, kind) -> the published default. EditAR guides by text / image (cfg_scale unused); VAREdit follows the paper.
PUBLISHED = {
    ("llamagen", "sampling"): SamplingSettings(),
    ("llamagen", "atm"): ATMSettings(),
    ("editar", "sampling"): SamplingSettings(cfg_scale=1.0),
    ("editar", "editar"): EditARGuidance(),
    ("infinity", "sampling"): InfinitySampling(),
    ("infinity", "aredit"): AREditSettings(),
    ("varedit", "sampling"): InfinitySampling(VAREDIT_CFG, VAREDIT_TAU),
    # Lumina-mGPT: its README's sampler (cfg 4, image top-k 2000; the solver's own default cfg is 3) and the ISLock
    # paper's ATM for this backbone (K 100, tau 0.4 on 1 - cosine; alpha and the fallback as on LlamaGen).
    ("lumina", "sampling"): SamplingSettings(cfg_scale=4.0, temperature=1.0, top_k=2000),
    ("lumina", "atm"): ATMSettings(K=100, tau=0.4),
    # Janus-Pro: its generate()'s sampler (cfg 5, temperature 1, no top-k / top-p). ATM as on LlamaGen: the tokenizer
    # is LlamaGen's VQ-16, so tau 1 means the same (cosine >= 0.5 in its codebook), and K 150 counts candidates among
    # the same 16,384 codes; the window shrinks with the step's share i / N of the picture, so 576 codes (384 px) run
    # the same schedule as 1,024.
    ("janus", "sampling"): SamplingSettings(cfg_scale=5.0, temperature=1.0, top_k=0, top_p=1.0),
    ("janus", "atm"): ATMSettings(),
}
KINDS = {family: tuple(k for f, k in PUBLISHED if f == family) for family, _ in PUBLISHED}


def family_of(model) -> str:
    from .files.loaders import model_family

    return model_family(getattr(model, "module", model))


def parse_tuned(text: str, family: str, name: str) -> dict:
    """The metadata's JSON -> {kind: settings}, every kind and field checked (a file says nothing it may not)."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{name}: its tuned settings ({TUNED_KEY}) are not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: its tuned settings ({TUNED_KEY}) must be an object of kinds")
    out = {}
    for kind, fields in raw.items():
        if (family, kind) not in PUBLISHED:
            raise ValueError(f"{name}: tuned settings of kind {kind!r} do not apply to a {family} model "
                             f"(kinds: {', '.join(KINDS.get(family, ())) or 'none'})")
        base = PUBLISHED[(family, kind)]
        known = {f.name for f in dataclasses.fields(base)}
        if not isinstance(fields, dict) or set(fields) - known:
            raise ValueError(f"{name}: tuned {kind} settings may hold {sorted(known)}, got "
                             f"{sorted(fields) if isinstance(fields, dict) else fields!r}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        try:
            setting = dataclasses.replace(base, **values)
            setting.validate()
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: tuned {kind} settings are not valid: {e}") from None
        out[kind] = setting
    return out


def tuned_json(settings: dict) -> str:
    """{kind: settings dataclass} -> the metadata value."""
    return json.dumps({kind: dataclasses.asdict(s) for kind, s in settings.items()}, sort_keys=True)


def defaults(model, kind: str):
    """The model file's own tuned `kind` settings, else the published ones for its family."""
    family = family_of(model)
    if (family, kind) not in PUBLISHED:
        raise ValueError(f"no {kind} settings for a {family} model")
    own = getattr(getattr(model, "module", model), "tuned_settings", None) or {}
    return own.get(kind, PUBLISHED[(family, kind)])


def auto(value):
    """A widget's AUTO (-1) -> None ("the model's own"); any other value as it is."""
    return None if value == AUTO else value


def resolve(model, kind: str, **given):
    """`kind` settings with the given fields; a field given as None takes the model's default."""
    base = defaults(model, kind)
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None}).validate()
