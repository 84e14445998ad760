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
from train_embedded import ROOT, RunLog, _labels, cosine_lr, reconstruction_loss, scenes_batch, train_step  # noqa: E402

from ar_edit_pack.core.shapes import world  # noqa: E402
from ar_edit_pack.core.infinity.bsq import quantize_multiscale  # noqa: E402
from ar_edit_pack.core.shapes.embedded import embedded_path  # noqa: E402
from ar_edit_pack.core.infinity.generate import teacher_inputs as core_teacher_inputs  # noqa: E402
from ar_edit_pack.core.infinity.model import InfinityConfig, InfinityTransformer  # noqa: E402
from ar_edit_pack.core.infinity.vae import BSQVAE, BSQVAEConfig  # noqa: E402
from ar_edit_pack.core.files.loaders import load_vq, load_word_encoder, save_model  # noqa: E402
from tune_embedded import tuned_metadata  # noqa: E402
from ar_edit_pack.core.shapes.bench import EMBEDDED_INFINITY_SCHEDULE, bsq_reconstruction  # noqa: E402

VAE_CONFIG = BSQVAEConfig(ch=16, ch_mult=(1, 1, 2, 4, 4), num_res_blocks=1, bits=16, norm_groups=8)
# The transformer, by size: (config, default steps). "base" is the shipped one; "small" is the one shipped before
# 2026-11-30 (text-to-image 76%: its loss flattened at 0.066 nats/bit), which the embedded VAREdit editor was
# started from (tools/train_embedded_editors.py --varedit-base). Validation captions (seed 30,000) after 1,000 /
# 2,000 / 3,000 of base's steps: 37.5% / 67.0% / 96.5% parse to their objects.
INFINITY_SIZES = {
    "small": (InfinityConfig(depth=4, embed_dim=128, num_heads=4, text_channels=64, text_maxlen=32, block_chunks=2,
                             vae_bits=VAE_CONFIG.bits, pool_heads=4), 3000),
    "base": (InfinityConfig(depth=6, embed_dim=192, num_heads=6, text_channels=64, text_maxlen=32, block_chunks=2,
                            vae_bits=VAE_CONFIG.bits, pool_heads=4), 4000),
}
INFINITY_CONFIG = INFINITY_SIZES["base"][0]
# ---- the latent each scene is coded as (the VAE's supervision) ----------------------------------------
# The latent is the sum of three parts, each of which the real multi-scale quantiser codes exactly on one scale:
# - 1x1: the scene's background (a +-1 code per background, SCENE_PART each channel);
# - 2x2: a fixed positional pattern (half the channels split top from bottom, half left from right, zero mean,
#   POSITION_PART, bilinearly upsampled as the quantiser does): it makes the next-scale input of every 3x3 cell
#   distinct, which is how the transformer can tell the cells apart (with equal inputs its self-attention
#   averages equal values, whatever RoPE does to the weights);
# - 3x3: each cell's attributes as bits (CELL_PART): 0-2 the cell's background colour, 3 object present, 4-5
#   shape, 6-8 colour, 9 size, 10-11 texture, the rest unused (-1). Each attribute has its own bits, so an
#   editor or sampler that flips one attribute's bits leaves the others intact.
# Scale k's code is sign(area mean of what is left) / 4: the parts' sizes keep every sign what it should be
# (the 2x2 windows see +-0.125 of position against at most 0.08 of cell code), and after subtracting the two
# coarse codes exactly the cell part is left.
SCENE_PART, POSITION_PART, CELL_PART = 0.25, 0.25, 0.08
CELL_BACKGROUNDS = world._background_colors()  # white (= the checker's light squares), gray, pink, sky blue, dark


def _bits(value: int, n: int) -> list[float]:
    return [1.0 if value >> i & 1 else -1.0 for i in range(n)]


ATTRIBUTE_BITS = 12


def cell_latent_table(bits: int = 16) -> torch.Tensor:
    """[len(world.cell_classes()), bits]: each cell class's attribute code (+-1)."""
    if bits < ATTRIBUTE_BITS:
        raise ValueError(f"the cell code needs {ATTRIBUTE_BITS} bits, the VAE has {bits}")
    rows = []
    for bg, obj, decor in world.cell_classes():
        code = _bits(CELL_BACKGROUNDS.index(bg), 3)
        if obj is None:
            code += [-1.0] + [-1.0] * 6
        else:
            shape, color, size = obj
            code += [1.0] + _bits(world.SHAPES.index(shape), 2) + _bits(list(world.COLORS).index(color), 3) + \
                [1.0 if size == "small" else -1.0]
        rows.append(code + _bits(decor, 2) + [-1.0] * (bits - ATTRIBUTE_BITS))
    return torch.tensor(rows)


def scene_latent_table(bits: int = 16) -> torch.Tensor:
    """[len(world.BACKGROUNDS), bits]: each scene background's code (+-1), bit (channel mod 3) of its index."""
    return torch.tensor([[1.0 if i >> (c % 3) & 1 else -1.0 for c in range(bits)] for i in range(len(world.BACKGROUNDS))])


def position_pattern(bits: int = 16) -> torch.Tensor:
    """[bits, 3, 3]: the 2x2 positional code (even channels top/bottom, odd left/right), upsampled to the cells."""
    rows = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    quad = torch.stack([rows if c % 2 == 0 else rows.T for c in range(bits)])  # [bits, 2, 2]
    return F.interpolate(quad[None], size=(3, 3), mode="bilinear", align_corners=False)[0]


