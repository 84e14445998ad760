"""AREdit speed: an edit with a warm source cache vs the first edit (cache build included), vs plain
generation, per resolution; and an N-setting sweep vs N single edits.

Random weights of a given Infinity layout (speed does not depend on the weights). The source is a real
image's bits (random bits of the right shapes), so the first edit pays the teacher-forced caching pass.
Ratios are what count. Usage: python bench/bench_aredit.py [--preset infinity-2b] [--resolutions 256 512]
"""
from __future__ import annotations

import argparse
import json

import torch

from bench_common import device_and_dtype, device_name, random_infinity, timed
from ar_edit_pack.core.infinity.aredit import AREditSettings, aredit_edit, build_source
from ar_edit_pack.core.infinity.generate import BitTokens, InfinitySampling, generate
from ar_edit_pack.core.infinity.scales import scale_schedule
from ar_edit_pack.core.condition import Condition


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="small", help="small (CPU), infinity-2b, infinity-8b")
    p.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--sweep", type=int, default=6)
    args = p.parse_args()
    device, dtype = device_and_dtype(args.precision)
    model = random_infinity(args.preset, device, dtype)
    cfg = model.cfg
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
    print(json.dumps({"device": device_name(device),
                      "model": f"{name} (depth {cfg.depth}, width {cfg.embed_dim}), {str(dtype).split('.')[-1]}",
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
