"""Train the embedded Janus-Pro-architecture set on ShapesWorld, as a folder in DeepSeek's layout (what the pack's
convert command writes from the hub's .bin files): config.json with `language_config` and the generation modules'
configs, model.safetensors with the original names (language_model.*, gen_vision_model.*, gen_embed, gen_aligner,
gen_head), and a word-level tokenizer.json of the world's words with Janus-Pro's special tokens.

    python tools/train_embedded_janus.py      # writes embedded/shapes-janus/ and embedded/training_janus.json

The image tokenizer is the LlamaGen set's VQ-16 (embedded/shapes_vq.safetensors), stored again under
gen_vision_model.*: Janus-Pro's tokenizer is LlamaGen's VQ-16, so the set draws the same 3 x 3 codes of a 48 px
picture. Only the language model and its image path are trained, on the official prompt
"<BOS><|User|>: caption <|Assistant|>:<begin_of_image>" (one in ten with the caption replaced by the pad token: the
official unconditional CFG row). Seeded and resumable (a checkpoint every 250 steps beside the output; a restarted
run ends where an unbroken one does); the same command on the same machine type gives the same weights.
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

from ar_edit_pack.core.files.loaders import load_vq  # noqa: E402
from ar_edit_pack.core.janus import prompt as P  # noqa: E402
from ar_edit_pack.core.janus.model import JanusConfig, JanusGen, rope  # noqa: E402
from ar_edit_pack.core.shapes import world  # noqa: E402
from ar_edit_pack.core.shapes.bench import to_model  # noqa: E402
from ar_edit_pack.core.shapes.embedded import embedded_path  # noqa: E402
from train_embedded import RunLog, cosine_lr, resume, save_progress, train_step  # noqa: E402
from tune_embedded import tuned_config  # noqa: E402

OUT = os.path.join(ROOT, "embedded", "shapes-janus")
CHECKPOINT_EVERY = 250
EOS = "<｜end▁of▁sentence｜>"
SPECIALS = [P.BOS, EOS, P.PAD, "<unk>", P.USER, P.ASSISTANT, P.IMAGE_START]


def vocabulary() -> dict[str, int]:
    """The special tokens Janus-Pro's prompt uses, ':' (the template's), then the world's words."""
    return {w: i for i, w in enumerate(SPECIALS + [":"] + world.vocabulary())}


def tokenizer_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocabulary(), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIALS)
    return tok.to_str()


def tokenizer() -> P.JanusTokenizer:
    from tokenizers import Tokenizer

    return P.JanusTokenizer(Tokenizer.from_str(tokenizer_json()))


def janus_config(vq) -> JanusConfig:
    return JanusConfig(dim=128, n_layer=4, n_head=4, n_kv_head=4, ffn_hidden=352, vocab_size=len(vocabulary()),
                       max_positions=128, image_codes=vq.cfg.codebook_size, code_dim=vq.cfg.codebook_embed_dim,
                       image_size=world.SIZE, downsample=vq.downsample)


def examples(vq, n: int, seed: int, drop: float):
    """n (prompt ids, codes) pairs; a share `drop` with the unconditional row. -> text [n, T] right-padded with the
    pad token, lengths [n], codes [n, N]."""
    tok, unk = tokenizer(), vocabulary()["<unk>"]
    rng, coin = random.Random(seed), random.Random(seed + 1)
    rows, codes = [], []
    with torch.no_grad():
        for start in range(0, n, 256):
            scenes = [world.random_scene(rng) for _ in range(min(256, n - start))]
            x = to_model(np.stack([world.render(s) for s in scenes]))
            codes.append(vq.encode(x).flatten(1))
            for s in scenes:
                ids = tok.prompt_ids(s.caption())
                if unk in ids:
                    raise ValueError(f"the tokenizer does not know a word of {s.caption()!r}")
                rows.append(tok.unconditional(ids) if coin.random() < drop else ids)
    T = max(map(len, rows))
    text = torch.full((n, T), tok.pad_id, dtype=torch.long)
    for r, ids in enumerate(rows):
        text[r, :len(ids)] = torch.tensor(ids)
    return text, torch.tensor([len(r) for r in rows]), torch.cat(codes)


