"""Peak host memory of loading official-size checkpoints, as a multiple of the file's size.

Writes random-weight files in the official layouts (LlamaGen-XL t2i: a `.pt` holding {"model": state} in fp32, as
released; Infinity-2B and VAREdit-2B: bf16 `.pth` state dicts; Infinity-2B also as the pack's `.safetensors`), then
loads each through the pack's loader in a fresh process and reads its peak resident memory (ru_maxrss) minus the
process's resident memory before loading (torch imported). Target (issue 26): at most ~1.2x the file.

    python bench/load_memory.py --out /tmp/load_bench [--only llamagen-xl] [--scale 0.25]

`--scale` shrinks the width for a quick run. Files are kept in --out so a rerun only measures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))


def write(kind: str, path: str, scale: float) -> None:
    from dataclasses import replace

    from ar_edit_pack.core.infinity.model import INFINITY_PRESETS, InfinityTransformer
    from ar_edit_pack.core.llamagen.gpt import GPT_PRESETS, GPTConfig, LlamaGenGPT

    torch.manual_seed(0)
    if kind == "llamagen-xl":
        p = dict(GPT_PRESETS["GPT-XL"])
        p["dim"] = int(p["dim"] * scale) // p["n_head"] * p["n_head"]
        with torch.device("meta"):
            model = LlamaGenGPT(GPTConfig(**p, model_type="t2i", caption_dim=2048, cls_token_num=120, image_size=512))
        state = {k: torch.randn(v.shape) * 0.02 for k, v in model.state_dict().items()}
        torch.save({"model": state}, path)
        return
    cfg = INFINITY_PRESETS["infinity-2b"]
    cfg = replace(cfg, embed_dim=int(cfg.embed_dim * scale) // 128 * 128)
    with torch.device("meta"):
        model = InfinityTransformer(cfg)
    state = {k: (torch.randn(v.shape) * 0.02).to(torch.bfloat16) for k, v in model.state_dict().items()}
    if kind == "infinity-2b-safetensors":
        from ar_edit_pack.core.files.checkpoints import save_safetensors
        save_safetensors(state, path)
    else:
        torch.save(state, path)


def measure(kind: str, path: str) -> dict:
    """In a fresh process: peak RSS while loading, minus RSS before."""
    code = f"""
import resource, json, torch, sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(HERE))!r})
from ar_edit_pack.core.files import loaders
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096
before = rss()
m = loaders.load_model({path!r}, precision={'"bf16"' if 'infinity' in kind else '"auto"'}, device="cpu")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(before=before, peak=peak, params=sum(p.numel() for p in m.parameters()))))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/ar_edit_load_bench")
    ap.add_argument("--only", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    kinds = {"llamagen-xl": "t2i_XL_stage2_512.pt", "infinity-2b": "infinity_2b_reg.pth",
             "infinity-2b-safetensors": "infinity_2b_reg.safetensors"}
    rows = []
    for kind, name in kinds.items():
        if args.only and kind != args.only:
            continue
        path = os.path.join(args.out, f"{args.scale:g}_{name}")
        if not os.path.exists(path):
            write(kind, path, args.scale)
        size = os.path.getsize(path)
        r = measure(kind, path)
        extra = r["peak"] - r["before"]
        rows.append(dict(file=name, scale=args.scale, file_gb=round(size / 1e9, 3), load_peak_gb=round(extra / 1e9, 3),
                         ratio=round(extra / size, 3), params=r["params"]))
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
