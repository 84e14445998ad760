"""Live previews' cost: LlamaGen generation with and without the picture-so-far drawn into the progress bar, side
by side in one run (tokens compared). The previewer spends at most nodes.comfy_bridge.PREVIEW_SHARE of the loop's
time drawing, whatever the decoder costs; this measures what it does spend.

1. A real shape with random weights: a GPT (default GPT-B, 256 px) and the official VQ-16 decoder (16,384 codes).
2. The embedded models (48 px, 9 tokens), where the decoder is tiny.

Usage: python bench/bench_previews.py [--preset GPT-B] [--image-size 256] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from bench_common import device_and_dtype, device_name, random_captions, random_gpt
from ar_edit_pack.core.llamagen.vq import LlamaGenVQ, VQConfig
from ar_edit_pack.core.pipelines import llamagen
from ar_edit_pack.core.sampling import SamplingSettings
from ar_edit_pack.nodes import comfy_bridge as bridge


def side_by_side(gpt, vq, cond, sampling, repeats: int) -> dict:
    g = gpt.cfg.grid_size
    render = bridge.grid_preview(lambda ids: llamagen.decode(vq, ids).permute(0, 2, 3, 1), (g, g), vq.cfg.downsample)
    best = {"off": float("inf"), "on": float("inf")}
    drawn, drawing, tokens = 0, 0.0, {}
    for _ in range(repeats):
        for name in ("off", "on"):
            sent = []
            progress = bridge.progress(g * g, preview=render if name == "on" else None,
                                       send=lambda d, t, image: sent.append(d))
            t0 = time.perf_counter()
            tokens[name] = llamagen.generate(gpt, cond, sampling, [0], progress=progress).tokens
            best[name] = min(best[name], time.perf_counter() - t0)
            if name == "on":
                drawn, drawing = len(sent), progress.preview.spent
    return {"tokens": g * g, "seconds_without": round(best["off"], 3), "seconds_with": round(best["on"], 3),
            "time_ratio": round(best["on"] / best["off"], 3), "previews_drawn": drawn,
            "seconds_drawing": round(drawing, 3), "drawing_share": round(drawing / best["on"], 4),
            "identical": bool(torch.equal(tokens["off"], tokens["on"]))}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="GPT-B")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    device, dtype = device_and_dtype(args.precision)
    gpt = random_gpt(args.preset, args.image_size, device, dtype)
    torch.manual_seed(1)
    vq = LlamaGenVQ(VQConfig()).to(device).eval().requires_grad_(False)  # the official VQ-16's shape
    cond = random_captions(gpt, device)[0]
    result = {"device": device_name(device), "share_allowed": bridge.PREVIEW_SHARE,
              "random_weights": {"model": f"{args.preset}, {args.image_size} px, official VQ-16 decoder",
                                 **side_by_side(gpt, vq, cond, SamplingSettings(cfg_scale=7.5, top_k=1000),
                                                args.repeats)}}
    from ar_edit_pack.core.shapes import embedded

    egpt, text, evq = embedded.load_embedded(device=device)
    econd = llamagen.text_condition(text, ["a red circle at the top left on a white background"], device)
    result["embedded"] = side_by_side(egpt, evq, econd, embedded.embedded_defaults("llamagen", "sampling"), 5)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
