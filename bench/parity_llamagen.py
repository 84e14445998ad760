"""LlamaGen text-to-image beside the official code (FoundationVision/LlamaGen), and the two decode loops side by side.

The official side is built as autoregressive/sample/sample_t2i.py builds it: `GPT_models`-style Transformer from
ModelArgs(block_size = grid^2, cls_token_num = 120, model_type = "t2i"), eval mode, its own `generate()` from
autoregressive/models/generate.py run as it is: left-padded caption features times their mask, `emb_masks`, CFG
over [cond; uncond_embedding], sample_logits False (its greedy branch, so the two can be compared token by token).
With --compile, the model is wrapped as the script's --compile does (torch.compile, mode "reduce-overhead",
fullgraph). Tiny random weights (the output layer too: the official initialises it to zero); saved as the official
checkpoint ({"model": state_dict}, .pt) and loaded through our load_gpt. Nothing of the official arithmetic is changed.

    python bench/parity_llamagen.py --official /path/to/LlamaGen --out bench/parity_llamagen.json [--compile]

Reports: greedy CFG tokens of the official generate() vs ours (3 prompts of different lengths, cfg 1 and 4, both
layouts of the same weights), then seconds per batch of the two loops, eager, and with --compile both compiled
(ours: compile="on"), the tokens compared each time.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch

from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.files.loaders import load_gpt
from ar_edit_pack.core.pipelines import llamagen
from ar_edit_pack.core.sampling import SamplingSettings

CAPTION_SLOTS = 120  # sample_t2i.py's --cls-token-num, T5's 120 features


def official_code(checkout: str):
    """The official modules, read from the checkout at run time: (its generate module, ModelArgs, Transformer)."""
    sys.path.insert(0, os.path.abspath(checkout))
    from autoregressive.models import generate as official_generate
    from autoregressive.models.gpt import ModelArgs, Transformer
    return official_generate, ModelArgs, Transformer


def official_model(code, grid: int, dim: int, layers: int, heads: int, vocab: int, caption_dim: int, seed: int,
                   device="cpu"):
    """The official t2i Transformer as sample_t2i.py builds it, random weights (its zeroed output layer too)."""
    _, ModelArgs, Transformer = code
    torch.manual_seed(seed)
    model = Transformer(ModelArgs(n_layer=layers, n_head=heads, dim=dim, block_size=grid * grid,
                                  cls_token_num=CAPTION_SLOTS, model_type="t2i", caption_dim=caption_dim,
                                  vocab_size=vocab))
    with torch.no_grad():  # random weights everywhere (the official zeroes its output layer: every logit a tie)
        for p in list(model.parameters()) + [model.cls_embedding.uncond_embedding]:
            p.copy_(torch.randn_like(p) * (0.02 if p.dim() > 1 else 1.0) + (1.0 if p.dim() == 1 else 0.0))
    return model.to(device).eval()


def captions(batch: int, caption_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded caption features times their mask, and the mask, as sample_t2i.py hands them to generate()."""
    g = torch.Generator().manual_seed(seed)
    valid = [7, 31, 120, 2, 64, 18][:batch]
    emb = torch.randn(batch, CAPTION_SLOTS, caption_dim, generator=g)
    mask = torch.zeros(batch, CAPTION_SLOTS)
    for i, v in enumerate(valid):
        mask[i, CAPTION_SLOTS - v:] = 1
    return emb * mask[:, :, None], mask


def run_official(code, model, emb, mask, grid: int, cfg: float) -> torch.Tensor:
    return code[0].generate(model, emb, grid * grid, mask, cfg_scale=cfg, temperature=1.0, top_k=0, top_p=1.0,
                            sample_logits=False).long()


def compile_official(model):
    """The official model as sample_t2i.py --compile wraps it (torch.compile, reduce-overhead, fullgraph), with the
    attributes its generate() reads passed through."""
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    compiled.model_type, compiled.cls_embedding, compiled.tok_embeddings = (
        model.model_type, model.cls_embedding, model.tok_embeddings)
    compiled.setup_caches = model.setup_caches
    return compiled


def run_ours(gpt, emb, mask, cfg: float, compile: str = "off") -> torch.Tensor:
    sampling = SamplingSettings(cfg_scale=cfg, temperature=0.0, top_k=0, top_p=1.0)
    cond = Condition(emb, mask.bool(), [f"prompt {i}" for i in range(emb.shape[0])])
    return llamagen.generate(gpt, cond, sampling, list(range(emb.shape[0])), compile=compile,
                             memory_budget=None).tokens.flatten(1)


def timed(fn, repeats: int = 3) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up (and compiling)
    best = float("inf")
    for _ in range(repeats):
        sync(out)
        t = time.perf_counter()
        again = fn()
        sync(again)
        best = min(best, time.perf_counter() - t)
        assert torch.equal(again, out), "a loop gave other tokens on a second run"
    return best, out


def sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="a checkout of FoundationVision/LlamaGen")
    ap.add_argument("--compile", action="store_true", help="also both loops compiled (minutes of compiling on a CPU)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    code = official_code(args.official)
    torch.set_num_threads(args.threads)
    report = {"official": "FoundationVision/LlamaGen autoregressive/models/generate.py", "parity": [], "speed": []}
    with tempfile.TemporaryDirectory() as tmp:
        # parity: a small model, 8 x 8 tokens
        grid = 8
        official = official_model(code, grid, 64, 2, 4, 256, 32, seed=0)
        path = os.path.join(tmp, "t2i_tiny_128.pt")
        torch.save({"model": official.state_dict()}, path)
        ours = load_gpt(path, image_size=grid * 16, precision="fp32", n_head=4)
        emb, mask = captions(3, 32, seed=1)
        for cfg in (1.0, 4.0):
            a, b = run_official(code, official, emb, mask, grid, cfg), run_ours(ours, emb, mask, cfg)
            report["parity"].append({"cfg": cfg, "prompts_valid_tokens": mask.sum(1).int().tolist(),
                                     "tokens": a.numel(), "differing": int((a != b).sum())})
            print(f"greedy CFG {cfg:g}: {int((a != b).sum())} of {a.numel()} tokens differ", flush=True)

        # speed: the two loops on one model, vocabulary and grid of the real ones' kind (16 x 16 tokens, 16,384 codes)
        grid, batch = 16, 2
        official = official_model(code, grid, 256, 4, 8, 16384, 64, seed=2)
        path = os.path.join(tmp, "t2i_small_256.pt")
        torch.save({"model": official.state_dict()}, path)
        ours = load_gpt(path, image_size=grid * 16, precision="fp32", n_head=8)
        emb, mask = captions(batch, 64, seed=3)
        modes = [("eager", official, "off")]
        if args.compile:
            modes.append(("compiled", compile_official(official), "on"))
        for name, model, ours_compile in modes:
            t_official, a = timed(lambda: run_official(code, model, emb, mask, grid, 4.0))
            t_ours, b = timed(lambda: run_ours(ours, emb, mask, 4.0, ours_compile))
            row = {"mode": name, "batch": batch, "tokens_per_image": grid * grid, "official_s": round(t_official, 4),
                   "ours_s": round(t_ours, 4), "ours_over_official": round(t_ours / t_official, 3),
                   "tokens_differing": int((a != b).sum())}
            report["speed"].append(row)
            print(json.dumps(row), flush=True)
    report["torch"], report["threads"] = torch.__version__, args.threads
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if all(r["differing"] == 0 for r in report["parity"]) else 1


if __name__ == "__main__":
    sys.exit(main())
