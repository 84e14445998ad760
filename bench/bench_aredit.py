"""AREdit speed: an edit with a warm source cache vs the first edit (cache build included), vs plain
generation, per resolution; and an N-setting sweep vs N single edits.

Random weights of a given Infinity layout (speed does not depend on the weights). The source is a real
image's bits (random bits of the right shapes), so the first edit pays the teacher-forced caching pass.
Ratios are what count. Usage: python bench/bench_aredit.py [--preset infinity-2b] [--resolutions 256 512]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("ar_edit_pack", os.path.join(ROOT, "__init__.py"),
                                              submodule_search_locations=[ROOT])
pack = importlib.util.module_from_spec(spec)
sys.modules["ar_edit_pack"] = pack
spec.loader.exec_module(pack)

from ar_edit_pack.core.aredit import AREditSettings, aredit_edit, build_source  # noqa: E402
from ar_edit_pack.core.infinity_generate import BitTokens, InfinitySampling, generate  # noqa: E402
from ar_edit_pack.core.infinity_model import InfinityConfig, InfinityTransformer  # noqa: E402
from ar_edit_pack.core.infinity_scales import scale_schedule  # noqa: E402
from ar_edit_pack.core.llamagen_generate import Condition  # noqa: E402

SMALL = dict(depth=8, embed_dim=512, num_heads=4, text_channels=256, block_chunks=2, pool_heads=2)  # CPU-sized


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="small", help="small (CPU), infinity-2b, infinity-8b")
    p.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--sweep", type=int, default=6)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"auto": torch.bfloat16 if device.type == "cuda" else torch.float32, "fp32": torch.float32,
             "bf16": torch.bfloat16}[args.precision]
    cfg = InfinityConfig(**SMALL) if args.preset == "small" else InfinityConfig.preset(args.preset)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = InfinityTransformer(cfg)
    model = model.to_empty(device=device)
    for p_ in model.parameters():
        torch.nn.init.normal_(p_, std=0.02)
    model = model.to(dtype).eval().requires_grad_(False)
    mask = torch.ones(1, 16, dtype=torch.bool, device=device)
    src = Condition(torch.randn(1, 16, cfg.text_channels, device=device), mask, ["source"], "infinity")
    tgt = Condition(torch.randn(1, 16, cfg.text_channels, device=device), mask, ["target"], "infinity")
    sampling = InfinitySampling(cfg=3.0, tau=0.5, top_p=0.97)
    rows = []
    for res in args.resolutions:
        sched = scale_schedule(res)
        image_bits = BitTokens([torch.rand(1, h, w, cfg.token_bits, device=device) > 0.5 for h, w in sched], sched,
                               "encoded", cfg.patchify)
        seed = torch.tensor([1])
        t_gen = timed(lambda: generate(model, tgt, sched, sampling, seed), device, args.repeats)
        t_first = timed(lambda: aredit_edit(model, build_source(model, image_bits, src, sampling), tgt,
                                            AREditSettings(), seed), device, args.repeats)
        cache = build_source(model, image_bits, src, sampling)
        t_warm = timed(lambda: aredit_edit(model, cache, tgt, AREditSettings(), seed), device, args.repeats)
        n = args.sweep
        settings = [AREditSettings(g, t) for g in (1, 2, 3) for t in (0.0, 0.1, 0.3)][:n]
        batch = cache.index(torch.zeros(n, dtype=torch.long))
        t_sweep = timed(lambda: aredit_edit(model, batch, tgt, settings, torch.arange(n)), device, args.repeats)
        rows.append({"resolution": res, "scales": len(sched), "plain_generation_s": round(t_gen, 3),
                     "first_edit_with_cache_s": round(t_first, 3), "warm_edit_s": round(t_warm, 3),
                     "warm_over_first": round(t_warm / t_first, 3), "warm_over_generation": round(t_warm / t_gen, 3),
                     f"sweep{n}_over_{n}x_warm": round(t_sweep / (n * t_warm), 3)})
    name = "small random" if args.preset == "small" else f"{args.preset} random"
    print(json.dumps({"device": torch.cuda.get_device_name() if device.type == "cuda" else
                      f"cpu ({torch.get_num_threads()} threads)",
                      "model": f"{name} (depth {cfg.depth}, width {cfg.embed_dim}), {str(dtype).split('.')[-1]}",
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