def scene_latents(scenes, bits: int = 16) -> torch.Tensor:
    """The target latent z [B, bits, 3, 3] of each scene."""
    cells = cell_latent_table(bits)[_labels(scenes, "cpu")].permute(0, 3, 1, 2)  # [B, bits, 3, 3]
    bg = scene_latent_table(bits)[torch.tensor([list(world.BACKGROUNDS).index(s.background) for s in scenes])]
    return (SCENE_PART * bg[:, :, None, None] + POSITION_PART * position_pattern(bits) + CELL_PART * cells).contiguous()




def train_vae(steps: int, batch: int, seed: int, log, config: BSQVAEConfig = VAE_CONFIG, device: str = "cpu",
              encoder_steps: int | None = None, encoder_batch: int = 32) -> BSQVAE:
    """Supervised on the world's exact cell classes, like the LlamaGen VQ (tools/train_embedded.py), with the
    latent of every scene given (`scene_latents`):
    1. the decoder learns to draw the real multi-scale quantisation of that latent;
    2. the encoder regresses the latent, the decoder frozen.
    The result is a plain BSQ VAE: encode = encoder + multi-scale quantiser, decode = decoder."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    vae = BSQVAE(config).to(device)
    schedule = EMBEDDED_INFINITY_SCHEDULE
    params = list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3, 100)
        scenes, x = scenes_batch(rng, batch)
        x = x.to(device)
        _, summed = quantize_multiscale(scene_latents(scenes, config.bits).to(device), schedule)
        rec = vae.decoder(summed)
        loss = reconstruction_loss(rec, x, scenes)
        train_step(opt, loss, params)
        if (step + 1) % 500 == 0 or step + 1 == steps:
            psnr = 10 * math.log10(4.0 / F.mse_loss(rec.detach().clamp(-1, 1), x).item())
            log(f"vae decoder step {step + 1}/{steps} loss {loss.item():.4f} psnr {psnr:.2f} {time.time() - t0:.0f}s")
    encoder_steps = max(1, min(1500, steps // 8)) if encoder_steps is None else encoder_steps
    params = list(vae.encoder.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    for step in range(encoder_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, encoder_steps, 2e-3, 50)
        scenes, x = scenes_batch(rng, encoder_batch)
        target = scene_latents(scenes, config.bits).to(device)
        z = vae.encoder(x.to(device))
        loss = F.mse_loss(z, target)
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == encoder_steps:
            with torch.no_grad():
                got = quantize_multiscale(z, schedule)[0]
                want = quantize_multiscale(target, schedule)[0]
                agree = sum((a == b).float().mean() for a, b in zip(got, want)).item() / len(got)
            log(f"vae encoder step {step + 1}/{encoder_steps} loss {loss.item():.5f} bit agreement {agree:.4f} "
                f"{time.time() - t0:.0f}s")
    vae = vae.cpu().eval().requires_grad_(False)
    held_out = bsq_reconstruction(vae)
    log(f"vae held-out psnr {held_out['psnr']:.2f} exact scenes {held_out['exact_scene']:.1%}")
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
    """Per-scale bits -> the transformer's inputs for scales 1..K-1 [B, S - 1, d] on the embedded schedule, as the
    sampler builds them."""
    return core_teacher_inputs(bits, EMBEDDED_INFINITY_SCHEDULE)


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
            blk.ada_gss[:, :, :2] = 1.0  # residual gates open from the start (4-6 blocks: no need to damp)
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
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"infinity step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
    return model.cpu().eval().requires_grad_(False)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "embedded"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-steps", type=int, default=20000, help="decoder steps (the encoder gets 1/8, at most 1,500)")
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--data", type=int, default=40000)
    p.add_argument("--size", choices=list(INFINITY_SIZES), default="base", help="the transformer's size")
    p.add_argument("--steps", type=int, default=None, help="transformer steps (default: the size's own)")
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
        vae.resolutions = (world.SIZE,)  # stored in the file: the loader nodes refuse other tiers for it
        save_model(vae, vae_path, {"ar_edit.trained_on": "ShapesWorld"})
        record["vae_seconds"] = round(time.time() - t)
    if args.stage in ("all", "transformer"):
        # the VAE and the word encoder from --out, else the shipped ones (--stage transformer into a scratch folder)
        text_path = os.path.join(args.out, os.path.basename(embedded_path("text_encoders")))
        vae = load_vq(vae_path if os.path.isfile(vae_path) else embedded_path("vq", True))
        text = load_word_encoder(text_path if os.path.isfile(text_path) else embedded_path("text_encoders"),
                                 device=args.device)
        t = time.time()
        captions, bits = encode_dataset(vae, args.data, args.seed + 1)
        record["encode_seconds"] = round(time.time() - t)
        t = time.time()
        config, default_steps = INFINITY_SIZES[args.size]
        args.steps = args.steps or default_steps
        model = train_infinity(captions, bits, text, args.steps, args.batch, args.seed + 2, log, config, args.device)
        model.resolutions = (world.SIZE,)
        save_model(model, os.path.join(args.out, "shapes_infinity.safetensors"),
                   {"ar_edit.trained_on": "ShapesWorld", **tuned_metadata("shapes_infinity.safetensors")})
        record["transformer_seconds"] = round(time.time() - t)
    log.write(os.path.join(args.out, f"training_infinity_{args.stage}.json"), args)


if __name__ == "__main__":
    main()
