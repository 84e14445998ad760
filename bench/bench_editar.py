"""EditAR speed: one instruction edit vs plain LlamaGen generation on the same backbone shape.

Random weights (speed does not depend on them). Usage: python bench/bench_editar.py [--preset GPT-B]
"""
from __future__ import annotations

import argparse
import json

import torch

from bench_common import timed
from ar_edit_pack.core.llamagen.editar import EditARGPT, editar_generate
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.llamagen.generate import generate
from ar_edit_pack.core.llamagen.gpt import GPTConfig
from ar_edit_pack.core.sampling import SamplingSettings


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="GPT-B")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device("meta"):
        model = EditARGPT(GPTConfig.preset(args.preset, image_size=args.image_size))
    model = model.to_empty(device=device)
    for t in list(model.parameters()) + list(model.buffers()):
        torch.nn.init.normal_(t, std=0.02)
    model = model.to(dtype).eval().requires_grad_(False)
    cfg = model.cfg
    B = 1
    text = Condition(torch.randn(B, cfg.cls_token_num, cfg.caption_dim, device=device))
    cond = torch.randint(0, cfg.vocab_size, (B, cfg.num_image_tokens), device=device)
    sampling = SamplingSettings(cfg_scale=3.0, top_k=1000)
    t_plain = timed(lambda: generate(model, text, sampling, [0]), device, args.repeats)
    t_edit = timed(lambda: editar_generate(model, cond, text, sampling, [0], 3.0, 1.0), device, args.repeats)
    t_edit_img = timed(lambda: editar_generate(model, cond, text, sampling, [0], 3.0, 1.5), device, args.repeats)
    print(json.dumps({
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "model": f"{args.preset} random weights, {args.image_size} px, {str(dtype).split('.')[-1]}",
        "plain_generation_s": round(t_plain, 3), "editar_text_cfg_s": round(t_edit, 3),
        "editar_text_and_image_cfg_s": round(t_edit_img, 3),
        "editar_over_generation": round(t_edit / t_plain, 3),
        "editar_image_cfg_over_generation": round(t_edit_img / t_plain, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
