"""Train the embedded Infinity-architecture models on ShapesWorld: a BSQ VAE, then a next-scale bitwise
transformer conditioned on the embedded word encoder (frozen, as Infinity keeps T5 frozen). CPU-friendly.

    python tools/train_embedded_infinity.py     # writes embedded/shapes_infinity*.safetensors + training json

A 48 px scene is a 3x3 grid of 16 px tokens, coded on the schedule 1x1, 2x2, 3x3 (core.shapes.bench.
EMBEDDED_INFINITY_SCHEDULE). Seeded (weights, scene stream, batches).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_embedded import ROOT, RunLog, _labels, cosine_lr, reconstruction_loss, scenes_batch  # noqa: E402  (registers ar_edit_pack)

from ar_edit_pack.core.shapes import world  # noqa: E402
from ar_edit_pack.core.infinity.bsq import quantize_multiscale  # noqa: E402
from ar_edit_pack.core.shapes.embedded import embedded_path  # noqa: E402
from ar_edit_pack.core.infinity.generate import _next_input  # noqa: E402
from ar_edit_pack.core.infinity.model import InfinityConfig, InfinityTransformer  # noqa: E402
from ar_edit_pack.core.infinity.vae import BSQVAE, BSQVAEConfig  # noqa: E402
from ar_edit_pack.core.files.loaders import load_vq, load_word_encoder, save_model  # noqa: E402
from ar_edit_pack.core.shapes.bench import EMBEDDED_INFINITY_SCHEDULE, bsq_psnr  # noqa: E402

VAE_CONFIG = BSQVAEConfig(ch=24, ch_mult=(1, 1, 2, 4, 4), num_res_blocks=1, bits=16)
INFINITY_CONFIG = InfinityConfig(depth=4, embed_dim=128, num_heads=4, text_channels=64, text_maxlen=32,
                                 block_chunks=2, vae_bits=VAE_CONFIG.bits, pool_heads=4)
COMMIT = 0.25  # pull of the latent towards its multi-scale quantisation


def train_vae(steps: int, batch: int, seed: int, log, config: BSQVAEConfig = VAE_CONFIG, device: str = "cpu",
              encoder_steps: int | None = None, encoder_batch: int = 32) -> BSQVAE:
    """Supervised on the world's exact cell classes, like the LlamaGen VQ (tools/train_embedded.py):
    1. a latent per cell class (a table standing in for the encoder) + the decoder, through the real
       multi-scale BSQ quantiser (straight-through gradient, commitment to the quantised sum);
    2. the encoder regresses each cell's class latent, table and decoder frozen.
    The result is a plain BSQ VAE: encode = encoder + multi-scale quantiser, decode = decoder."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    vae = BSQVAE(config).to(device)
    table = torch.nn.Parameter(torch.randn(len(world.cell_classes()), config.bits, device=device) * 0.5)
    schedule = EMBEDDED_INFINITY_SCHEDULE
    params = list(vae.decoder.parameters()) + [table]
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3, 100)
        scenes, x = scenes_batch(rng, batch)
        x = x.to(device)
        z = table[_labels(scenes, device)].permute(0, 3, 1, 2)  # [B, d, 3, 3]
        _, summed = quantize_multiscale(z.detach(), schedule)
        zq = z + (summed - z).detach()  # straight through
        rec = vae.decoder(zq)
        loss = reconstruction_loss(rec, x, scenes) + COMMIT * F.mse_loss(z, summed)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 500 == 0 or step + 1 == steps:
            psnr = 10 * math.log10(4.0 / F.mse_loss(rec.detach().clamp(-1, 1), x).item())
            log(f"vae decoder step {step + 1}/{steps} loss {loss.item():.4f} psnr {psnr:.2f} {time.time() - t0:.0f}s")
    encoder_steps = max(1, min(1200, steps // 8)) if encoder_steps is None else encoder_steps
    params = list(vae.encoder.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    target_table = table.detach()
    for step in range(encoder_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, encoder_steps, 2e-3, 50)
        scenes, x = scenes_batch(rng, encoder_batch)
        target = target_table[_labels(scenes, device)].permute(0, 3, 1, 2)
        z = vae.encoder(x.to(device))
        loss = F.mse_loss(z, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 100 == 0 or step + 1 == encoder_steps:
            with torch.no_grad():
                got = quantize_multiscale(z, schedule)[0]
                want = quantize_multiscale(target, schedule)[0]
                agree = sum((a == b).float().mean() for a, b in zip(got, want)).item() / len(got)
            log(f"vae encoder step {step + 1}/{encoder_steps} loss {loss.item():.5f} bit agreement {agree:.4f} "
                f"{time.time() - t0:.0f}s")
    vae = vae.cpu().eval().requires_grad_(False)
    log(f"vae held-out psnr {bsq_psnr(vae):.2f}")
    return vae


@torch.no_grad()
def encode_dataset(vae: BSQVAE, n: int, seed: int):
    """-> captions, per-scale bits (list of [n, h, w, d] bool)."""
    rng = random.Random(seed)
    captions, bits = [], []
    for start in range(0, n, 256):
        scenes, x = scenes_batch(rng, min(256, n - start))
        captions += [s.caption() for s in scenes]
        bits.append(vae.encode_bits(x, EMBEDDED_INFINITY_SCHEDULE))
    return captions, [torch.cat(b) for b in zip(*bits)]


def teacher_inputs(bits: list[torch.Tensor]) -> torch.Tensor:
    """Per-scale bits -> the transformer's inputs for scales 1..K-1 [B, S - 1, d], built exactly as the
    sampler builds them (core.infinity.generate: running code sum, bilinear down)."""
    schedule = EMBEDDED_INFINITY_SCHEDULE
    final, summed, out = schedule[-1], None, []
    for k in range(1, len(schedule)):
        codes = ((bits[k - 1].float() * 2 - 1) / bits[k - 1].shape[-1] ** 0.5).permute(0, 3, 1, 2)
        codes = F.interpolate(codes, size=final, mode="bilinear", align_corners=False)
        summed = codes if summed is None else summed + codes
        out.append(_next_input(summed, schedule[k], False))
    return torch.cat(out, 1)


def train_infinity(captions, bits, text, steps: int, batch: int, seed: int, log,
                   config: InfinityConfig = INFINITY_CONFIG, device: str = "cpu") -> InfinityTransformer:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = InfinityTransformer(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and name != "cfg_uncond":
                torch.nn.init.normal_(p, std=0.02)
        model.cfg_uncond.normal_(0, 1)  # learned null text, starts random
        torch.nn.init.normal_(model.pos_start, std=0.02)
        for blk in model.layers:
            blk.ada_gss[:, :, :2] = 1.0  # residual gates open from the start (4 blocks: no need to damp)
    model.to(device).train()
    targets = torch.cat([b.flatten(1, 2) for b in bits], 1).long()  # [N, S, d]
    inputs = teacher_inputs(bits)  # [N, S - 1, d]
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 1e-3, 200)
        idx = torch.randint(0, len(captions), (batch,), generator=gen)
        emb = text.encode_infinity([captions[i] for i in idx.tolist()])
        feats, mask = emb.features.clone(), emb.mask.to(device)
        drop = (torch.rand(batch, generator=gen) < 0.1).to(device)  # null text for CFG, as Infinity trains it
        feats = torch.where(drop[:, None, None], model.null_text(mask), feats)
        logits = model(feats, mask, inputs[idx].to(device), EMBEDDED_INFINITY_SCHEDULE)  # [B, S, d, 2]
        loss = F.cross_entropy(logits.reshape(-1, 2), targets[idx].to(device).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"infinity step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
    return model.cpu().eval().requires_grad_(False)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "embedded"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-steps", type=int, default=15000, help="decoder steps (the encoder gets 1/8, at most 1,200)")
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--data", type=int, default=40000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--stage", choices=["all", "vae", "transformer"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = RunLog("train_embedded_infinity.py", args.seed)
    record = log.record
    vae_path = os.path.join(args.out, "shapes_infinity_vae.safetensors")
    if args.stage in ("all", "vae"):
        t = time.time()
        vae = train_vae(args.vae_steps, args.vae_batch, args.seed, log, device=args.device)
        save_model(vae, vae_path, {"ar_edit.trained_on": "ShapesWorld"})
        record["vae_seconds"] = round(time.time() - t)
    if args.stage in ("all", "transformer"):
        vae = load_vq(vae_path)
        text = load_word_encoder(os.path.join(args.out, os.path.basename(embedded_path("text_encoders"))),
                                 device=args.device)
        t = time.time()
        captions, bits = encode_dataset(vae, args.data, args.seed + 1)
        record["encode_seconds"] = round(time.time() - t)
        t = time.time()
        model = train_infinity(captions, bits, text, args.steps, args.batch, args.seed + 2, log, device=args.device)
        save_model(model, os.path.join(args.out, "shapes_infinity.safetensors"), {"ar_edit.trained_on": "ShapesWorld"})
        record["transformer_seconds"] = round(time.time() - t)
    log.write(os.path.join(args.out, f"training_infinity_{args.stage}.json"), args)


if __name__ == "__main__":
    main()
