"""Train the embedded default models on ShapesWorld: a VQ tokenizer, then a word-level text encoder and
a LlamaGen-architecture T2I transformer trained together. CPU-friendly (2 cores: well under an hour).

    python tools/train_embedded.py            # writes embedded/*.safetensors and embedded/training.json

Everything is seeded; the same command on the same machine type gives the same weights.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ar_edit_pack.core.shapes import world  # noqa: E402
from ar_edit_pack.core.shapes.bench import to_model, vq_psnr  # noqa: E402
from ar_edit_pack.core.llamagen.gpt import GPTConfig, LlamaGenGPT  # noqa: E402
from ar_edit_pack.core.llamagen.vq import LlamaGenVQ, VQConfig  # noqa: E402
from ar_edit_pack.core.files.loaders import save_model  # noqa: E402
from tune_embedded import tuned_metadata  # noqa: E402
from ar_edit_pack.core.text.word_encoder import WordEncoderConfig, WordEncoderNet, WordTextEncoder  # noqa: E402

VQ_CONFIG = VQConfig(codebook_size=256, codebook_embed_dim=8, ch=16, ch_mult=(1, 1, 2, 4, 4), num_res_blocks=1,
                     z_channels=64, norm_groups=8)
TEXT_CONFIG = WordEncoderConfig(vocab=tuple(world.vocabulary()), dim=64, n_layer=2, n_head=4, max_length=32)
GPT_CONFIG = GPTConfig(dim=128, n_layer=4, n_head=4, multiple_of=64, vocab_size=VQ_CONFIG.codebook_size,
                       caption_dim=TEXT_CONFIG.dim, cls_token_num=TEXT_CONFIG.max_length, image_size=world.SIZE,
                       downsample=VQ_CONFIG.downsample)


FOREGROUND_WEIGHT = 5.0  # extra reconstruction weight on object pixels


def scenes_batch(rng: random.Random, n: int):
    scenes = [world.random_scene(rng) for _ in range(n)]
    return scenes, to_model(np.stack([world.render(s) for s in scenes]))


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, scenes) -> torch.Tensor:
    """L1 + L2 (L1 keeps flat colours' edges sharp), object pixels weighted up: they are ~5% of the pixels,
    and weighted the decoder learns them early instead of last."""
    bg = to_model(np.stack([world.background_image(s.background) for s in scenes])).to(x.device)
    weight = 1 + FOREGROUND_WEIGHT * ((x - bg).abs().sum(1, keepdim=True) > 0.01).float()
    err = rec - x
    return (weight * (err ** 2 + err.abs())).mean() / weight.mean()


def cosine_lr(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params) -> None:
    """One optimiser step: gradients of `loss`, clipped to norm 1."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


def save_progress(path: str, step: int, modules: dict, opt, gen: torch.Generator) -> None:
    """A resumable checkpoint of a training run (the named modules, the optimiser and both random streams), written
    beside and renamed over the last, so a killed run loses at most the steps since and never its checkpoint."""
    tmp = path + ".tmp"
    torch.save({"step": step, **{k: m.state_dict() for k, m in modules.items()}, "opt": opt.state_dict(),
                "gen": gen.get_state(), "torch": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


def resume(path: str | None, modules: dict, opt, gen: torch.Generator, log, what: str) -> int:
    """The step a run continues from: 0, or the checkpoint's, with everything it saved restored."""
    if not path or not os.path.exists(path):
        return 0
    saved = torch.load(path, weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(saved[k])
    opt.load_state_dict(saved["opt"])
    gen.set_state(saved["gen"])
    torch.set_rng_state(saved["torch"])
    log(f"{what}: resumed at step {saved['step']} from {path}")
    return saved["step"]


def _labels(scenes, device) -> torch.Tensor:
    g = world.SIZE // world.CELL
    return torch.tensor([world.cell_labels(s) for s in scenes], device=device).view(-1, g, g)


def train_vq(steps: int, batch: int, seed: int, log, config: VQConfig = VQ_CONFIG, device: str = "cpu",
             encoder_steps: int | None = None, encoder_batch: int = 32) -> LlamaGenVQ:
    """Two supervised stages on the world's exact cell classes (every 16 px cell is one token, and there are
    only len(world.cell_classes()) distinct cells):
    1. codebook + decoder: class c's code must decode to that cell's pixels (the hard part: sharp shapes);
    2. encoder: each cell's normalised feature must be nearest to its class's code (cross-entropy over
       cosine similarities), the codebook and decoder frozen.
    An unsupervised VQ-VAE of this size plateaued at 19-25 dB on this world within the CPU budget (it spends
    codes on backgrounds and learns object shapes last); with the classes given, the codes are exact and all
    steps go to the decoder. The result is a plain LlamaGen VQ: encode = nearest code, decode = decoder."""
    n_classes = len(world.cell_classes())
    if config.codebook_size < n_classes:
        raise ValueError(f"the codebook needs at least {n_classes} codes (one per distinct cell), "
                         f"got {config.codebook_size}")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    vq = LlamaGenVQ(config).to(device)
    # -- stage 1: codebook + post_quant_conv + decoder
    params = list(vq.decoder.parameters()) + list(vq.post_quant_conv.parameters()) + list(vq.quantize.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3, 100)
        scenes, x = scenes_batch(rng, batch)
        x = x.to(device)
        rec = vq.decode(_labels(scenes, device))
        loss = reconstruction_loss(rec, x, scenes)
        train_step(opt, loss, params)
        if (step + 1) % 500 == 0 or step + 1 == steps:
            psnr = 10 * math.log10(4.0 / F.mse_loss(rec.detach().clamp(-1, 1), x).item())
            log(f"vq decoder step {step + 1}/{steps} loss {loss.item():.4f} psnr {psnr:.2f} {time.time() - t0:.0f}s")
    # -- stage 2: encoder + quant_conv against the frozen codebook
    encoder_steps = max(1, min(1250, steps // 16)) if encoder_steps is None else encoder_steps
    params = list(vq.encoder.parameters()) + list(vq.quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    codebook = vq.quantize.codebook().detach()
    for step in range(encoder_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, encoder_steps, 2e-3, 50)
        scenes, x = scenes_batch(rng, encoder_batch)
        labels = _labels(scenes, device).flatten()
        z = F.normalize(vq.quant_conv(vq.encoder(x.to(device))), dim=1)  # [B, e, h, w]
        logits = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]) @ codebook.T / 0.05
        loss = F.cross_entropy(logits, labels)
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == encoder_steps:
            acc = (logits.argmax(1) == labels).float().mean().item()
            log(f"vq encoder step {step + 1}/{encoder_steps} loss {loss.item():.4f} cell accuracy {acc:.4f} "
                f"{time.time() - t0:.0f}s")
    vq = vq.cpu().eval().requires_grad_(False)
    log(f"vq held-out psnr {vq_psnr(vq):.2f}")
    return vq


@torch.no_grad()
def encode_dataset(vq: LlamaGenVQ, n: int, seed: int):
    rng = random.Random(seed)
    captions, tokens = [], []
    for start in range(0, n, 256):
        scenes, x = scenes_batch(rng, min(256, n - start))
        captions += [s.caption() for s in scenes]
        tokens.append(vq.encode(x).flatten(1))
    return captions, torch.cat(tokens)


def train_gpt(captions, tokens, steps: int, batch: int, seed: int, log, config: GPTConfig = GPT_CONFIG,
              text_config: WordEncoderConfig = TEXT_CONFIG, device: str = "cpu"):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    text_net = WordEncoderNet(text_config)
    text = WordTextEncoder(text_net)
    gpt = LlamaGenGPT(config)
    with torch.no_grad():
        for name, p in gpt.named_parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        gpt.cls_embedding.uncond_embedding.normal_(0, 1)  # fixed random null caption, as LlamaGen
        torch.nn.init.normal_(text_net.pos, std=0.02)
    gpt.to(device)
    text_net.to(device)
    tokens = tokens.to(device)
    params = list(gpt.parameters()) + list(text_net.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    t0 = time.time()
    n = len(captions)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 1e-3, 200)
        idx = torch.randint(0, n, (batch,), generator=gen)
        emb = text.features([captions[i] for i in idx.tolist()])
        feats = emb.features
        drop = (torch.rand(batch, generator=gen) < 0.1).to(device)  # caption dropout for CFG (LlamaGen: null caption)
        feats = torch.where(drop[:, None, None], gpt.cls_embedding.uncond_embedding[None].expand_as(feats), feats)
        tok = tokens[idx.to(device)]
        logits = gpt(gpt.embed_condition(feats), emb.mask, tok)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tok.reshape(-1))
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"gpt step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
    return gpt.cpu().eval().requires_grad_(False), text_net.cpu().eval().requires_grad_(False)


class RunLog:
    """The training record kept beside the weights: command, seed, timings and the tail of the log."""

    def __init__(self, script: str, seed: int):
        self.record = {"command": f"python tools/{script} " + " ".join(sys.argv[1:]), "seed": seed,
                       "threads": torch.get_num_threads(), "torch": torch.__version__}
        self.lines: list[str] = []
        self.start = time.time()

    def __call__(self, msg: str) -> None:
        print(msg, flush=True)
        self.lines.append(msg)

    def write(self, path: str, args: argparse.Namespace) -> None:
        self.record["total_seconds"] = round(time.time() - self.start)
        self.record.update({k: v for k, v in vars(args).items() if k != "out"})
        with open(path, "w") as f:
            json.dump({**self.record, "log_tail": self.lines[-5:]}, f, indent=1)
        self(f"done in {self.record['total_seconds']} s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "embedded"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vq-steps", type=int, default=28000, help="decoder steps (the encoder gets 1/16 of them, at most 1,250)")
    p.add_argument("--vq-batch", type=int, default=8)
    p.add_argument("--data", type=int, default=40000)
    p.add_argument("--gpt-steps", type=int, default=2500)
    p.add_argument("--gpt-batch", type=int, default=64)
    p.add_argument("--stage", choices=["all", "vq", "gpt"], default="all")
    p.add_argument("--device", default="cpu", help="cuda to iterate faster when a GPU is available")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(args.out, exist_ok=True)
    log = RunLog("train_embedded.py", args.seed)
    record = log.record
    vq_path = os.path.join(args.out, "shapes_vq.safetensors")
    if args.stage in ("all", "vq"):
        t = time.time()
        vq = train_vq(args.vq_steps, args.vq_batch, args.seed, log, device=args.device)
        save_model(vq, vq_path, {"ar_edit.trained_on": "ShapesWorld"})
        record["vq_seconds"] = round(time.time() - t)
    if args.stage in ("all", "gpt"):
        from ar_edit_pack.core.files.loaders import load_vq
        vq = load_vq(vq_path)
        t = time.time()
        captions, tokens = encode_dataset(vq, args.data, args.seed + 1)
        record["encode_seconds"] = round(time.time() - t)
        t = time.time()
        gpt, text_net = train_gpt(captions, tokens, args.gpt_steps, args.gpt_batch, args.seed + 2, log,
                                  device=args.device)
        save_model(gpt, os.path.join(args.out, "shapes_gpt.safetensors"),
                   {"ar_edit.trained_on": "ShapesWorld", **tuned_metadata("shapes_gpt.safetensors")})
        save_model(text_net, os.path.join(args.out, "shapes_text.safetensors"), {"ar_edit.trained_on": "ShapesWorld"})
        record["gpt_seconds"] = round(time.time() - t)
    log.write(os.path.join(args.out, f"training_{args.stage}.json"), args)


if __name__ == "__main__":
    main()