def code_logits(model: JanusGen, text: torch.Tensor, lengths: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Teacher forcing on rows of different prompt lengths, each from position 0 as generation runs it: row r is
    text[r, :len] then its codes (through the image path); causal, so what follows a row's end is never read.
    -> logits [B, N, C] (k: code k's prediction, from the position before it)."""
    B, T = text.shape
    N = codes.shape[1]
    L = T + N - 1
    pos = torch.arange(L)
    k = pos[None] - lengths[:, None]  # [B, L] code index at each position (< 0: text)
    ids = F.pad(text, (0, L - T), value=0)
    fed = codes.gather(1, k.clamp(0, N - 1))
    x = torch.where((k < 0)[..., None], model.embed_text(ids), model.embed_codes(fed))
    cos, sin = rope(pos.expand(B, -1), model.cfg.head_dim, model.cfg.rope_base, model.dtype)
    logits = model._run(x, cos, sin, None, None, None)  # [B, L, C]
    out = (lengths[:, None] - 1 + torch.arange(N)).clamp(max=L - 1)
    return logits.gather(1, out[..., None].expand(-1, -1, logits.shape[-1]))


def train(vq, steps: int, batch: int, data: int, seed: int, log, progress_path: str | None = None) -> JanusGen:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t = time.time()
    text, lengths, codes = examples(vq, data, seed + 1, drop=0.1)
    log(f"janus data: {data} examples encoded in {time.time() - t:.0f}s (prompts up to {text.shape[1]} tokens)")
    model = JanusGen(janus_config(vq))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    start = resume(progress_path, {"model": model}, opt, gen, log, "janus")
    t0 = time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 1e-3, 200)
        idx = torch.randint(0, data, (batch,), generator=gen)
        width = int(lengths[idx].max())
        logits = code_logits(model, text[idx, :width], lengths[idx], codes[idx])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes[idx].reshape(-1))
        train_step(opt, loss, params)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"janus step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
        if progress_path and (step + 1) % CHECKPOINT_EVERY == 0 and step + 1 < steps:
            save_progress(progress_path, step + 1, {"model": model}, opt, gen)
    return model.eval().requires_grad_(False)


def official_config(cfg: JanusConfig, vq_cfg) -> dict:
    """config.json as deepseek-ai/Janus-Pro's (its keys; the sizes ours), plus the pack's own entry."""
    return {
        "model_type": "multi_modality", "torch_dtype": "float32",
        "language_config": {"model_type": "llama", "hidden_size": cfg.dim, "intermediate_size": cfg.ffn_hidden,
                            "num_hidden_layers": cfg.n_layer, "num_attention_heads": cfg.n_head,
                            "num_key_value_heads": cfg.n_kv_head, "vocab_size": cfg.vocab_size,
                            "max_position_embeddings": cfg.max_positions, "rms_norm_eps": cfg.norm_eps,
                            "rope_theta": cfg.rope_base, "torch_dtype": "float32"},
        "gen_vision_config": {"cls": "VQ-16", "params": {"image_token_size": cfg.image_codes, "n_embed": cfg.code_dim}},
        "gen_aligner_config": {"cls": "MlpProjector", "params": {"depth": 2, "input_dim": cfg.code_dim,
                                                                 "n_embed": cfg.dim, "projector_type": "mlp_gelu"}},
        "gen_head_config": {"cls": "vision_head", "params": {"image_token_embed": cfg.dim,
                                                             "image_token_size": cfg.image_codes, "n_embed": cfg.dim}},
        "ar_edit": {"trained_on": "ShapesWorld", "image_size": cfg.image_size, "vq_config": vq_cfg.to_dict(),
                    "tuned": tuned_config("shapes-janus/config.json")},
    }


def save(model: JanusGen, vq, folder: str) -> None:
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    state = {**model.state_dict(), **{f"gen_vision_model.{k}": v for k, v in vq.state_dict().items()}}
    tmp = os.path.join(folder, "model.safetensors.partial")  # renamed in place: a loaded file may be mapped
    save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(official_config(model.cfg, vq.cfg), f, indent=1)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(tokenizer_json())
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": P.BOS, "eos_token": EOS, "pad_token": P.PAD, "unk_token": "<unk>"}, f, indent=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=int, default=40000)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    log = RunLog("train_embedded_janus.py", args.seed)
    vq = load_vq(embedded_path("vq"), precision="fp32")
    progress = os.path.normpath(args.out) + ".progress.pt"
    t = time.time()
    model = train(vq, args.steps, args.batch, args.data, args.seed, log, progress)
    log.record["train_seconds"] = round(time.time() - t)
    save(model, vq, args.out)
    if os.path.exists(progress):
        os.remove(progress)
    log.write(os.path.join(os.path.dirname(os.path.normpath(args.out)), "training_janus.json"), args)


if __name__ == "__main__":
    main()
