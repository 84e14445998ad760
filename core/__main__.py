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

    # No trained default model ships yet: the demo runs the real pipeline on a tiny RANDOM model, so the
    # picture is noise. It proves the install works end to end; it is not an image generator yet.
    torch.manual_seed(0)
    gpt = LlamaGenGPT(GPTConfig.preset("GPT-tiny", vocab_size=64, image_size=64)).eval()
    vq = LlamaGenVQ(VQConfig.preset("VQ-tiny")).eval()
    feats = torch.randn(1, gpt.cfg.cls_token_num, gpt.cfg.caption_dim)
    cond = Condition(feats, torch.ones(1, gpt.cfg.cls_token_num, dtype=torch.bool), [args.prompt])
    settings = SamplingSettings(cfg_scale=args.cfg, temperature=1.0, top_k=0, top_p=1.0)
    t0 = time.time()
    tokens = generate(gpt, cond, settings, [args.seed])
    image = decode_tokens_to_images(vq, tokens)
    seconds = time.time() - t0
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "demo.png")
    arr = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).resize((256, 256), Image.NEAREST).save(png)
    params = {"model": "GPT-tiny (random weights)", "tokenizer": "VQ-tiny (random weights)", "seed": args.seed,
              "settings": settings.to_dict(), "tokens": tokens.tolist(), "seconds": round(seconds, 3)}
    with open(os.path.join(args.out, "demo.json"), "w") as f:
        json.dump(params, f, indent=1)
    print(f"wrote {png} ({seconds:.2f} s). NOTE: random tiny model, no trained default model ships yet.")
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
    d.add_argument("--cfg", type=float, default=4.0)
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
