"""Lumina-mGPT and its Chameleon VQGAN beside the official code (Alpha-VLLM/Lumina-mGPT), on tiny random weights.

The official side is built as its inference solver builds it: ChameleonForConditionalGeneration.from_pretrained on a
folder it saved itself (save_pretrained, 2 shards and an index), its three logits processors (CFG with the
unbatched unconditional branch, the structure rules, the interleaved top-k) in its order, model.generate with its
GenerationConfig; the VQGAN is its chameleon_vae_ori VQModel with a vqgan.yaml / vqgan.ckpt pair. Ours loads those
same files. Nothing of the official arithmetic is changed; its processors hard-code device="cuda" when they build
their masks, so those constructors run with "cuda" read as this CPU (a device argument only).

Needs transformers 4.4x (the official modeling file imports helpers that transformers 5 removed):
    python -m venv /tmp/lvenv && /tmp/lvenv/bin/pip install torch transformers==4.44.2 safetensors pyyaml
    /tmp/lvenv/bin/pip install --no-deps -e .
    /tmp/lvenv/bin/python bench/parity_lumina.py --official /path/to/Lumina-mGPT   # a checkout at 104abe4
"""
import argparse
import json
import os
import sys
import tempfile

ARGS = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ARGS.add_argument("--official", required=True, help="a checkout of Alpha-VLLM/Lumina-mGPT")
ARGS.add_argument("--out", default=None, help="write the numbers here as JSON")
ARGS = ARGS.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(ARGS.official, "lumina_mgpt"), ARGS.official, os.path.join(HERE, "..", "tests")]

import torch  # noqa: E402
import yaml  # noqa: E402
from transformers import GenerationConfig, LogitsProcessorList  # noqa: E402

from model.chameleon import ChameleonConfig as OfficialConfig  # noqa: E402
from model.chameleon import ChameleonForConditionalGeneration  # noqa: E402
from model.chameleon_vae_ori.vqgan import VQModel  # noqa: E402

from ar_edit_pack.core.lumina import tokens as T  # noqa: E402
from ar_edit_pack.core.lumina.vqgan import load_vqgan  # noqa: E402
from ar_edit_pack.core.pipelines import lumina  # noqa: E402
from ar_edit_pack.core.sampling import SamplingSettings  # noqa: E402
from tiny_models import TINY_CHAMELEON_VQGAN, lumina_hf_config, lumina_tokenizer_json  # noqa: E402


def official_processors(model, cfg_scale: float, image_top_k: int):
    """The solver's create_logits_processor, without the solver (which loads Meta's real tokenizer files)."""
    import inference_solver as S

    real_tensor, real_arange = torch.tensor, torch.arange

    def on_cpu(fn):
        return lambda *a, **k: fn(*a, **{**k, "device": "cpu"} if k.get("device") == "cuda" else k)

    torch.tensor, torch.arange = on_cpu(real_tensor), on_cpu(real_arange)
    try:
        structure = S.MultiModalLogitsProcessor(image_start_token_id=8197, image_end_token_id=8196,
                                                image_next_line_token_id=8803, patch_size=32,
                                                voc_size=model.config.vocab_size)
    finally:
        torch.tensor, torch.arange = real_tensor, real_arange
    cfg = S.LLMImageStartTriggeredUnbatchedClassifierFreeGuidanceLogitsProcessor(
        guidance_scale=cfg_scale, model=model, image_start_token_id=8197, image_end_token_id=8196,
        image_next_line_token_id=8803, patch_size=32)
    topk = S.InterleavedTopKLogitsWarper(image_top_k=image_top_k, text_top_k=10, image_start_token_id=8197,
                                         image_end_token_id=8196)
    return LogitsProcessorList([cfg, structure, topk])


