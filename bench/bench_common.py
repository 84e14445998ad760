"""Shared by the benchmarks (the pack installed as `ar_edit_pack`): best-of-N timing, device and dtype, and
Infinity models with random weights (speed does not depend on the weights)."""
from __future__ import annotations

import os
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ar_edit_pack.core.condition import Condition  # noqa: E402
from ar_edit_pack.core.infinity.model import InfinityConfig, InfinityTransformer  # noqa: E402
from ar_edit_pack.core.llamagen.gpt import GPTConfig, LlamaGenGPT  # noqa: E402

# A CPU-sized Infinity (same code paths as 2B/8B).
SMALL_INFINITY = dict(depth=8, embed_dim=512, num_heads=4, text_channels=256, block_chunks=2, pool_heads=2)


def device_and_dtype(precision: str = "auto") -> tuple[torch.device, torch.dtype]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"auto": torch.bfloat16 if device.type == "cuda" else torch.float32, "fp32": torch.float32,
             "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return device, dtype


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def timed(fn, device, repeats):
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def random_infinity(preset: str, device, dtype) -> InfinityTransformer:
    """preset "small" or an Infinity preset name; blocks in `dtype`, the rest fp32 (as loaded models)."""
    cfg = InfinityConfig(**SMALL_INFINITY) if preset == "small" else InfinityConfig.preset(preset)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = InfinityTransformer(cfg)
    model = model.to_empty(device=device)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return model.float().set_block_dtype(dtype).eval().requires_grad_(False)


def random_gpt(preset: str, image_size: int, device, dtype) -> LlamaGenGPT:
    """A LlamaGen GPT of a real shape with random weights (and a random null caption)."""
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaGenGPT(GPTConfig.preset(preset, image_size=image_size))
    model = model.to_empty(device=device)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.cls_embedding.uncond_embedding.normal_()
    return model.to(dtype).eval().requires_grad_(False)


def random_captions(model: LlamaGenGPT, device, n: int = 2, valid: int = 12) -> list[Condition]:
    """n random caption conditions of the model's shape, each with `valid` left-padded caption tokens."""
    cfg = model.cfg
    mask = torch.zeros(1, cfg.cls_token_num, dtype=torch.bool, device=device)
    mask[:, -valid:] = True
    return [Condition(torch.randn(1, cfg.cls_token_num, cfg.caption_dim, device=device) * mask[..., None], mask)
            for _ in range(n)]
