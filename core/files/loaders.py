"""Build models from checkpoint files: architecture read off the weights, strict loading, dtype choice.

Files written by this project (`save_model`) carry their config in safetensors metadata; official files
do not, so their config is inferred from tensor shapes (and the image size from the file name).
"""
from __future__ import annotations

import json
import os
import re

import torch

from ..infinity import model as infinity_model
from ..infinity import vae as infinity_vae
from ..llamagen import editar
from ..llamagen import gpt as llamagen_gpt
from ..llamagen import vq as llamagen_vq
from ..shapes import instructions, world
from ..text import word_encoder
from ..defaults import PUBLISHED, TUNED_KEY, parse_tuned, tuned_json
from .checkpoints import CheckpointError, load_strict, read_any, read_file, save_safetensors

ARCH_KEY = "ar_edit.arch"
CONFIG_KEY = "ar_edit.config"
FLAVOUR_KEY = "ar_edit.flavour"  # Infinity weights: "infinity" (text-to-image) or "varedit" (instruction editor)
TRAINED_ON_KEY = "ar_edit.trained_on"
RESOLUTIONS_KEY = "ar_edit.resolutions"  # Infinity / BSQ VAE: the resolution tiers the weights were trained for

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_dtype(precision: str | torch.dtype, device: torch.device | str) -> torch.dtype:
    """"auto" = bf16 on GPUs that support it, fp16 on other GPUs, fp32 on the CPU."""
    if isinstance(precision, torch.dtype):
        return precision
    device = torch.device(device)
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of auto, {', '.join(DTYPES)}; got {precision!r}")
    return DTYPES[precision]


def detect_architecture(state: dict, metadata: dict) -> str:
    if ARCH_KEY in metadata:
        return metadata[ARCH_KEY]
    if "tok_embeddings.weight" in state and ("img_uncond_embedding" in state or any(k.startswith("alignment.") for k in state)):
        return "editar_gpt"  # the null image, or EditAR's training head, marks an EditAR file
    if "tok_embeddings.weight" in state and any(k.startswith("cls_embedding.") for k in state):
        return "llamagen_gpt"
    if "quantize.embedding.weight" in state and "encoder.conv_in.weight" in state:
        return "llamagen_vq"
    if "lvl_embed.weight" in state or any(k.endswith("sa.scale_mul_1H11") for k in state):
        return "infinity"
    if any(k.startswith("encoder.down.") for k in state) and any(k.startswith("decoder.up.") for k in state) and (
            "encoder.conv_in.conv.weight" in state or "encoder.conv_in.weight" in state):
        return "infinity_vae"
    sample = ", ".join(sorted(state)[:6])
    raise CheckpointError(f"unrecognised checkpoint: not a LlamaGen GPT / VQ tokenizer nor an Infinity transformer / "
                          f"VAE (first keys: {sample})")


def model_family(module) -> str:
    """"llamagen", "editar", "infinity", "varedit", "lumina" or "janus" for a loaded transformer, else its class
    name."""
    if isinstance(module, infinity_model.InfinityTransformer):
        return "varedit" if getattr(module, "flavour", "") == "varedit" else "infinity"
    if isinstance(module, editar.EditARGPT):
        return "editar"
    if isinstance(module, llamagen_gpt.LlamaGenGPT):
        return "llamagen"
    from ..lumina.chameleon import ChameleonLM

    if isinstance(module, ChameleonLM):
        return "lumina"
    from ..janus.model import JanusGen

    if isinstance(module, JanusGen):
        return "janus"
    return type(module).__name__


def image_size_from_name(path: str) -> int | None:
    """Official names end in the training resolution: t2i_XL_stage2_512.pt, c2i_L_384.pt."""
    stem = os.path.splitext(os.path.basename(path))[0]
    sizes = [int(s) for s in re.findall(r"(?:^|[_-])(\d{2,4})(?=[_-]|$)", stem) if int(s) % 16 == 0]
    return sizes[-1] if sizes else None


def _expect(arch: str, wanted: str, path: str) -> None:
    if arch != wanted:
        nice = {"llamagen_gpt": "an AR transformer (LlamaGen GPT)", "editar_gpt": "an EditAR transformer", "llamagen_vq": "a VQ image tokenizer",
                "word_encoder": "a text encoder", "infinity": "an Infinity transformer", "infinity_vae": "an Infinity BSQ VAE"}
        raise CheckpointError(f"{os.path.basename(path)} is {nice.get(arch, arch)}, but {nice.get(wanted, wanted)} "
                              f"was expected here: pick the file in the matching loader")


