"""VAREdit speed: one instruction edit vs plain text-to-image generation on the same Infinity backbone, and an
N-setting sweep vs N single edits. Random weights (speed does not depend on them); ratios are what count.
Usage: python bench/bench_varedit.py [--preset small|infinity-2b|infinity-8b] [--resolution 512]
"""
from __future__ import annotations

import argparse
import json

import torch

from bench_common import device_and_dtype, device_name, random_infinity, timed
from ar_edit_pack.core.infinity.generate import InfinitySampling, generate
from ar_edit_pack.core.infinity.scales import scale_schedule
from ar_edit_pack.core.infinity.vae import BSQVAE, BSQVAEConfig
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.infinity.varedit import varedit_edit


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="small")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sweep", type=int, default=4)
    args = p.parse_args()
    device, dtype = device_and_dtype(args.precision)
    model = random_infinity(args.preset, device, dtype)
    cfg = model.cfg
    vae_cfg = (BSQVAEConfig(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, bits=cfg.vae_bits) if args.preset == "small"
               else BSQVAEConfig.preset("infinity-vae-d56-f8" if cfg.patchify else "infinity-vae-d32"))
    vae = BSQVAE(vae_cfg).to(device).eval().requires_grad_(False)
    mask = torch.ones(1, 16, dtype=torch.bool, device=device)
    text = Condition(torch.randn(1, 16, cfg.text_channels, device=device), mask, ["instruction"], "infinity")
    sched = scale_schedule(args.resolution)
    img = torch.rand(1, 3, args.resolution, args.resolution, device=device) * 2 - 1
    s = InfinitySampling(cfg=4.0, tau=0.5)
    seed = torch.tensor([1])
    t_gen = timed(lambda: generate(model, text, sched, s, seed), device, args.repeats)
    t_edit = timed(lambda: varedit_edit(model, vae, text, img, sched, s, seed), device, args.repeats)
    n = args.sweep
    t_sweep = timed(lambda: varedit_edit(model, vae, text.repeat_interleave(n), img.expand(n, -1, -1, -1), sched,
                                         [InfinitySampling(cfg=3.0 + i, tau=0.5) for i in range(n)], torch.arange(n)),
                    device, args.repeats)
    name = "small random" if args.preset == "small" else f"{args.preset} random"
    print(json.dumps({
        "device": device_name(device),
        "model": f"{name} (depth {cfg.depth}, width {cfg.embed_dim}), {args.resolution} px, {str(dtype).split('.')[-1]}",
        "plain_generation_s": round(t_gen, 3), "varedit_edit_s": round(t_edit, 3),
        "edit_over_generation": round(t_edit / t_gen, 3),
        f"sweep{n}_over_{n}x_single": round(t_sweep / (n * t_edit), 3)}, indent=1))


if __name__ == "__main__":
    main()
