"""Janus-Pro folders as users have them, loaded strictly with only what generation needs.

Two layouts (shared/docs/janus_pro.md, checked against deepseek-ai/Janus and transformers' models/janus):
- DeepSeek's original (the hub's deepseek-ai/Janus-Pro-1B / -7B): config.json with `language_config` and the
  generation modules' configs; `pytorch_model.bin` (1B) or two `.bin` shards with `pytorch_model.bin.index.json`
  (7B), pickled, read with weights_only and memory-mapped. Keys `language_model.*`, `gen_vision_model.*`
  (LlamaGen's VQ-16 names), `gen_embed`, `gen_aligner`, `gen_head`.
- transformers' converted one (`model_type` "janus", `text_config`, `vq_config`; model.safetensors or shards):
  `model.language_model.*`, `model.vqmodel.*` (renamed VQ blocks), `model.generation_{embeddings,aligner,head}`.
Both become the original names, then two strict loads: the generation model and the VQ tokenizer. Understanding-only
weights (the SigLIP tower, its aligner) and the text head are dropped by name; anything else left over, or missing,
is an error that names it.
"""
from __future__ import annotations

import json
import os
import re

import torch

from ..defaults import parse_tuned
from ..files.checkpoints import CheckpointError, load_strict, read_config_json, read_file, read_sharded
from ..llamagen import vq as llamagen_vq
from .model import JanusConfig, JanusGen
from .prompt import JanusTokenizer

