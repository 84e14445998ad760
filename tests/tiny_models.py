"""Tiny models of the official architectures, built and saved the way official files are."""
from __future__ import annotations

import argparse
import os

import torch

from dataclasses import replace

from ar_edit_pack.core.infinity.model import InfinityConfig
from ar_edit_pack.core.infinity.vae import BSQVAEConfig
from ar_edit_pack.core.llamagen.gpt import GPTConfig, LlamaGenGPT
from ar_edit_pack.core.llamagen.vq import LlamaGenVQ, VQConfig

# caption_dim 32 = the tiny T5's d_model; 40 caption slots; a 4x4 token grid (64 px at stride 16). Not an official
# size, so an official-layout file of it (no head count stored) loads with n_head=TINY_HEADS given.
TINY_T2I = dict(dim=64, n_layer=2, n_head=4, multiple_of=32, caption_dim=32, cls_token_num=40, vocab_size=64,
                image_size=64)
TINY_HEADS = TINY_T2I["n_head"]
# Every code path of Infinity 2B / 8B, a few hundred kB.
TINY_INFINITY = InfinityConfig(depth=2, embed_dim=64, num_heads=2, text_channels=32, text_maxlen=64, block_chunks=2,
                               vae_bits=8, pool_heads=2)
TINY_BSQ_VAE = BSQVAEConfig(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, bits=8)


def tiny_gpt(seed: int = 0, **overrides) -> LlamaGenGPT:
    torch.manual_seed(seed)
    model = LlamaGenGPT(GPTConfig(**{**TINY_T2I, **overrides})).eval().requires_grad_(False)
    with torch.no_grad():  # random init is small; scale up so logits are not nearly uniform
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.cls_embedding.uncond_embedding.normal_(0, 1) if model.cfg.model_type == "t2i" else None
    return model


