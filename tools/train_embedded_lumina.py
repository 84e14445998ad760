"""Train the embedded Lumina-mGPT-architecture set on ShapesWorld, in the official layouts: a Chameleon VQGAN
(vqgan.ckpt + vqgan.yaml, Meta's taming modules) and a small Chameleon transformer as a Hugging Face folder
(config.json with its vocabulary_map, model.safetensors, a word-level tokenizer.json of the world's words).

    python tools/train_embedded_lumina.py      # writes embedded/shapes-lumina/ and embedded/training_lumina_*.json

The VQGAN codes every 8 px (4 levels, the official has 5): ShapesWorld pictures are 48 px, and Lumina-mGPT's
size tokens count 32 px units of a stride-16 grid, so a 48 px picture at stride 8 takes the layout of a 96 px one
(6 x 6 codes, size tokens 3 x 3). As the LlamaGen set's VQ, the VQGAN is trained supervised on the world's cells:
each 16 px cell is one of 255 classes, so each 8 px quarter of it gets code 4 x class + quarter. Seeded; the same
command on the same machine type gives the same weights. `--stage vqgan|transformer|all`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ar_edit_pack.core.lumina.chameleon import ChameleonConfig, ChameleonLM  # noqa: E402
from ar_edit_pack.core.lumina.vqgan import ChameleonVQGAN, VQGANConfig, load_vqgan  # noqa: E402
from ar_edit_pack.core.shapes import world  # noqa: E402
from tune_embedded import tuned_config  # noqa: E402
from train_embedded import RunLog, cosine_lr, reconstruction_loss, scenes_batch, train_step  # noqa: E402

OUT = os.path.join(ROOT, "embedded", "shapes-lumina")
N_CLASSES = len(world.cell_classes())
VQGAN_CONFIG = VQGANConfig(n_embed=4 * N_CLASSES, embed_dim=8, z_channels=64, ch=32, ch_mult=(1, 1, 2, 2),
                           num_res_blocks=1, attn_resolutions=(), resolution=world.SIZE)
GRID = world.SIZE // VQGAN_CONFIG.stride  # 6 codes a side
LAYOUT_PX = GRID * 16  # what the size tokens and the prompt say: 96
TEMPLATE_WORDS = ["Generate", "an", "image", "of", f"{LAYOUT_PX}x{LAYOUT_PX}", "according", "to", "following",
                  "prompt", ":"]


def vocabulary() -> dict[str, int]:
    """Chameleon's names in a small id space: specials, the image codes (IMGIMG<letters>Z), <eoss>, <racm3:break>,
    the reserved tokens used (end of turn, row end, the sizes 1 .. 8), then the words."""
    names = ["<s>", "<pad>", "</s>", "<unk>"]
    names += ["IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(c)) + "Z" for c in range(VQGAN_CONFIG.n_embed)]
    names += ["<eoss>", "<racm3:break>", "<reserved08706>", "<reserved08799>"]
    names += [f"<reserved{8800 + n:05d}>" for n in range(1, 9)]
    names += list(dict.fromkeys(TEMPLATE_WORDS + world.vocabulary()))
    return {n: i for i, n in enumerate(names)}


TRANSFORMER_CONFIG = ChameleonConfig(dim=128, n_layer=4, n_head=4, n_kv_head=4, ffn_hidden=352,
                                     vocab_size=len(vocabulary()), max_positions=256, mask_image_logits=False)


def cell_codes(scenes) -> torch.Tensor:
    """Each 16 px cell's class c -> its four 8 px quarters' codes 4c + q (q = 0 top-left, 1 top-right, 2, 3)."""
    g = world.SIZE // world.CELL
    cls = torch.tensor([world.cell_labels(s) for s in scenes]).view(-1, g, g)
    quarter = torch.tensor([[0, 1], [2, 3]])
    return (4 * cls.repeat_interleave(2, 1).repeat_interleave(2, 2) + quarter.repeat(g, g)[None])


def train_vqgan(steps: int, batch: int, seed: int, log, encoder_steps: int) -> ChameleonVQGAN:
    """1. codebook + post_quant_conv + decoder on the exact codes; 2. the encoder to classify each quarter (cross
    entropy over cosine similarities with the frozen codebook). The result is a plain VQGAN (nearest code)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    vq = ChameleonVQGAN(VQGAN_CONFIG)
    params = list(vq.decoder.parameters()) + list(vq.post_quant_conv.parameters()) + list(vq.quantize.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3, 100)
        scenes, x = scenes_batch(rng, batch)
        z = vq.quantize.embedding(cell_codes(scenes)).permute(0, 3, 1, 2)
        rec = vq.decoder(vq.post_quant_conv(z))
        loss = reconstruction_loss(rec, x, scenes)
        train_step(opt, loss, params)
        if (step + 1) % 500 == 0 or step + 1 == steps:
            psnr = 10 * np.log10(4.0 / F.mse_loss(rec.detach().clamp(-1, 1), x).item())
            log(f"vqgan decoder step {step + 1}/{steps} loss {loss.item():.4f} psnr {psnr:.2f} {time.time() - t0:.0f}s")
    train_encoder(vq, encoder_steps, rng, log, t0)
    vq = vq.eval().requires_grad_(False)
    held_out(vq, log)
    return vq


