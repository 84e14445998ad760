"""Anchor-draft decoding vs one token per pass: forward passes per edit and wall time, side by side in one run.

1. LlamaGen shapes with random weights (speed does not depend on the weights): a masked edit whose region is a
   centred square of a quarter of the image, ATM and naive, batch 1 and a sweep of N tau values.
2. The embedded models on ShapesEdit cases, one edit at a time: sequential passes per edit, and the share of
   cases whose tokens equal the sequential ones; the same on the embedded Lumina-mGPT-architecture set.

Usage: python bench/bench_draft.py [--preset GPT-B] [--image-size 256] [--precision auto] [--cases 200]
(on a GPU: --preset GPT-XL --image-size 512 runs the real size). Ratios are what count.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from bench_common import device_and_dtype, device_name, random_captions, random_gpt, timed
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.defaults import defaults
from ar_edit_pack.core.llamagen.atm import ATMSettings, atm_edit, build_source_cache, naive_edit
from ar_edit_pack.core.llamagen.generate import DRAFT_CHUNK, DecodeStats, generate
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings
from ar_edit_pack.core.sweeps import expand, run_sweep


def quarter_region(batch: int, g: int, device) -> torch.Tensor:
    region = torch.zeros(batch, g, g, dtype=torch.bool, device=device)
    region[:, g // 4: 3 * g // 4, g // 4: 3 * g // 4] = True
    return region


def side_by_side(run, device, repeats) -> dict:
    """run(max_chunk, stats) -> tokens; sequential and draft, passes and best-of-`repeats` time."""
    out = {}
    for name, chunk in (("sequential", 1), ("draft", DRAFT_CHUNK)):
        stats = DecodeStats()
        tokens = run(chunk, stats)
        out[name] = {"passes": stats.passes, "tokens": tokens,
                     "seconds": timed(lambda: run(chunk, DecodeStats()), device, repeats)}
    return {"passes_sequential": out["sequential"]["passes"], "passes_draft": out["draft"]["passes"],
            "seconds_sequential": round(out["sequential"]["seconds"], 3), "seconds_draft": round(out["draft"]["seconds"], 3),
            "time_ratio": round(out["draft"]["seconds"] / out["sequential"]["seconds"], 3),
            "identical": bool(torch.equal(out["sequential"]["tokens"], out["draft"]["tokens"]))}


def random_weights_part(args, device, dtype) -> dict:
    model = random_gpt(args.preset, args.image_size, device, dtype)
    cfg, g = model.cfg, model.cfg.grid_size
    src, edit = random_captions(model, device)
    sampling = SamplingSettings(cfg_scale=7.5, top_k=1000)
    codebook = torch.nn.functional.normalize(torch.randn(cfg.vocab_size, 8, device=device), dim=-1)
    tokens = generate(model, src, sampling, [0])
    cache = build_source_cache(TokenBatch(tokens.view(1, g, g), "generated", src, torch.tensor([0]), sampling), codebook)
    region = quarter_region(1, g, device)
    rows = {}
    rows["atm masked, batch 1"] = side_by_side(
        lambda c, s: atm_edit(model, cache, edit, sampling, ATMSettings(), [1], region, max_chunk=c, stats=s).tokens,
        device, args.repeats)
    rows["naive masked, batch 1"] = side_by_side(
        lambda c, s: naive_edit(model, cache, edit, sampling, [1], region, max_chunk=c, stats=s).tokens,
        device, args.repeats)
    settings, _ = expand([150], [0.6], [0.25 * (k + 1) for k in range(args.sweep)], [1], [7.5], "greedy")
    rows[f"atm masked, sweep of {args.sweep}"] = side_by_side(
        lambda c, s: run_sweep(model, cache, edit, sampling, settings, "atm", region, max_chunk=c, stats=s).tokens,
        device, args.repeats)
    for r in rows.values():
        r["draft_passes_over_tokens"] = round(r["passes_draft"] / (g * g), 3)
    return {"model": f"{args.preset} random weights, {args.image_size} px ({g}x{g} = {g * g} tokens), "
                     f"{str(dtype).split('.')[-1]}", "mask": "centred square, a quarter of the area", "rows": rows}


def embedded_part(args) -> dict:
    from ar_edit_pack.core.shapes import bench, embedded, world

    gpt, text, vq = embedded.load_embedded()
    seq, draft = DecodeStats(), DecodeStats()
    identical, t_seq, t_draft = 0, 0.0, 0.0
    cases = world.edit_cases(args.cases, seed=0)
    for i, case in enumerate(cases):
        src = bench.to_model(world.render(case.source)[None])
        cache = build_source_cache(TokenBatch(vq.encode(src), "encoded"), vq.quantize.codebook())
        emb = text.encode([case.prompt])
        cond = Condition(emb.features, emb.mask, emb.prompts)
        t0 = time.perf_counter()
        a = atm_edit(gpt, cache, cond, defaults(gpt, "sampling"), defaults(gpt, "atm"), [i], max_chunk=1,
                     stats=seq)
        t1 = time.perf_counter()
        b = atm_edit(gpt, cache, cond, defaults(gpt, "sampling"), defaults(gpt, "atm"), [i], stats=draft)
        t_seq, t_draft = t_seq + t1 - t0, t_draft + time.perf_counter() - t1
        identical += bool(torch.equal(a.tokens, b.tokens))
    n = len(cases)
    return {"cases": n, "tokens_per_edit": gpt.cfg.num_image_tokens,
            "passes_per_edit_sequential": round(seq.passes / n, 2), "passes_per_edit_draft": round(draft.passes / n, 2),
            "identical_share": identical / n, "time_ratio": round(t_draft / t_seq, 3)}


def embedded_lumina_part(args) -> dict:
    """The same on the embedded Lumina-mGPT-architecture set (36 codes and 6 row ends a picture), its own
    settings, one edit at a time: whole-picture ATM, and ATM inside the changed cells' mask."""
    import os

    from ar_edit_pack.core.lumina.vqgan import load_vqgan
    from ar_edit_pack.core.pipelines import lumina
    from ar_edit_pack.core.shapes import bench, embedded, world

    path = lambda kind: os.path.join(embedded.EMBEDDED_DIR, embedded.LUMINA_CHOICES[kind][1])
    model, vqgan = lumina.load_lumina(path("autoregressive"), torch.float32), load_vqgan(path("vq"))
    cases = world.edit_cases(args.cases, seed=0)
    out = {}
    for name, masked in (("atm", False), ("atm masked to the changed cells", True)):
        seq, draft = DecodeStats(), DecodeStats()
        identical, t_seq, t_draft = 0, 0.0, 0.0
        for i, case in enumerate(cases):
            cache = lumina.source_cache(model, lumina.encode(vqgan, bench.to_image(world.render(case.source)[None]),
                                                             world.SIZE))
            mask = torch.from_numpy(case.changed_mask()).float()[None] if masked else None
            t0 = time.perf_counter()
            a = lumina.edit(model, cache, [case.prompt], [i], "atm", mask=mask, max_chunk=1, stats=seq)
            t1 = time.perf_counter()
            b = lumina.edit(model, cache, [case.prompt], [i], "atm", mask=mask, stats=draft)
            t_seq, t_draft = t_seq + t1 - t0, t_draft + time.perf_counter() - t1
            identical += bool(torch.equal(a.tokens, b.tokens))
        n = len(cases)
        out[name] = {"passes_per_edit_sequential": round(seq.passes / n, 2),
                     "passes_per_edit_draft": round(draft.passes / n, 2), "identical_share": identical / n,
                     "time_ratio": round(t_draft / t_seq, 3)}
    return {"cases": len(cases), "codes_per_edit": 36, **out}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="GPT-B")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when available")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--sweep", type=int, default=8)
    p.add_argument("--cases", type=int, default=200, help="ShapesEdit cases for the embedded part (0: skip)")
    args = p.parse_args()
    device, dtype = device_and_dtype(args.precision)
    if args.device != "auto":
        device = torch.device(args.device)
        dtype = dtype if device.type == "cuda" or args.precision != "auto" else torch.float32
    result = {"device": device_name(device), "max_chunk": DRAFT_CHUNK, "random_weights": random_weights_part(args, device, dtype)}
    if args.cases:
        result["embedded_shapesedit"] = embedded_part(args)
        result["embedded_lumina_shapesedit"] = embedded_lumina_part(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
