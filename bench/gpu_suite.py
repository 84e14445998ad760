"""One command for one GPU: speed and memory of every method at official sizes, random weights, eager vs compiled.

    python bench/gpu_suite.py --out bench/gpu_suite.json            # official sizes (needs a GPU, ~8 min)
    python bench/gpu_suite.py --preset tiny --device cpu --out X    # a dry run of every case on tiny models
    python bench/gpu_suite.py --official-llamagen /path/to/LlamaGen   # + the official generate() side by side

Cases: LlamaGen-XL 512 px text-to-image; ATM edits without / with draft decoding, over the whole image and inside a
quarter-area mask; EditAR at 512 px; Infinity-2B 1024 px generation and an AREdit edit; VAREdit-2B at 512 px. Each case
runs eager and compiled (tokens compared: they must be identical); per case: seconds per image, tokens (or scales)
per second, peak device memory, and the ratio of the time to the memory-bandwidth floor (every step reads all the
weights once: floor = steps x weight bytes / bandwidth). Weights are random, so the pictures are noise; the work per
step is the real one. VAREdit-2B at 512 px runs on the same transformer as Infinity-2B (VAREdit-2B is
Infinity-2B's layout) with the d32 VAE.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ar_edit_pack.core.condition import Condition  # noqa: E402
from ar_edit_pack.core.files.loaders import load_gpt  # noqa: E402
from ar_edit_pack.core.infinity.aredit import AREditSettings  # noqa: E402
from ar_edit_pack.core.infinity.generate import InfinitySampling  # noqa: E402
from ar_edit_pack.core.infinity.model import INFINITY_PRESETS, InfinityTransformer  # noqa: E402
from ar_edit_pack.core.infinity.scales import scale_schedule  # noqa: E402
from ar_edit_pack.core.infinity.vae import VAE_PRESETS, BSQVAE  # noqa: E402
from ar_edit_pack.core.infinity.varedit import varedit_edit  # noqa: E402
from ar_edit_pack.core.llamagen.atm import ATMSettings, build_source_cache  # noqa: E402
from ar_edit_pack.core.llamagen.editar import EditARGPT, editar_generate  # noqa: E402
from ar_edit_pack.core.llamagen.gpt import GPT_PRESETS, GPTConfig, LlamaGenGPT  # noqa: E402
from ar_edit_pack.core.memory import module_bytes  # noqa: E402
from ar_edit_pack.core.pipelines import infinity, llamagen  # noqa: E402
from ar_edit_pack.core.records import TokenBatch  # noqa: E402
from ar_edit_pack.core.sampling import SamplingSettings  # noqa: E402

# HBM bandwidth (GB/s) by device name, for the floor; --bandwidth overrides
BANDWIDTH = {"H200": 4800, "H100": 3350, "A100": 2039, "L40S": 864, "4090": 1008, "3090": 936}


def random_init(model: torch.nn.Module, device, dtype) -> torch.nn.Module:
    model = model.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point():
                if name.endswith("norm.weight") or name.endswith("_norm.weight"):
                    t.fill_(1.0)
                else:
                    t.normal_(0, 0.02, generator=g)
    return model.to(dtype).eval().requires_grad_(False)


def configs(preset: str):
    if preset == "tiny":
        gpt = GPTConfig(dim=64, n_layer=2, n_head=4, multiple_of=32, caption_dim=32, cls_token_num=16, vocab_size=64,
                        image_size=128, model_type="t2i")
        inf = replace(INFINITY_PRESETS["infinity-2b"], depth=2, embed_dim=64, num_heads=2, text_channels=32,
                      text_maxlen=64, block_chunks=2, pool_heads=2)
        return gpt, replace(gpt, image_size=64), inf, 256
    xl = GPTConfig(**GPT_PRESETS["GPT-XL"], model_type="t2i", caption_dim=2048, cls_token_num=120, image_size=512,
                   vocab_size=16384)
    return xl, xl, INFINITY_PRESETS["infinity-2b"], 1024


def timed(fn, device, repeats: int = 1):
    fn()  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / repeats
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return out, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=["official", "tiny"], default="official")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", choices=["both", "off", "on"], default="both")
    ap.add_argument("--bandwidth", type=float, default=None, help="GB/s for the floor (default: by device name)")
    ap.add_argument("--official-llamagen", default=None, help="a FoundationVision/LlamaGen checkout: its own generate() "
                    "(eager, and compiled as its --compile) beside ours on the same weights, tokens compared")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    bw = args.bandwidth or next((v for k, v in BANDWIDTH.items() if k in name), None)
    gpt_cfg, editar_cfg, inf_cfg, inf_res = configs(args.preset)
    modes = {"both": ["off", "on"], "off": ["off"], "on": ["on"]}[args.compile]
    rows, t_start = [], time.perf_counter()

    def record(case, mode, seconds, peak, steps, weights, unit="tokens", same=None):
        floor = steps * weights / (bw * 1e9) if bw else None
        row = dict(case=case, compile=mode, seconds=round(seconds, 4), per_second=round(steps / seconds, 1), unit=unit,
                   peak_gb=None if peak is None else round(peak / 1e9, 2),
                   floor_ratio=None if floor is None else round(seconds / floor, 2), tokens_equal_eager=same)
        rows.append(row)
        print(json.dumps(row), flush=True)

    # --- LlamaGen t2i and ATM ----------------------------------------------------------------------------------
    with torch.device("meta"):
        gpt = LlamaGenGPT(gpt_cfg)
    gpt = random_init(gpt, device, dtype)
    gpt._rope_by_device.clear()
    wbytes, N = module_bytes(gpt), gpt_cfg.num_image_tokens
    g = torch.Generator().manual_seed(1)
    cond = Condition(torch.randn(1, gpt_cfg.cls_token_num, gpt_cfg.caption_dim, generator=g),
                     torch.ones(1, gpt_cfg.cls_token_num, dtype=torch.long)).to(device)
    sampling = SamplingSettings(cfg_scale=7.5, temperature=1.0, top_k=1000, top_p=1.0)
    eager_tokens = {}
    for mode in modes:
        out, s, peak = timed(lambda: llamagen.generate(gpt, cond, sampling, [0], compile=mode), device)
        eager_tokens.setdefault("t2i", out.tokens)
        record("LlamaGen t2i", mode, s, peak, N, wbytes, same=bool(torch.equal(out.tokens, eager_tokens["t2i"])))
    src = eager_tokens["t2i"]
    codebook = torch.nn.functional.normalize(torch.randn(gpt_cfg.vocab_size, 8, generator=g), dim=-1).to(device)
    cache = build_source_cache(TokenBatch(src, "generated"), codebook)
    edit = Condition(torch.randn(1, gpt_cfg.cls_token_num, gpt_cfg.caption_dim, generator=g),
                     torch.ones(1, gpt_cfg.cls_token_num, dtype=torch.long)).to(device)
    gh = gpt_cfg.grid_size
    quarter = torch.zeros(1, gh, gh, dtype=torch.bool, device=device)
    quarter[:, gh // 4: 3 * gh // 4, gh // 4: 3 * gh // 4] = True
    atm = ATMSettings(K=150, alpha=0.6, tau=1.0)
    for label, region in (("whole", None), ("quarter mask", quarter)):
        for chunk in (1, 32):
            for mode in modes:
                out, s, peak = timed(lambda: llamagen.edit(gpt, cache, edit, sampling, atm, [0], region=region,
                                                           max_chunk=chunk, compile=mode), device)
                key = f"atm {label} {chunk}"
                eager_tokens.setdefault(key, out.tokens.tokens)
                record(f"ATM edit, {label}, {'drafts' if chunk > 1 else 'no drafts'}", mode, s, peak, N, wbytes,
                       same=bool(torch.equal(out.tokens.tokens, eager_tokens[key])))
    gpt = cache = None  # free before the next model

    # --- the official LlamaGen generate() beside ours, same weights, greedy (given a checkout) ---------------------
    if args.official_llamagen:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import parity_llamagen as P

        code = P.official_code(args.official_llamagen)
        official = P.official_model(code, gpt_cfg.grid_size, gpt_cfg.dim, gpt_cfg.n_layer, gpt_cfg.n_head,
                                    gpt_cfg.vocab_size, gpt_cfg.caption_dim, seed=3).to(device, dtype)
        ours = load_gpt(f"t2i_official_{gpt_cfg.image_size}.pt", image_size=gpt_cfg.image_size, n_head=gpt_cfg.n_head,
                        precision=dtype, device=device, _read=({k: v for k, v in official.state_dict().items()}, {}))
        emb, mask = P.captions(1, gpt_cfg.caption_dim, seed=4)
        emb, mask = emb.to(device, dtype), mask.to(device)
        for mode in modes:
            model = official if mode == "off" else P.compile_official(official)
            t_off, a = P.timed(lambda: P.run_official(code, model, emb, mask, gpt_cfg.grid_size, 7.5), repeats=1)
            t_ours, b = P.timed(lambda: P.run_ours(ours, emb, mask, 7.5, mode), repeats=1)
            record("official LlamaGen generate()", mode, t_off, None, N, wbytes)
            record("ours, the same weights and prompt (greedy)", mode, t_ours, None, N, wbytes,
                   same=bool(torch.equal(a.cpu(), b.cpu())))
        official = ours = None

    # --- EditAR --------------------------------------------------------------------------------------------------
    with torch.device("meta"):
        ed = EditARGPT(editar_cfg)
    ed = random_init(ed, device, dtype)
    ed._rope_by_device.clear()
    n = editar_cfg.num_image_tokens
    inputs = torch.randint(0, editar_cfg.vocab_size, (1, n), generator=g).to(device)
    text = Condition(torch.randn(1, editar_cfg.cls_token_num, editar_cfg.caption_dim, generator=g).to(device), None)
    for mode in modes:
        out, s, peak = timed(lambda: editar_generate(ed, inputs, text, sampling, [0], 3.0, 1.0, compile=mode), device)
        eager_tokens.setdefault("editar", out)
        record("EditAR", mode, s, peak, n, module_bytes(ed), same=bool(torch.equal(out, eager_tokens["editar"])))
    ed = None

    # --- Infinity and AREdit: each scale's pass eager and compiled ---------------------------------------------
    with torch.device("meta"):
        net = InfinityTransformer(inf_cfg)
    net = random_init(net, device, torch.float32).place(device, dtype)
    net.resolutions = tuple(sorted(set(net.resolutions) | {inf_res}))
    sched = scale_schedule(inf_res)
    tcond = Condition(torch.randn(1, 8, inf_cfg.text_channels, generator=g), torch.ones(1, 8, dtype=torch.long),
                      ["x"], "infinity").to(device)
    isamp = InfinitySampling(cfg=3.0, tau=0.5, top_p=0.97)
    source = None
    for mode in modes:
        out, s, peak = timed(lambda: infinity.generate(net, tcond, sched, isamp, [0], compile=mode), device)
        eager_tokens.setdefault("infinity", out.bits)
        record(f"Infinity-2B {inf_res} px", mode, s, peak, len(sched), module_bytes(net), unit="scales",
               same=all(torch.equal(a, b) for a, b in zip(out.bits, eager_tokens["infinity"])))
        source = source or infinity.aredit_source(net, out)
        edited, s, peak = timed(lambda: infinity.aredit(net, source, tcond, AREditSettings(), [1], compile=mode),
                                device)
        eager_tokens.setdefault("aredit", edited.tokens.bits)
        record(f"AREdit {inf_res} px", mode, s, peak, len(sched), module_bytes(net), unit="scales",
               same=all(torch.equal(a, b) for a, b in zip(edited.tokens.bits, eager_tokens["aredit"])))
    # --- VAREdit-2B at 512 px (the d32 VAE; its source's scales sit in the cache first) --------------------------
    net.flavour = "varedit"
    vae_cfg = VAE_PRESETS["infinity-vae-d32"] if args.preset == "official" else replace(
        VAE_PRESETS["infinity-vae-d32"], ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1)
    with torch.device("meta"):
        vae = BSQVAE(vae_cfg)
    vae = random_init(vae, device, torch.float32)
    vsize = 512 if args.preset == "official" else 256
    vsched = scale_schedule(vsize)
    image = torch.rand(1, 3, vsize, vsize, generator=g).to(device) * 2 - 1
    for mode in modes:
        bits, s, peak = timed(lambda: varedit_edit(net, vae, tcond, image, vsched, isamp, torch.tensor([2]),
                                                   compile=mode), device)
        eager_tokens.setdefault("varedit", bits.bits)
        record(f"VAREdit-2B {vsize} px", mode, s, peak, len(vsched), module_bytes(net), unit="scales",
               same=all(torch.equal(a, b) for a, b in zip(bits.bits, eager_tokens["varedit"])))
    summary = dict(device=name, preset=args.preset, dtype=str(dtype), bandwidth_gbs=bw,
                   wall_seconds=round(time.perf_counter() - t_start, 1), rows=rows)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"done in {summary['wall_seconds']} s")


if __name__ == "__main__":
    main()