def load_gpt(path: str | os.PathLike, image_size: int | None = None, precision: str | torch.dtype = "auto",
             device: torch.device | str = "cpu", n_head: int | None = None,
             _read: tuple | None = None) -> llamagen_gpt.LlamaGenGPT:
    """Load a LlamaGen GPT (t2i or c2i) from `.pt/.pth/.safetensors`. image_size None = from metadata, else
    from the file name, else 512 (t2i) / 256 (c2i). n_head None = from metadata, else from the preset of the
    file's (width, layers); a file of another shape needs it (an error says so). `_read`: (state, metadata) already
    read from `path` (load_model), so a checkpoint is read once."""
    path = os.fspath(path)
    state, meta = _read or read_any(path)
    _read = None
    arch = detect_architecture(state, meta)
    if arch == "infinity":
        return _build_infinity(state, meta, path, precision, device)
    if arch == "editar_gpt":
        # Training-only keys (EditAR's distillation head) are dropped by name; everything else is strict.
        state = {k: v for k, v in state.items() if not k.startswith(editar.TRAINING_ONLY_PREFIXES)}
        if image_size is None and CONFIG_KEY not in meta and "img_uncond_embedding" in state:  # N rows fix the grid
            image_size = int(round(state["img_uncond_embedding"].shape[0] ** 0.5)) * 16
    else:
        _expect(arch, "llamagen_gpt", path)
    if CONFIG_KEY in meta:
        cfg = llamagen_gpt.GPTConfig.from_dict(json.loads(meta[CONFIG_KEY]))
        if image_size and image_size != cfg.image_size:
            # the file says what it was made for; another size would run (RoPE extends) at great cost, making noise
            raise CheckpointError(f"{os.path.basename(path)} was made for {cfg.image_size} px images; image_size "
                                  f"{image_size} does not fit it (leave image_size on auto)")
        if n_head and n_head != cfg.n_head:
            raise CheckpointError(f"{os.path.basename(path)} stores n_head {cfg.n_head}, but n_head {n_head} was "
                                  f"given: leave n_head unset (0 on the node) for files that store it")
    else:
        size = image_size or image_size_from_name(path)
        try:
            cfg = llamagen_gpt.config_from_state_dict(state, image_size=size or 512, n_head=n_head or None)
        except ValueError as e:
            raise CheckpointError(f"{os.path.basename(path)}: {e}") from e
        if size is None and cfg.model_type == "c2i":
            cfg = cfg.with_image_size(256)
    model_cls, what = (editar.EditARGPT, "EditAR") if arch == "editar_gpt" else (llamagen_gpt.LlamaGenGPT, "LlamaGen GPT")
    with torch.device("meta"):  # no memory for weights that the file replaces anyway
        model = model_cls(cfg)
    load_strict(model, state, f"{what} {os.path.basename(path)}")
    _read_tuned(model, meta, path)
    return model.to(device=device, dtype=resolve_dtype(precision, device)).eval().requires_grad_(False)


def load_vq(path: str | os.PathLike, precision: str | torch.dtype = "fp32", device: torch.device | str = "cpu",
            prefer_ema: bool = False, _read: tuple | None = None) -> llamagen_vq.LlamaGenVQ:
    """Load a LlamaGen VQ tokenizer. fp32 by default: the tokenizer is small and its decoder is where
    low precision shows."""
    path = os.fspath(path)
    state, meta = _read or read_file(path, prefer_ema=prefer_ema)
    _read = None
    arch = detect_architecture(state, meta)
    if arch == "infinity_vae":
        return _build_infinity_vae(state, meta, path, precision, device)
    _expect(arch, "llamagen_vq", path)
    if CONFIG_KEY in meta:
        cfg = llamagen_vq.VQConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    else:
        try:
            cfg = llamagen_vq.config_from_state_dict(state)
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{os.path.basename(path)}: cannot read the tokenizer layout ({e})") from e
    with torch.device("meta"):
        model = llamagen_vq.LlamaGenVQ(cfg)
    state.setdefault("quantize.codebook_used", torch.zeros(65536))  # training statistic, unused here
    load_strict(model, state, f"VQ tokenizer {os.path.basename(path)}")
    return model.to(device=device, dtype=resolve_dtype(precision, device)).eval().requires_grad_(False)