def tiny_vq(seed: int = 0, **overrides) -> LlamaGenVQ:
    torch.manual_seed(seed)
    cfg = VQConfig(**{**dict(codebook_size=64, codebook_embed_dim=4, ch=32, ch_mult=(1, 1, 1, 1, 2),
                             z_channels=32, norm_groups=32), **overrides})
    model = LlamaGenVQ(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        model.quantize.embedding.weight.normal_()
    return model


def save_official_pt(model: torch.nn.Module, path: str, wrapper: str | None = "model", with_args: bool = True) -> str:
    """Like LlamaGen's training checkpoints: weights under `wrapper` plus an argparse Namespace."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    obj = state if wrapper is None else {wrapper: state}
    if with_args and wrapper is not None:
        obj["args"] = argparse.Namespace(gpt_model="GPT-XL", image_size=512)
        obj["steps"] = 1000
    torch.save(obj, path)
    return path


def save_bare_safetensors(model: torch.nn.Module, path: str) -> str:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def tiny_infinity(seed: int = 0, **overrides):
    """Infinity layout at toy width (text 32-d = the tiny T5), weights scaled so outputs are not uniform."""
    from ar_edit_pack.core.infinity.model import InfinityTransformer

    torch.manual_seed(seed)
    model = InfinityTransformer(replace(TINY_INFINITY, **overrides)).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0, 0.3 if "scale_mul" not in name else 0.5)
    return model


def tiny_infinity_vae(seed: int = 0, **overrides):
    from ar_edit_pack.core.infinity.vae import BSQVAE

    torch.manual_seed(seed)
    return BSQVAE(replace(TINY_BSQ_VAE, **overrides)).eval().requires_grad_(False)


def infinity_condition(n: int = 1, length: int = 5, dim: int = 32, seed: int = 0, lengths=None):
    """Random T5-like features in Infinity's layout (right-padded, mask)."""
    from ar_edit_pack.core.condition import Condition

    g = torch.Generator().manual_seed(seed)
    lengths = lengths or [length] * n
    L = max(lengths)
    feats = torch.randn(n, L, dim, generator=g)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    return Condition(feats * mask[..., None], mask, [f"prompt {i}" for i in range(n)], "infinity")


# ---------------------------------------------------------------------------------------------------- Lumina-mGPT
# Chameleon's id layout in a small vocabulary: 0-3 specials, 4..8195 the 8,192 image codes, 8196 <eoss>, 8197
# <racm3:break>, 8198.. <reservedNNNNN> = NNNNN + 4 (8710 end of turn, 8803 row end, 8804 + n sizes), then words.
LUMINA_WORDS = ("Generate an image of according to the following prompt : a red blue green circle square star at "
                "top left right bottom middle in on white background 32x32 48x48 64x64 32x64 64x32").split()
LUMINA_RESERVED_END = 8832  # sizes up to 8804 + 27 (864 px)


def lumina_vocabulary(n_words: int = len(LUMINA_WORDS)) -> dict[str, int]:
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in range(8192):
        vocab["IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(c)) + "Z"] = 4 + c
    vocab["<eoss>"], vocab["<racm3:break>"] = 8196, 8197
    for i in range(8198, LUMINA_RESERVED_END):
        vocab[f"<reserved{i - 4:05d}>"] = i
    for j, w in enumerate(LUMINA_WORDS[:n_words]):
        vocab[w] = LUMINA_RESERVED_END + j
    return vocab


def lumina_tokenizer_json(vocab: dict[str, int]) -> str:
    """A word-level tokenizer.json (what the folder's BPE one is, for our purposes: text -> ids) with the
    special tokens as added tokens, so `<reserved08706>` in the text is one id."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([n for n in vocab if n.startswith("<")])
    return tok.to_str()


def lumina_hf_config(dim: int = 64, n_layer: int = 2, n_head: int = 4, ffn: int = 128, **extra) -> dict:
    vocab = lumina_vocabulary()
    return {"model_type": "chameleon", "architectures": ["ChameleonForConditionalGeneration"], "hidden_size": dim,
            "num_hidden_layers": n_layer, "num_attention_heads": n_head, "num_key_value_heads": n_head,
            "intermediate_size": ffn, "vocab_size": LUMINA_RESERVED_END + len(LUMINA_WORDS), "rope_theta": 10000.0,
            "rms_norm_eps": 1e-5, "model_parallel_size": 1, "swin_norm": False, "max_position_embeddings": 4096,
            "mask_image_logits": False, "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False,
            "torch_dtype": "float32", "vocabulary_map": vocab,
            "vq_config": {"embed_dim": 8, "num_embeddings": 8192, "base_channels": 32,
                          "channel_multiplier": [1, 1, 1, 1, 1], "num_res_blocks": 1, "latent_channels": 8},
            **extra}


def save_tiny_lumina(folder, seed: int = 0, shards: int = 2, dtype=torch.float32, **cfg_overrides) -> str:
    """A tiny Lumina-mGPT folder in the official layout: config.json (with the vocabulary_map), the weights in
    `shards` safetensors files with model.safetensors.index.json, tokenizer.json. Random weights, the qk-norm
    affines too (the official initialises them to 1 / 0, which would hide a mistake in them)."""
    import json

    from safetensors.torch import save_file

    from ar_edit_pack.core.lumina.chameleon import ChameleonConfig, ChameleonLM

    os.makedirs(folder, exist_ok=True)
    hf = lumina_hf_config(**cfg_overrides)
    torch.manual_seed(seed)
    model = ChameleonLM(ChameleonConfig.from_hf(hf))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    names = sorted(state)
    weight_map = {}
    for s in range(shards):
        part = names[s::shards]
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in part}, os.path.join(folder, file), metadata={"format": "pt"})
        weight_map.update({k: file for k in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
                   "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf, f)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(lumina_tokenizer_json(hf["vocabulary_map"]))
    return str(folder)


TINY_CHAMELEON_VQGAN = dict(n_embed=8192, embed_dim=8, z_channels=32, ch=32, ch_mult=(1, 1, 1, 1, 1),
                            num_res_blocks=1, attn_resolutions=(), resolution=64)


def save_tiny_chameleon_vqgan(folder, seed: int = 0) -> str:
    """vqgan.ckpt ({"state_dict": ...}, with a training-only loss.* tensor as Meta's has) + vqgan.yaml."""
    import yaml

    from ar_edit_pack.core.lumina.vqgan import ChameleonVQGAN, VQGANConfig

    os.makedirs(folder, exist_ok=True)
    cfg = VQGANConfig(**TINY_CHAMELEON_VQGAN)
    torch.manual_seed(seed)
    model = ChameleonVQGAN(cfg)
    state = dict(model.state_dict())
    state["loss.discriminator.main.0.weight"] = torch.zeros(2, 3, 4, 4)
    torch.save({"state_dict": state, "global_step": 0}, os.path.join(folder, "vqgan.ckpt"))
    with open(os.path.join(folder, "vqgan.yaml"), "w") as f:
        yaml.safe_dump({"model": {"target": "taming.models.vqgan.VQModel", "params": {
            **cfg.to_yaml_params(), "lossconfig": {"target": "taming.modules.losses.DummyLoss"}}}}, f)
    return str(folder)


JANUS_SPECIALS = ("<unk>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<begin_of_image>",
                  "<|User|>", "<|Assistant|>")


def janus_tokenizer_json(captions) -> tuple[str, list[str]]:
    """A word-level tokenizer.json for Janus prompts (the real one is byte-level BPE; for our purposes text -> ids):
    the special tokens as added tokens, ':' and the captions' words. -> (its JSON, the vocabulary in id order)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = list(JANUS_SPECIALS) + [":"] + sorted({w for c in captions for w in c.lower().split()})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(JANUS_SPECIALS[1:]))
    return tok.to_str(), words


JANUS_CAPTIONS = ("a red circle", "a small blue square at the top left", "a cat")
TINY_JANUS = dict(dim=64, n_layer=2, n_head=4, n_kv_head=4, ffn_hidden=128, image_codes=64, code_dim=4,
                  image_size=64, max_positions=512)  # 4 x 4 codes, the tiny VQ's 64 x 4 codebook


def tiny_janus(seed: int = 0, vocab_size: int | None = None):
    """(JanusGen, LlamaGenVQ) with random weights, norms and the image path scaled so logits are not flat."""
    from ar_edit_pack.core.janus.model import JanusConfig, JanusGen

    torch.manual_seed(seed)
    vocab = vocab_size or len(janus_tokenizer_json(JANUS_CAPTIONS)[1])
    model = JanusGen(JanusConfig(**TINY_JANUS, vocab_size=vocab)).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.2 * torch.randn_like(p)) if "norm" in name else p.normal_(0, 0.3)
    return model, tiny_vq(seed)


def _to_transformers_names(key: str) -> str:
    """An original-layout key -> transformers' (as its JanusForConditionalGeneration names them: written out here
    from its module tree, independently of the loader's mapping)."""
    import re

    if key.startswith("gen_vision_model."):
        rest = key[len("gen_vision_model."):]
        rest = re.sub(r"^encoder\.conv_blocks\.(\d+)\.res\.", r"encoder.down.\1.block.", rest)
        rest = re.sub(r"^decoder\.conv_blocks\.(\d+)\.res\.", r"decoder.up.\1.block.", rest)
        rest = re.sub(r"^encoder\.conv_blocks\.", "encoder.down.", rest)
        rest = re.sub(r"^decoder\.conv_blocks\.", "decoder.up.", rest)
        rest = rest.replace("mid.0.", "mid.block_1.").replace("mid.1.", "mid.attn_1.").replace("mid.2.", "mid.block_2.")
        return "model.vqmodel." + rest
    for old, new in (("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
                     ("gen_embed.", "model.generation_embeddings."), ("gen_aligner.layers.0.", "model.generation_aligner.fc1."),
                     ("gen_aligner.layers.2.", "model.generation_aligner.hidden_layers.0."),
                     ("gen_head.output_mlp_projector.", "model.generation_head.proj_out."),
                     ("gen_head.vision_head.", "model.generation_head.vision_head."),
                     ("vision_model.", "model.vision_model."), ("aligner.", "model.aligner.")):
        if key.startswith(old):
            return new + key[len(old):]
    raise KeyError(key)


def save_tiny_janus(folder, layout: str = "original", shards: int = 1, seed: int = 0, extra: dict | None = None) -> str:
    """A tiny Janus-Pro folder: layout "original" (config.json with language_config; pytorch_model.bin, or `shards`
    .bin files with pytorch_model.bin.index.json) or "transformers" (model_type janus; model.safetensors). With
    the understanding tower's and the text head's tensors, which generation must drop; `extra` adds tensors."""
    import json
    import os

    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    model, vq = tiny_janus(seed)
    cfg = model.cfg
    state = {**model.state_dict(), **{f"gen_vision_model.{k}": v for k, v in vq.state_dict().items()}}
    state["language_model.lm_head.weight"] = torch.randn(cfg.vocab_size, cfg.dim)
    state["vision_model.vision_tower.patch_embed.proj.weight"] = torch.randn(8, 3, 4, 4)
    state["aligner.layers.0.weight"] = torch.randn(cfg.dim, 8)
    state.update(extra or {})
    tok_json, _ = janus_tokenizer_json(JANUS_CAPTIONS)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(tok_json)
    lc = {"hidden_size": cfg.dim, "intermediate_size": cfg.ffn_hidden, "num_hidden_layers": cfg.n_layer,
          "num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.n_kv_head, "vocab_size": cfg.vocab_size,
          "max_position_embeddings": cfg.max_positions, "rms_norm_eps": 1e-6}
    own = {"image_size": cfg.image_size}
    if layout == "transformers":
        state = {_to_transformers_names(k): v for k, v in state.items() if k != "gen_vision_model.quantize.codebook_used"}
        config = {"model_type": "janus", "text_config": {"model_type": "llama", **lc},
                  "vq_config": {"num_embeddings": cfg.image_codes, "embed_dim": cfg.code_dim}, "ar_edit": own}
        save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(folder, "model.safetensors"))
    else:
        config = {"model_type": "multi_modality", "language_config": lc, "ar_edit": own,
                  "gen_vision_config": {"cls": "VQ-16", "params": {"image_token_size": cfg.image_codes,
                                                                   "n_embed": cfg.code_dim}}}
        if shards == 1:
            torch.save(state, os.path.join(folder, "pytorch_model.bin"))
        else:
            keys, weight_map = list(state), {}
            for i in range(shards):
                name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
                torch.save({k: state[k] for k in keys[i::shards]}, os.path.join(folder, name))
                weight_map.update({k: name for k in keys[i::shards]})
            with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
                json.dump({"weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return folder