def train_encoder(vq: ChameleonVQGAN, steps: int, rng: random.Random, log, t0: float) -> None:
    """The encoder + quant_conv against the frozen codebook: cross entropy over minus the squared distances, the
    very rule the VQGAN quantises by (nearest code in L2), so the trained classes are the codes it returns."""
    params = list(vq.encoder.parameters()) + list(vq.quant_conv.parameters())
    vq.encoder.requires_grad_(True)
    vq.quant_conv.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    codebook = vq.quantize.embedding.weight.detach()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3, 50)
        scenes, x = scenes_batch(rng, 32)
        labels = cell_codes(scenes).flatten()
        z = vq.quant_conv(vq.encoder(x))
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        d = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.T
        logits = -d / 0.1
        loss = F.cross_entropy(logits, labels)
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"vqgan encoder step {step + 1}/{steps} loss {loss.item():.4f} quarter accuracy "
                f"{(logits.argmax(1) == labels).float().mean().item():.4f} {time.time() - t0:.0f}s")


def held_out(vq: ChameleonVQGAN, log) -> None:
    with torch.no_grad():  # the plain L2 nearest code must be the class code: a check on held-out scenes
        scenes, x = scenes_batch(random.Random(10_000), 200)
        acc = (vq.encode(x) == cell_codes(scenes)).float().mean().item()
        rec = (vq.decode(vq.encode(x)) + 1) / 2
        psnr = float((10 * torch.log10(1 / (rec - (x + 1) / 2).pow(2).mean((1, 2, 3)))).mean())
    log(f"vqgan held-out: code accuracy {acc:.4f}, psnr {psnr:.2f}")


def save_vqgan(vq: ChameleonVQGAN, folder: str) -> None:
    import yaml

    os.makedirs(folder, exist_ok=True)
    # written beside and renamed in place: a VQGAN loaded from this file maps it (weights_only, mmap), and
    # overwriting a mapped file would change the very weights being saved
    tmp = os.path.join(folder, "vqgan.ckpt.partial")
    torch.save({"state_dict": {k: v.clone() for k, v in vq.state_dict().items()}}, tmp)
    os.replace(tmp, os.path.join(folder, "vqgan.ckpt"))
    with open(os.path.join(folder, "vqgan.yaml"), "w") as f:
        yaml.safe_dump({"model": {"target": "taming.models.vqgan.VQModel", "params": VQGAN_CONFIG.to_yaml_params()}},
                       f)


def tokenizer_json(vocab: dict[str, int]) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([n for n in vocab if n.startswith("<")])
    return tok.to_str()