def _config(meta, state, config_cls, infer, name):
    """The config from our metadata, else read off the official file's tensors."""
    try:
        return config_cls.from_dict(json.loads(meta[CONFIG_KEY])) if CONFIG_KEY in meta else infer(state)
    except ValueError as e:
        raise CheckpointError(f"{name}: {e}") from e


def _build_infinity(state, meta, path, precision, device) -> infinity_model.InfinityTransformer:
    name = os.path.basename(os.fspath(path).rstrip("/\\"))
    cfg = _config(meta, state, infinity_model.InfinityConfig, infinity_model.config_from_state_dict, name)
    with torch.device("meta"):
        model = infinity_model.InfinityTransformer(cfg)
    load_strict(model, infinity_model.adapt_state_dict(state, cfg), f"Infinity transformer {name}")
    model = model.place(device, resolve_dtype(precision, device))
    model.flavour = meta.get(FLAVOUR_KEY) or infinity_model.flavour_from_name(name)
    model.file_name = name  # for messages that pair it with a VAE
    _read_resolutions(model, meta)
    _read_tuned(model, meta, path)
    return model.eval().requires_grad_(False)


def _build_infinity_vae(state, meta, path, precision, device) -> infinity_vae.BSQVAE:
    name = os.path.basename(os.fspath(path))
    cfg = _config(meta, state, infinity_vae.BSQVAEConfig, infinity_vae.config_from_state_dict, name)
    with torch.device("meta"):
        model = infinity_vae.BSQVAE(cfg)
    try:
        state = infinity_vae.adapt_state_dict(state, set(model.state_dict()))
    except ValueError as e:
        raise CheckpointError(f"Infinity VAE {name}: {e}") from e
    load_strict(model, state, f"Infinity VAE {name}")
    _read_resolutions(model, meta)
    model.file_name = name
    return model.to(device=device, dtype=resolve_dtype(precision, device)).eval().requires_grad_(False)


def _read_tuned(model, meta, path) -> None:
    """The file's own tuned settings (core.defaults), checked before anything runs with them."""
    if TUNED_KEY in meta:
        try:
            model.tuned_settings = parse_tuned(meta[TUNED_KEY], model_family(model), os.path.basename(path))
        except ValueError as e:
            raise CheckpointError(str(e)) from None


def _read_resolutions(model, meta) -> None:
    if RESOLUTIONS_KEY in meta:
        model.resolutions = tuple(int(r) for r in json.loads(meta[RESOLUTIONS_KEY]))


def load_word_encoder(path: str | os.PathLike, device: torch.device | str = "cpu") -> word_encoder.WordTextEncoder:
    """Load the embedded word-level text encoder (a file this project writes; config and vocabulary in
    the metadata)."""
    path = os.fspath(path)
    state, meta = read_file(path)
    _expect(detect_architecture(state, meta), "word_encoder", path)
    cfg = word_encoder.WordEncoderConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    with torch.device("meta"):
        net = word_encoder.WordEncoderNet(cfg)
    load_strict(net, state, f"text encoder {os.path.basename(path)}")
    net = net.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
    name = os.path.splitext(os.path.basename(path))[0]
    # trained on ShapesWorld captions: prompts outside the world's grammar are refused, not silently encoded
    trained_on = meta.get(TRAINED_ON_KEY, "")
    grammar = {"ShapesWorld": world.parse_caption, "ShapesWorld instructions": instructions.check_prompt}.get(trained_on)
    reads = "instructions" if trained_on.endswith("instructions") else "captions"
    return word_encoder.WordTextEncoder(net, name, grammar, reads)


