"""Tiny models of the official architectures, built and saved the way official files are."""
from __future__ import annotations

import argparse

import torch

from dataclasses import replace

from ar_edit_pack.core.infinity.model import InfinityConfig
from ar_edit_pack.core.infinity.vae import BSQVAEConfig
from ar_edit_pack.core.llamagen.gpt import GPTConfig, LlamaGenGPT
from ar_edit_pack.core.llamagen.vq import LlamaGenVQ, VQConfig

# caption_dim 32 = the tiny T5's d_model; 40 caption slots; a 4x4 token grid (64 px at stride 16). Not an official
# size, so an official-layout file of it (no head count stored) loads with n_head=TINY_HEADS given.
TINY_T2I = dict(dim=64, n_layer=2, n_head=4, multiple_of=32, caption_dim=32, cls_token_num=40, vocab_size=64,
                image_size=64)
TINY_HEADS = TINY_T2I["n_head"]
# Every code path of Infinity 2B / 8B, a few hundred kB.
TINY_INFINITY = InfinityConfig(depth=2, embed_dim=64, num_heads=2, text_channels=32, text_maxlen=64, block_chunks=2,
                               vae_bits=8, pool_heads=2)
TINY_BSQ_VAE = BSQVAEConfig(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, bits=8)


def tiny_gpt(seed: int = 0, **overrides) -> LlamaGenGPT:
    torch.manual_seed(seed)
    model = LlamaGenGPT(GPTConfig(**{**TINY_T2I, **overrides})).eval().requires_grad_(False)
    with torch.no_grad():  # random init is small; scale up so logits are not nearly uniform
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.cls_embedding.uncond_embedding.normal_(0, 1) if model.cfg.model_type == "t2i" else None
    return model


def tiny_vq(seed: int = 0, **overrides) -> LlamaGenVQ:
    torch.manual_seed(seed)
    cfg = VQConfig(**{**dict(codebook_size=64, codebook_embed_dim=4, ch=32, ch_mult=(1, 1, 1, 1, 2),
                             z_channels=32, norm_groups=32), **overrides})
    model = LlamaGenVQ(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        model.quantize.embedding.weight.normal_()
    return model


def save_official_pt(model: torch.nn.Module, path: str, wrapper: str | None = "model", with_args: bool = True) -> str:
    """Like LlamaGen's training checkpoints: weights under `wrapper` plus an argparse Namespace."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    obj = state if wrapper is None else {wrapper: state}
    if with_args and wrapper is not None:
        obj["args"] = argparse.Namespace(gpt_model="GPT-XL", image_size=512)
        obj["steps"] = 1000
    torch.save(obj, path)
    return path


def save_bare_safetensors(model: torch.nn.Module, path: str) -> str:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def tiny_infinity(seed: int = 0, **overrides):
    """Infinity layout at toy width (text 32-d = the tiny T5), weights scaled so outputs are not uniform."""
    from ar_edit_pack.core.infinity.model import InfinityTransformer

    torch.manual_seed(seed)
    model = InfinityTransformer(replace(TINY_INFINITY, **overrides)).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0, 0.3 if "scale_mul" not in name else 0.5)
    return model


def tiny_infinity_vae(seed: int = 0, **overrides):
    from ar_edit_pack.core.infinity.vae import BSQVAE

    torch.manual_seed(seed)
    return BSQVAE(replace(TINY_BSQ_VAE, **overrides)).eval().requires_grad_(False)


def infinity_condition(n: int = 1, length: int = 5, dim: int = 32, seed: int = 0, lengths=None):
    """Random T5-like features in Infinity's layout (right-padded, mask)."""
    from ar_edit_pack.core.condition import Condition

    g = torch.Generator().manual_seed(seed)
    lengths = lengths or [length] * n
    L = max(lengths)
    feats = torch.randn(n, L, dim, generator=g)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    return Condition(feats * mask[..., None], mask, [f"prompt {i}" for i in range(n)], "infinity")
