"""ATM speed: edit time vs plain generation, and an N-setting sweep vs N single edits.

Random weights of real LlamaGen shapes (speed does not depend on the weights). Ratios are what count;
absolute times depend on the machine. Usage: python bench/bench_atm.py [--preset GPT-B] [--image-size 256]
"""
from __future__ import annotations

import argparse
import json

import torch

from bench_common import device_and_dtype, device_name, random_captions, random_gpt, timed
from ar_edit_pack.core.llamagen.atm import ATMSettings, atm_edit, build_source_cache
from ar_edit_pack.core.llamagen.generate import generate
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings
from ar_edit_pack.core.sweeps import expand, run_sweep


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="GPT-B")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--sweep", type=int, default=8)
    args = p.parse_args()
    device, dtype = device_and_dtype(args.precision)
    model = random_gpt(args.preset, args.image_size, device, dtype)
    cfg = model.cfg
    src, edit = random_captions(model, device)
    sampling = SamplingSettings(cfg_scale=7.5, top_k=1000)
    codebook = torch.nn.functional.normalize(torch.randn(cfg.vocab_size, 8, device=device), dim=-1)
    g = cfg.grid_size
    tokens = generate(model, src, sampling, [0])
    cache = build_source_cache(TokenBatch(tokens.view(1, g, g), "generated", src, torch.tensor([0]), sampling), codebook)
    atm = ATMSettings()

    t_gen = timed(lambda: generate(model, edit, sampling, [1]), device, args.repeats)
    # one token per pass, as generation (bench_draft.py measures the draft mode)
    t_atm = timed(lambda: atm_edit(model, cache, edit, sampling, atm, [1], max_chunk=1), device, args.repeats)
    settings, _ = expand([150], [0.6], [0.25 * (k + 1) for k in range(args.sweep)], [1], [7.5], "greedy")
    t_sweep = timed(lambda: run_sweep(model, cache, edit, sampling, settings), device, args.repeats)
    result = {
        "device": device_name(device),
        "model": f"{args.preset} random weights, {args.image_size} px ({g}x{g} tokens), {str(dtype).split('.')[-1]}",
        "plain_generation_s": round(t_gen, 3), "atm_edit_s": round(t_atm, 3),
        "atm_over_generation": round(t_atm / t_gen, 3),
        f"sweep{args.sweep}_s": round(t_sweep, 3),
        f"sweep{args.sweep}_over_{args.sweep}x_single": round(t_sweep / (args.sweep * t_atm), 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
