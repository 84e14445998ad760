"""Lumina-mGPT pipelines: loading a Hugging Face folder, text-to-image, and Anchor Token Matching (ISLock's second
backbone) with the naive same-seed baseline, either inside a mask. The edit rules are LlamaGen's (core.llamagen.atm)
applied to Lumina-mGPT's logits over image codes; the token distance is the paper's for this backbone: 1 - cosine
similarity of the model's first-layer (input) embeddings of the image tokens."""
from __future__ import annotations

import json
import os
import re
from typing import Sequence

import torch

from ..files.checkpoints import read_file, read_sharded
from ..llamagen.atm import AnchorPicker, ATMParams, ATMSettings, EditResult, SourceCache, build_source_cache
from ..lumina import chameleon
from ..lumina.chameleon import ChameleonLM
from ..defaults import defaults, parse_tuned
from ..lumina.generate import DRAFT_CHUNK, DecodeStats, ProgressFn, SamplePicker, decode_codes, prompt_ids
from ..lumina.tokens import STRIDE, LuminaVocab, check_size
from ..lumina.vqgan import ChameleonVQGAN
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from ..sweeps import SweepSetting
from .common import Images, fit_images, per_row, sweep_rows, token_region

EDIT_METHODS = ("atm", "naive")


def load_lumina(folder: str, dtype: torch.dtype | None = None, device="cpu") -> ChameleonLM:
    """A Lumina-mGPT folder (config.json with its vocabulary_map, model.safetensors or shards with
    model.safetensors.index.json, tokenizer.json), strictly: config and weights must agree key by key."""
    cfg, hf = chameleon.read_config(folder)
    vocab = LuminaVocab.from_map(hf.get("vocabulary_map"), cfg.vocab_size, os.path.join(folder, "config.json"))
    tok_path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(tok_path):
        raise FileNotFoundError(f"{folder} has no tokenizer.json: the folder is incomplete (download it again)")
    single = os.path.join(folder, "model.safetensors")
    state, _ = read_file(single) if os.path.isfile(single) else read_sharded(folder)
    if dtype is None:  # the file's own (bf16 for the released folders)
        dtype = state["lm_head.weight"].dtype if "lm_head.weight" in state else torch.float32
    model = chameleon.build(cfg, state, dtype, device, folder)
    from tokenizers import Tokenizer

    try:
        model.tokenizer = Tokenizer.from_file(tok_path)
    except Exception as e:  # noqa: BLE001 - the tokenizers library raises its own exception type
        raise ValueError(f"{tok_path} is not a readable tokenizer.json: {e}") from None
    model.vocab = vocab
    own = hf.get("ar_edit") if isinstance(hf.get("ar_edit"), dict) else {}  # the embedded set's notes about itself
    model.stride = int(own.get("vqgan_stride", STRIDE))  # px per code of the VQGAN it was trained with
    model.picture_px = int(own.get("picture_px") or _size_from_name(folder) or 768)
    model.tuned_settings = parse_tuned(json.dumps(own["tuned"]), "lumina", folder) if own.get("tuned") else {}
    return model


def _size_from_name(folder: str) -> int | None:
    """Alpha-VLLM/Lumina-mGPT-7B-768 -> 768 (the folders are named by the size they were trained for)."""
    m = re.search(r"-(\d{3,4})(?:-|$)", os.path.basename(os.path.normpath(folder)))
    return int(m.group(1)) if m else None


def check_pair(vqgan: ChameleonVQGAN, model: ChameleonLM) -> None:
    """A VQGAN and a model that code differently (other codes, another stride) cannot belong together."""
    if vqgan.cfg.n_embed != model.vocab.n_codes or vqgan.downsample != getattr(model, "stride", STRIDE):
        raise ValueError(f"the VQGAN has {vqgan.cfg.n_embed} codes of {vqgan.downsample} px, the model "
                         f"{model.vocab.n_codes} image tokens of {getattr(model, 'stride', STRIDE)} px: they do not "
                         f"belong together (Meta's VQGAN goes with the Lumina-mGPT files, the embedded one with the "
                         f"embedded model)")


def encode_prompts(model: ChameleonLM, captions: Sequence[str], height: int, width: int) -> list[list[int]]:
    return [prompt_ids(model.tokenizer, model.vocab, c, height, width) for c in captions]


def grid(height: int, width: int, stride: int = STRIDE) -> tuple[int, int]:
    """A picture of H x W px -> its code grid (rows, cols) for a VQGAN of `stride` px per code. The official
    sizes are multiples of 32 px at stride 16; the embedded VQGAN codes every 8 px, so its 48 px pictures take the
    layout of 96 px ones."""
    if height % stride or width % stride:
        raise ValueError(f"{width} x {height} px is not a whole number of {stride} px codes")
    rows, cols = height // stride, width // stride
    check_size(rows * STRIDE, cols * STRIDE)
    return rows, cols