def load_text_encoder(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """A text encoder by what is on disk: a file is one of the embedded word-level encoders, a folder is T5."""
    if os.path.isfile(path):
        return load_word_encoder(path, device=device)
    from ..text.encoders import T5TextEncoder

    return T5TextEncoder(path, device=device, dtype=dtype)


def load_model(path: str | os.PathLike, **kwargs):
    """Load whichever supported architecture the file holds."""
    read = read_any(path)
    arch = detect_architecture(*read)
    if arch in ("llamagen_gpt", "editar_gpt", "infinity"):
        return load_gpt(path, _read=read, **{k: v for k, v in kwargs.items()
                                             if arch != "infinity" or k in ("precision", "device")})
    if arch in ("llamagen_vq", "infinity_vae"):
        return load_vq(path, _read=read, **{k: v for k, v in kwargs.items() if k in ("precision", "device")})
    raise CheckpointError(f"no loader for architecture {arch!r}")


# Architecture names stored in metadata; subclasses before their base (EditAR is a LlamaGen GPT).
_ARCHITECTURES = ((editar.EditARGPT, "editar_gpt"), (llamagen_gpt.LlamaGenGPT, "llamagen_gpt"),
                  (llamagen_vq.LlamaGenVQ, "llamagen_vq"), (word_encoder.WordEncoderNet, "word_encoder"),
                  (infinity_model.InfinityTransformer, "infinity"), (infinity_vae.BSQVAE, "infinity_vae"))


def save_model(model, path: str | os.PathLike, extra_metadata: dict | None = None) -> None:
    """Save as `.safetensors` with the architecture and config in the metadata."""
    arch = next((name for cls, name in _ARCHITECTURES if isinstance(model, cls)), None)
    if arch is None:
        raise TypeError(f"cannot save a {type(model).__name__}")
    meta = {ARCH_KEY: arch, CONFIG_KEY: json.dumps(model.cfg.to_dict()), **(extra_metadata or {})}
    if arch == "infinity":
        meta[FLAVOUR_KEY] = getattr(model, "flavour", "infinity")
    if arch in ("infinity", "infinity_vae"):
        meta[RESOLUTIONS_KEY] = json.dumps(list(model.resolutions))
    own = {k: v for k, v in (getattr(model, "tuned_settings", None) or {}).items()
           if (model_family(model), k) in PUBLISHED}  # a VAREdit editor made from an Infinity file has no AREdit
    if own and TUNED_KEY not in meta:  # settings given with the file win over what the model was loaded with
        meta[TUNED_KEY] = tuned_json(own)
    save_safetensors(model.state_dict(), path, meta)


def convert_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike | None = None, precision: str | None = None,
                           image_size: int | None = None, n_head: int | None = None, overwrite: bool = False) -> str:
    """Convert an official `.pt` checkpoint to `.safetensors` (weights only, config in metadata, so the head
    count and image size travel with the file). The source is validated by a strict load first; it is never
    modified, whatever path (a link, a linked folder) the destination reaches it by, and an existing destination is
    replaced only with `overwrite`."""
    src = os.fspath(src)
    dst = os.fspath(dst) if dst else os.path.splitext(src)[0] + ".safetensors"
    if os.path.realpath(dst) == os.path.realpath(src) or (os.path.exists(dst) and os.path.samefile(dst, src)):
        raise ValueError(f"the destination {dst} is the source file itself: give another destination")
    if os.path.exists(dst) and not overwrite:
        raise ValueError(f"{dst} exists already: give another destination, or --overwrite to replace it")
    model = load_model(src, precision=precision or "fp32", device="cpu",
                       **({"image_size": image_size} if image_size else {}), **({"n_head": n_head} if n_head else {}))
    if precision:
        model = model.to(resolve_dtype(precision, "cpu"))
    save_model(model, dst, {"ar_edit.source_file": os.path.basename(src)})
    return dst


# LlamaGen's released VQ tokenizers (VQ-16 and VQ-8) all code with 16,384 entries.
OFFICIAL_VQ_CODES = {"vq_ds16_t2i.pt": 16384, "vq_ds16_c2i.pt": 16384, "vq_ds8_c2i.pt": 16384}


def vq_codes_in_file(path: str) -> int | None:
    """A VQ tokenizer's codebook size read without loading it (a safetensors header, or an official file's name);
    None when only loading would tell."""
    name = os.path.basename(path)
    if name in OFFICIAL_VQ_CODES:
        return OFFICIAL_VQ_CODES[name]
    if not name.endswith(".safetensors") or not os.path.isfile(path):
        return None
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            key = "quantize.embedding.weight"
            return f.get_slice(key).get_shape()[0] if key in f.keys() else None
    except Exception:  # noqa: BLE001 - not readable here: the loader will say why
        return None
