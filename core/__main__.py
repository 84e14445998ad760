"""Command line: `python -m core demo` and `python -m core convert`. Run from the pack's folder."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _demo(args) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from . import Condition, GPTConfig, LlamaGenGPT, LlamaGenVQ, SamplingSettings, VQConfig, decode_tokens_to_images, generate
    from .atm import ATMSettings, atm_edit, build_source_cache
    from .records import TokenBatch

    # No trained default model ships yet: the demo runs the real pipeline (generate, anchor-token-matching
    # edit, decode) on a tiny RANDOM model, so the pictures are noise. It proves the install works end to
    # end; it is not an image generator yet.
    torch.manual_seed(0)
    gpt = LlamaGenGPT(GPTConfig.preset("GPT-tiny", vocab_size=64, image_size=64)).eval().requires_grad_(False)
    vq = LlamaGenVQ(VQConfig.preset("VQ-tiny")).eval().requires_grad_(False)
    T, C = gpt.cfg.cls_token_num, gpt.cfg.caption_dim
    mask = torch.ones(2, T, dtype=torch.bool)
    feats = torch.randn(2, T, C)  # stand-ins for the source and edit prompts' features
    src_cond = Condition(feats[:1], mask[:1], [args.prompt])
    edit_cond = Condition(feats[1:], mask[1:], [args.edit])
    settings = SamplingSettings(cfg_scale=args.cfg, temperature=1.0, top_k=0, top_p=1.0)
    atm = ATMSettings(K=args.K, alpha=args.alpha, tau=args.tau)
    t0 = time.time()
    g = gpt.cfg.grid_size
    tokens = generate(gpt, src_cond, settings, [args.seed])
    source = TokenBatch(tokens.view(1, g, g), "generated", src_cond, torch.tensor([args.seed]), settings)
    with torch.inference_mode():
        cache = build_source_cache(source, vq.quantize.codebook())
    result = atm_edit(gpt, cache, edit_cond, settings, atm, [args.seed])
    images = decode_tokens_to_images(vq, torch.cat([tokens, result.tokens]).view(2, g, g))
    seconds = time.time() - t0
    changed = result.changed.view(g, g).float()
    mask_img = changed.repeat_interleave(vq.downsample, 0).repeat_interleave(vq.downsample, 1)
    panels = [images[0], images[1], mask_img.expand(3, -1, -1)]
    arr = (torch.cat([p.permute(1, 2, 0) for p in panels], 1).numpy() * 255).round().astype(np.uint8)
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "demo.png")
    Image.fromarray(arr).resize((arr.shape[1] * 4, arr.shape[0] * 4), Image.NEAREST).save(png)
    params = {"model": "GPT-tiny (random weights)", "tokenizer": "VQ-tiny (random weights)",
              "source_prompt": args.prompt, "edit_prompt": args.edit, "seed": args.seed,
              "sampling": settings.to_dict(), "atm": atm.to_dict(),
              "locked_fraction": round(float(result.locked_fraction[0]), 4), "seconds": round(seconds, 3),
              "panels": ["source", "ATM edit", "changed tokens"]}
    with open(os.path.join(args.out, "demo.json"), "w") as f:
        json.dump(params, f, indent=1)
    print(f"wrote {png} (source | edit | changed tokens) in {seconds:.2f} s. "
          f"NOTE: random tiny model, no trained default model ships yet.")
    return 0


def _convert(args) -> int:
    from .loaders import convert_to_safetensors

    dst = convert_to_safetensors(args.src, args.dst, precision=args.precision, image_size=args.image_size)
    print(f"wrote {dst}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run the generation pipeline end to end and write a PNG")
    d.add_argument("--prompt", default="a red circle on a white background")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--edit", default="a blue circle on a white background")
    d.add_argument("--cfg", type=float, default=4.0)
    d.add_argument("--K", type=int, default=150)
    d.add_argument("--alpha", type=float, default=0.6)
    d.add_argument("--tau", type=float, default=1.0)
    d.add_argument("--out", default="demo_output")
    c = sub.add_parser("convert", help="convert an official .pt checkpoint to .safetensors (strictly checked)")
    c.add_argument("src")
    c.add_argument("dst", nargs="?")
    c.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None)
    c.add_argument("--image-size", type=int, default=None)
    args = p.parse_args(argv)
    try:
        return {"demo": _demo, "convert": _convert}[args.cmd](args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