def generate(model: ChameleonLM, captions: Sequence[str], height: int, width: int, seeds,
             sampling: SamplingSettings | None = None, progress: ProgressFn | None = None) -> TokenBatch:
    """One picture per caption (each with its own seed) -> VQGAN codes [B, H/s, W/s] with their provenance
    (s: px per code of the model's VQGAN, 16 for Meta's)."""
    sampling = (sampling or defaults(model, "sampling")).validate()
    seeds = seed_tensor(seeds)
    stride = getattr(model, "stride", STRIDE)
    rows, cols = grid(height, width, stride)
    prompts = encode_prompts(model, captions, rows * STRIDE, cols * STRIDE)
    if seeds.shape != (len(prompts),):
        raise ValueError(f"need one seed per caption ({len(prompts)}), got {seeds.numel()}")
    pick = SamplePicker(sampling, seeds.to(model.device))
    codes = decode_codes(model, prompts, rows, cols, sampling.cfg_scale, pick, progress)
    return TokenBatch(codes, "generated", None, seeds.to(codes.device), sampling, stride)


def encode(vqgan: ChameleonVQGAN, images: Images, height: int, width: int | None = None,
           resize: str = "center_crop") -> TokenBatch:
    """Pictures -> VQGAN codes at H x W px (fitted by resize and centre crop)."""
    width = width or height
    grid(height, width, vqgan.downsample)
    x = fit_images(images, (height, width), resize, vqgan.downsample)
    return TokenBatch(vqgan.encode(x), "encoded", stride=vqgan.downsample)


def decode(vqgan: ChameleonVQGAN, tokens: TokenBatch | torch.Tensor) -> torch.Tensor:
    """Codes -> IMAGE [B, H, W, 3] 0..1 (the official: clamp to -1..1, then (x + 1) / 2)."""
    codes = tokens.tokens if isinstance(tokens, TokenBatch) else tokens
    return ((vqgan.decode(codes) + 1) / 2).permute(0, 2, 3, 1).cpu()


def embedding_table(model: ChameleonLM) -> torch.Tensor:
    """The first-layer embeddings of the image tokens, indexed by VQGAN code [n_codes, D]: what ATM compares."""
    return model.model.embed_tokens.weight.index_select(0, model.vocab.image_ids.to(model.device))


def source_cache(model: ChameleonLM, source: TokenBatch) -> SourceCache:
    return build_source_cache(source, embedding_table(model), metric="cosine")


def edit(model: ChameleonLM, cache: SourceCache, captions: Sequence[str], seeds, method: str = "atm",
         sampling: SamplingSettings | None = None, atm: ATMSettings | Sequence[ATMSettings] | None = None,
         mask=None, progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
         stats: DecodeStats | None = None, cfg_scale: float | Sequence[float] | None = None) -> EditResult:
    """Regenerate each source row under its edit caption at the source's size. "atm": every code the windowed
    candidate nearest to the source's code (within tau), else the fallback; "naive": plain sampling with the same
    seed. `mask` (MASK on the picture, or one per row; 1 = may change): outside it the source's codes are kept.
    The source's codes serve as a draft, up to `max_chunk` tokens verified per pass (1: one per pass; the codes are
    the same either way); a naive edit drafts only where a mask keeps the source. `cfg_scale`: one per row (sweeps),
    else the sampling's."""
    if method not in EDIT_METHODS:
        raise ValueError(f"method must be one of {EDIT_METHODS}, got {method!r}")
    sampling = (sampling or defaults(model, "sampling")).validate()
    B, (rows, cols) = cache.batch, cache.grid
    seeds = seed_tensor(seeds)
    if seeds.shape != (B,):
        raise ValueError(f"need one seed per source row ({B}), got {seeds.numel()}")
    if cache.codebook.shape[0] != model.vocab.n_codes:
        raise ValueError(f"the source's codes index {cache.codebook.shape[0]} entries, this model has "
                         f"{model.vocab.n_codes} image tokens: source and model do not match")
    captions = per_row([captions] if isinstance(captions, str) else captions, B, "captions")
    prompts = encode_prompts(model, captions, rows * STRIDE, cols * STRIDE)
    region = token_region(mask, (rows, cols), cache.stride, B)
    region = None if region is None else region.to(model.device)
    dev_seeds = seeds.to(model.device)
    fixed = None if region is None else ~region.reshape(B, -1)
    if method == "atm":
        params = ATMParams.from_settings(atm or defaults(model, "atm"), B, model.vocab.n_codes)
        pick = AnchorPicker(cache, params, sampling, dev_seeds, region)
        draft = cache.anchors
    else:
        pick = SamplePicker(sampling, dev_seeds, fixed, cache.anchors)
        draft = None if region is None else cache.anchors
    scale = sampling.cfg_scale if cfg_scale is None else per_row(
        [cfg_scale] if isinstance(cfg_scale, (int, float)) else list(cfg_scale), B, "cfg scales")
    codes = decode_codes(model, prompts, rows, cols, scale, pick, progress, draft, fixed, max_chunk, stats)
    return EditResult.compare(codes.reshape(B, -1), cache.anchors)


def sweep(model: ChameleonLM, cache: SourceCache, captions: Sequence[str], settings: Sequence[SweepSetting],
          method: str = "atm", sampling: SamplingSettings | None = None, mask=None,
          progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
          stats: DecodeStats | None = None) -> EditResult:
    """Every setting (K, alpha, tau, seed, cfg) for every source row as ONE batched decode; row = item * S + j,
    and row j of an item equals the single edit with setting j. Captions and masks: one, or one per source row."""
    rows, captions, seeds, atms, cfgs, mask = sweep_rows(cache.batch, captions, settings, mask)
    return edit(model, cache.select(rows), captions, seeds, method, sampling, atms, mask, progress, max_chunk, stats,
                cfgs)