# Keys generation never reads, per layout (original names): the understanding encoder and the text head.
UNUSED_PREFIXES = ("vision_model.", "aligner.", "language_model.lm_head.")
VQ_PREFIX = "gen_vision_model."
# transformers' names -> the original's (prefixes, in order)
_HF_PREFIXES = (("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
                ("model.vision_model.", "vision_model."), ("model.aligner.", "aligner."),
                ("model.vqmodel.", VQ_PREFIX), ("model.generation_embeddings.", "gen_embed."),
                ("model.generation_aligner.fc1.", "gen_aligner.layers.0."),
                ("model.generation_aligner.hidden_layers.0.", "gen_aligner.layers.2."),
                ("model.generation_head.proj_out.", "gen_head.output_mlp_projector."),
                ("model.generation_head.vision_head.", "gen_head.vision_head."))
_HF_VQ = ((r"^(encoder)\.down\.(\d+)\.block\.", r"\1.conv_blocks.\2.res."),
          (r"^(decoder)\.up\.(\d+)\.block\.", r"\1.conv_blocks.\2.res."),
          (r"^(encoder)\.down\.", r"\1.conv_blocks."), (r"^(decoder)\.up\.", r"\1.conv_blocks."),
          (r"\.mid\.block_1\.", ".mid.0."), (r"\.mid\.attn_1\.", ".mid.1."), (r"\.mid\.block_2\.", ".mid.2."))


def read_config(folder: str) -> tuple[JanusConfig, dict, str]:
    """-> (our config, the folder's config.json, its layout: "original" | "transformers")."""
    path = os.path.join(folder, "config.json")
    hf = read_config_json(folder)
    own = hf.get("ar_edit") if isinstance(hf.get("ar_edit"), dict) else {}  # a file of ours: its picture size
    try:
        size = int(own.get("image_size", 384))  # Janus-Pro draws 384 px (24 x 24 codes); no file stores it
        if hf.get("model_type") == "janus":
            vq = hf.get("vq_config") or {}
            cfg = JanusConfig.from_language_config(hf.get("text_config") or {}, int(vq.get("num_embeddings", 16384)),
                                                   int(vq.get("embed_dim", 8)), size)
            return cfg, hf, "transformers"
        if "language_config" in hf:
            params = (hf.get("gen_vision_config") or {}).get("params") or {}
            cfg = JanusConfig.from_language_config(hf["language_config"], int(params.get("image_token_size", 16384)),
                                                   int(params.get("n_embed", 8)), size)
            return cfg, hf, "original"
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not a Janus config ({e})") from None
    raise ValueError(f"{path} is not a Janus-Pro config (model_type {hf.get('model_type')!r}, no language_config): "
                     f"pick a deepseek-ai/Janus-Pro folder")


def _read_weights(folder: str) -> dict[str, torch.Tensor]:
    names = os.listdir(folder)
    if any(n.endswith(".index.json") for n in names):
        return read_sharded(folder)[0]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if single in names:
            return read_file(os.path.join(folder, single))[0]
    raise CheckpointError(f"{folder} has no weights (model.safetensors, pytorch_model.bin, or shards with an "
                          f"*.index.json): the download is incomplete")


def to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' names -> the original's (a state already in the original layout is returned as it is)."""
    if not any(k.startswith("model.") for k in state):
        return state
    out = {}
    for k, v in state.items():
        for old, new in _HF_PREFIXES:
            if k.startswith(old):
                k = new + k[len(old):]
                break
        if k.startswith(VQ_PREFIX):
            rest = k[len(VQ_PREFIX):]
            for pattern, repl in _HF_VQ:
                rest = re.sub(pattern, repl, rest)
            k = VQ_PREFIX + rest
        out[k] = v
    return out


def split(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Original-layout state -> (generation model's tensors, VQ tokenizer's), unused ones dropped by name."""
    gen, vq = {}, {}
    for k, v in state.items():
        if k.startswith(UNUSED_PREFIXES):
            continue
        if k.startswith(VQ_PREFIX):
            vq[k[len(VQ_PREFIX):]] = v
        else:
            gen[k] = v
    return gen, vq


def load_janus(folder: str, dtype: torch.dtype | None = None, device="cpu",
               vq_dtype: torch.dtype = torch.float32) -> tuple[JanusGen, llamagen_vq.LlamaGenVQ]:
    """A Janus-Pro folder -> (the generation model with its text tokenizer, the VQ tokenizer). dtype None: the file's
    own (bf16 for the released ones); the VQ in fp32 by default, as the pack's other VQ tokenizers."""
    folder = os.fspath(folder)
    cfg, hf, layout = read_config(folder)
    tokenizer = JanusTokenizer.from_folder(folder)
    gen, vq_state = split(to_original(_read_weights(folder)))
    where = f"Janus-Pro ({layout} layout) {os.path.basename(os.path.normpath(folder))}"
    if not vq_state:
        raise CheckpointError(f"{where}: no VQ tokenizer weights ({VQ_PREFIX}* / model.vqmodel.*) in the files")
    dtype = dtype or gen.get("gen_head.vision_head.weight", next(iter(gen.values()))).dtype
    with torch.device("meta"):
        model = JanusGen(cfg)
    load_strict(model, {k: v.to(device=device, dtype=dtype) for k, v in gen.items()}, where)
    own = hf.get("ar_edit") if isinstance(hf.get("ar_edit"), dict) else {}  # a file of ours: VQ layout, settings
    try:  # the released VQ-16 reads off its tensors; a small one of ours says its GroupNorm groups in config.json
        vq_cfg = (llamagen_vq.VQConfig.from_dict(own["vq_config"]) if isinstance(own.get("vq_config"), dict)
                  else llamagen_vq.config_from_state_dict(vq_state))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{where}: cannot read its VQ tokenizer ({e})") from None
    if (vq_cfg.codebook_size, vq_cfg.codebook_embed_dim) != (cfg.image_codes, cfg.code_dim):
        raise CheckpointError(f"{where}: the VQ has {vq_cfg.codebook_size} codes of {vq_cfg.codebook_embed_dim}, the "
                              f"model draws {cfg.image_codes} of {cfg.code_dim}: the files do not belong together")
    with torch.device("meta"):
        vq = llamagen_vq.LlamaGenVQ(vq_cfg)
    vq_state.setdefault("quantize.codebook_used", torch.zeros(65536))  # a training statistic; transformers drops it
    load_strict(vq, {k: v.to(device=device, dtype=vq_dtype) for k, v in vq_state.items()}, f"{where} VQ tokenizer")
    model.tokenizer = tokenizer
    tokenizer.check_vocab(cfg.vocab_size, where)
    model.tuned_settings = parse_tuned(json.dumps(own["tuned"]), "janus", folder) if own.get("tuned") else {}
    return model.eval().requires_grad_(False), vq.eval().requires_grad_(False)


def _safetensors_name(bin_name: str, single: bool) -> str:
    """pytorch_model.bin -> model.safetensors; pytorch_model-00001-of-00002.bin -> model-00001-of-00002.safetensors
    (transformers' names, which the loader reads as any sharded folder)."""
    if single:
        return "model.safetensors"
    stem = bin_name[:-len(".bin")]
    return ("model" + stem[len("pytorch_model"):] if stem.startswith("pytorch_model") else stem) + ".safetensors"


def convert_folder(src: str, dst: str | None = None, overwrite: bool = False, precision: torch.dtype | None = None) -> str:
    """DeepSeek's original folder of pickled `.bin` weights -> the same folder with safetensors weights (one shard per
    `.bin`, same tensor names, an index when sharded; every other file copied), which loads without unpickling and
    memory-mapped. The source is checked by a strict load first and never changed; the new folder is written beside
    its final name and renamed into place, so a killed run leaves no half folder under it. `precision`: cast the
    floating-point weights (default: keep)."""
    import shutil

    from ..files.checkpoints import save_safetensors

    src = os.path.normpath(os.fspath(src))
    dst = os.path.normpath(os.fspath(dst)) if dst else src + "-safetensors"
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    if real_dst == real_src or real_dst.startswith(real_src + os.sep) or real_src.startswith(real_dst + os.sep):
        raise ValueError(f"the destination {dst} is (or holds, or lies in) the source folder: give another one")
    if os.path.exists(dst) and not overwrite:
        raise ValueError(f"{dst} exists already: give another destination, or --overwrite to replace it")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise ValueError(f"{dst} is a file, not a model folder: give another destination")
    _, _, layout = read_config(src)
    names = sorted(os.listdir(src))
    bins = [n for n in names if n.endswith(".bin") and os.path.isfile(os.path.join(src, n))]
    if layout != "original" or not bins:
        raise ValueError(f"{src} holds no pickled .bin weights of DeepSeek's layout ({layout} layout): its weights "
                         f"are safetensors already, nothing to convert")
    load_janus(src, dtype=None)  # strict: a folder with a missing, extra or damaged tensor is refused before writing
    index = "pytorch_model.bin.index.json"
    if len(bins) > 1 and index not in names:
        raise CheckpointError(f"{src}: {len(bins)} .bin files but no {index}: which are the shards is unknown")
    renamed = {b: _safetensors_name(b, len(bins) == 1) for b in bins}
    work = dst + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        weight_map = {}
        for b in bins:
            state = read_file(os.path.join(src, b))[0]
            if precision is not None:
                state = {k: v.to(precision) if v.is_floating_point() else v for k, v in state.items()}
            save_safetensors(state, os.path.join(work, renamed[b]), {"format": "pt"})
            weight_map.update({k: renamed[b] for k in state})
            del state
        if len(bins) > 1:
            with open(os.path.join(work, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"converted_from": index}, "weight_map": weight_map}, f, indent=1)
        for n in names:  # config, tokenizer and processor files, as files (a hub cache's links are followed)
            path = os.path.join(src, n)
            if n not in bins and n != index and os.path.isfile(path):
                shutil.copyfile(path, os.path.join(work, n))
        if os.path.exists(dst):  # --overwrite: the old folder goes only once the new one is complete
            old = dst + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
            os.replace(work, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dst