def sequences(vq: ChameleonVQGAN, n: int, seed: int, drop: float):
    """n training sequences: BOS + prompt + image, or (a share `drop`, for CFG) the image alone from position 0,
    as the unconditional branch sees it. -> ids [n, L] right-padded, loss mask [n, L] (the image tokens)."""
    from tokenizers import Tokenizer

    from ar_edit_pack.core.lumina import tokens as T
    from ar_edit_pack.core.lumina.generate import prompt_text

    vocab_map = vocabulary()
    vocab = T.LuminaVocab.from_map(vocab_map, len(vocab_map))
    tok = Tokenizer.from_str(tokenizer_json(vocab_map))
    rng, gen = random.Random(seed), random.Random(seed + 1)
    rows = []
    with torch.no_grad():
        for start in range(0, n, 256):
            scenes, x = scenes_batch(rng, min(256, n - start))
            bodies = T.layout(vocab, vq.encode(x), GRID)
            for s, body in zip(scenes, bodies.tolist()):
                image = T.image_prefix(vocab, LAYOUT_PX, LAYOUT_PX) + body
                if gen.random() < drop:
                    rows.append(([], image))
                else:
                    ids = tok.encode(prompt_text(s.caption(), LAYOUT_PX, LAYOUT_PX), add_special_tokens=False).ids
                    rows.append(([vocab.bos] + ids, image))
    L = max(len(p) + len(i) for p, i in rows)
    ids = torch.full((len(rows), L), vocab_map["<pad>"], dtype=torch.long)
    mask = torch.zeros(len(rows), L, dtype=torch.bool)
    for r, (p, i) in enumerate(rows):
        ids[r, :len(p) + len(i)] = torch.tensor(p + i)
        mask[r, len(p):len(p) + len(i)] = True
    return ids, mask


def train_transformer(ids: torch.Tensor, mask: torch.Tensor, steps: int, batch: int, seed: int, log) -> ChameleonLM:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ChameleonLM(TRANSFORMER_CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 1e-3, 200)
        idx = torch.randint(0, ids.shape[0], (batch,), generator=gen)
        x, m = ids[idx], mask[idx]
        logits = model(x[:, :-1])
        target = x[:, 1:].masked_fill(~m[:, 1:], -100)  # predict every image token (start and sizes included)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"transformer step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
    return model.eval().requires_grad_(False)


def save_transformer(model: ChameleonLM, folder: str) -> None:
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})
    cfg = {**model.cfg.to_hf(), "torch_dtype": "float32", "vocabulary_map": vocabulary(),
           "ar_edit": {"trained_on": "ShapesWorld", "vqgan_stride": VQGAN_CONFIG.stride, "picture_px": world.SIZE,
                      "tuned": tuned_config("shapes-lumina/transformer/config.json")}}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(tokenizer_json(vocabulary()))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vqgan-steps", type=int, default=6000)
    p.add_argument("--vqgan-batch", type=int, default=8)
    p.add_argument("--encoder-steps", type=int, default=600)
    p.add_argument("--data", type=int, default=30000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--stage", choices=["all", "vqgan", "encoder", "transformer"], default="all",
                   help="encoder: retrain only the VQGAN's encoder of a saved VQGAN (its decoder and codes kept)")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    log = RunLog("train_embedded_lumina.py", args.seed)
    vq_dir = os.path.join(args.out, "vqgan")
    if args.stage in ("all", "vqgan"):
        t = time.time()
        save_vqgan(train_vqgan(args.vqgan_steps, args.vqgan_batch, args.seed, log, args.encoder_steps), vq_dir)
        log.record["vqgan_seconds"] = round(time.time() - t)
    if args.stage == "encoder":
        t = time.time()
        vq = load_vqgan(vq_dir)
        train_encoder(vq, args.encoder_steps, random.Random(args.seed + 3), log, t)
        vq = vq.eval().requires_grad_(False)
        held_out(vq, log)
        save_vqgan(vq, vq_dir)
        log.record["encoder_seconds"] = round(time.time() - t)
    if args.stage in ("all", "transformer"):
        vq = load_vqgan(vq_dir)
        t = time.time()
        ids, mask = sequences(vq, args.data, args.seed + 1, drop=0.1)
        log.record["encode_seconds"] = round(time.time() - t)
        t = time.time()
        save_transformer(train_transformer(ids, mask, args.steps, args.batch, args.seed + 2, log),
                         os.path.join(args.out, "transformer"))
        log.record["transformer_seconds"] = round(time.time() - t)
    log.write(os.path.join(os.path.dirname(args.out), f"training_lumina_{args.stage}.json"), args)


if __name__ == "__main__":
    main()