def main() -> dict:
    out: dict = {}
    folder = tempfile.mkdtemp(prefix="lumina_parity_")
    torch.manual_seed(0)
    hf = lumina_hf_config(dim=64, n_layer=3, n_head=4, ffn=160)
    official = ChameleonForConditionalGeneration(OfficialConfig(**hf)).eval()
    with torch.no_grad():  # the qk-norm and RMSNorm parameters start at 1 / 0: random here, so they count
        for name, p in official.named_parameters():
            if "norm" in name and not name.startswith("model.vqmodel"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    official.save_pretrained(folder, max_shard_size="400KB", safe_serialization=True)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(lumina_tokenizer_json(hf["vocabulary_map"]))
    official = ChameleonForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32).eval()
    shards = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
    ours = lumina.load_lumina(folder, dtype=torch.float32)
    out["files"] = {"shards": len(shards), "index": os.path.isfile(os.path.join(folder, "model.safetensors.index.json"))}

    # 1. logits over a prompt and an image start, every position
    prompt = lumina.encode_prompts(ours, ["a red circle at the top left on white background"], 32, 64)[0]
    ids = torch.tensor([prompt + T.image_prefix(ours.vocab, 32, 64) + [4 + 17, 4 + 4000, 8803]])
    with torch.no_grad():
        want = official(ids).logits.float()
        cache = ours.new_cache(1, ids.shape[1])
        got = ours.forward_tokens(ids, torch.arange(ids.shape[1])[None], torch.arange(ids.shape[1]), cache)
    out["logits_max_abs"] = float((want - got).abs().max())
    out["logits_scale"] = float(want.abs().max())

    # 2. greedy CFG generation (top-k 1), the official unbatched CFG vs our batched one, for two sizes and scales
    gens = []
    for (h, w), scale, caption in [((32, 64), 3.0, "a blue star at the bottom right on white background"),
                                   ((64, 32), 4.0, "a green square in the middle"), ((32, 32), 1.0, "a red circle"),
                                   ((64, 96), 2.0, "a red star at the top right and a blue circle")]:
        p = lumina.encode_prompts(ours, [caption], h, w)[0]
        prefix = torch.tensor([p + T.image_prefix(ours.vocab, h, w)])
        body = (h // 16) * (w // 16 + 1) + 1
        gen = GenerationConfig(max_new_tokens=body, max_length=4096, temperature=1.0, top_k=None, do_sample=True,
                               eos_token_id=[8710])
        with torch.no_grad():
            seq = official.generate(prefix, gen, logits_processor=official_processors(official, scale, 1))
        theirs = seq[0, prefix.shape[1]:]
        codes = lumina.generate(ours, [caption], h, w, [0], SamplingSettings(cfg_scale=scale, temperature=1.0,
                                                                            top_k=1)).tokens
        mine = T.layout(ours.vocab, codes, w // 16)[0]
        gens.append({"size": f"{w}x{h}", "cfg": scale, "tokens": int(theirs.numel()),
                     "identical": bool(theirs.numel() == mine.numel() and torch.equal(theirs, mine)),
                     "differing": int((theirs != mine).sum()) if theirs.numel() == mine.numel() else -1})
    out["greedy_cfg"] = gens

    # 3. the VQGAN: official VQModel from its yaml and ckpt; codes and pixels
    vq_dir = os.path.join(folder, "vqgan")
    os.makedirs(vq_dir)
    params = {"embed_dim": TINY_CHAMELEON_VQGAN["embed_dim"], "n_embed": TINY_CHAMELEON_VQGAN["n_embed"],
              "ddconfig": {"double_z": False, "z_channels": TINY_CHAMELEON_VQGAN["z_channels"], "resolution": 64,
                           "in_channels": 3, "out_ch": 3, "ch": TINY_CHAMELEON_VQGAN["ch"],
                           "ch_mult": list(TINY_CHAMELEON_VQGAN["ch_mult"]), "num_res_blocks": 1,
                           "attn_resolutions": [], "dropout": 0.0}}
    torch.manual_seed(1)
    vq_official = VQModel(**params).eval()
    state = dict(vq_official.state_dict())
    state["loss.discriminator.main.0.weight"] = torch.zeros(2, 3, 4, 4)  # Meta's ckpt carries its losses too
    torch.save({"state_dict": state}, os.path.join(vq_dir, "vqgan.ckpt"))
    with open(os.path.join(vq_dir, "vqgan.yaml"), "w") as f:
        yaml.safe_dump({"model": {"target": "taming.models.vqgan.VQModel",
                                  "params": {**params, "lossconfig": {"target": "x"}}}}, f)
    vq_ours = load_vqgan(vq_dir)
    torch.manual_seed(2)
    x = torch.rand(3, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        _, _, (_, _, idx) = vq_official.encode(x)
        theirs_codes = idx.view(3, 4, 6)
        mine_codes = vq_ours.encode(x)
        pix_theirs = vq_official.decode(vq_official.quantize.get_codebook_entry(
            theirs_codes.reshape(-1), (3, 4, 6, params["embed_dim"]))).clamp(-1, 1)
        pix_mine = vq_ours.decode(theirs_codes)
    out["vqgan"] = {"codes": int(theirs_codes.numel()), "codes_differing": int((theirs_codes != mine_codes).sum()),
                    "pixels_max_abs": float((pix_theirs - pix_mine).abs().max())}
    return out


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=2))
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(result, f, indent=2)
