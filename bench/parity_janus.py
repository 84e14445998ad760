"""Janus-Pro generation beside the official code (deepseek-ai/Janus) and transformers' port, on tiny random weights.

The official side is built as generation_inference.py builds it: MultiModalityCausalLM from a MultiModalityConfig
(the README's Janus-Pro layout: LlamaForCausalLM, VQ_16() built without arguments, mlp_gelu gen_aligner, the
vision_head gen_head), the whole model cast to bf16 for the bf16 rows; its own `generate()` function, read from
generation_inference.py at run time and run as it is, with two hooks that change no arithmetic: `.cuda()` is this
CPU, and torch.multinomial is replaced by the argmax of the same probabilities (greedy, so the draws can be compared
token by token; the decoded codes are read where the function hands them to decode_code). The prompt ids come from
its own template code (apply_sft_template_for_multi_turn_prompts + image_start_tag) and a LlamaTokenizerFast
over a tiny tokenizer.json. The understanding tower (SigLIP, needs timm) is configured as an identity projector:
generation never reads it. Stubbed imports only: attrdict (missing), the SigLIP module and the image processor
(neither on the generation path; they need timm and torchvision).

Both checkpoint layouts are written: the original (`pytorch_model.bin`, as the 1B; two shards + index, as the 7B)
and transformers' (JanusForConditionalGeneration.save_pretrained), and loaded by our load_janus.

The official code needs transformers 4.x (transformers 5 turns its config classes into dataclasses, which they are
not written for); transformers' own Janus port needs transformers >= 4.51. So two runs, each adding its part to --out:
    python -m venv /tmp/jvenv && /tmp/jvenv/bin/pip install torch transformers==4.44.2 safetensors tokenizers einops
    /tmp/jvenv/bin/pip install --no-deps -e .
    /tmp/jvenv/bin/python bench/parity_janus.py --official /path/to/Janus --out bench/parity_janus.json  # at 1daa72f
    python bench/parity_janus.py --transformers-layout --out bench/parity_janus.json    # the pack's transformers 5
"""
import argparse
import ast
import copy
import json
import os
import sys
import tempfile

ARGS = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ARGS.add_argument("--official", default=None, help="a checkout of deepseek-ai/Janus (needs transformers 4.x)")
ARGS.add_argument("--transformers-layout", action="store_true", help="transformers' Janus port and its saved layout")
ARGS.add_argument("--out", default=None, help="write the numbers here as JSON")
ARGS = ARGS.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))

ATTRDICT = ("class AttrDict(dict):\n    def __init__(self, *a, **k):\n        super().__init__(*a, **k)\n"
            "        for key, v in self.items():\n            if isinstance(v, dict):\n"
            "                self[key] = AttrDict(v)\n"
            "    def __getattr__(self, name):\n        try:\n            return self[name]\n"
            "        except KeyError:\n            raise AttributeError(name)\n")
stub_root = tempfile.mkdtemp(prefix="janus_stubs_")
os.makedirs(os.path.join(stub_root, "attrdict"))
with open(os.path.join(stub_root, "attrdict", "__init__.py"), "w") as f:
    f.write(ATTRDICT)
sys.path[:0] = [stub_root, os.path.join(HERE, "..", "tests")] + ([ARGS.official] if ARGS.official else [])

import types  # noqa: E402

import torch  # noqa: E402

# The packages without their __init__ (it imports the image processor, which needs torchvision), and the two modules
# generation never uses (the SigLIP tower, needing timm; the image processor) as empty stand-ins.
if ARGS.official:
    for pkg in ("janus", "janus.models", "janus.utils"):
        sys.modules[pkg] = types.ModuleType(pkg)
        sys.modules[pkg].__path__ = [os.path.join(ARGS.official, *pkg.split("."))]
    sys.modules["janus.models.clip_encoder"] = types.SimpleNamespace(CLIPVisionTower=None)
    sys.modules["janus.models.image_processing_vlm"] = types.SimpleNamespace(VLMImageProcessor=None)
    from janus.models.modeling_vlm import MultiModalityCausalLM, MultiModalityConfig  # noqa: E402
    from janus.models.processing_vlm import VLChatProcessor  # noqa: E402

from ar_edit_pack.core.janus.files import load_janus  # noqa: E402
from ar_edit_pack.core.janus.generate import decode_codes  # noqa: E402
from ar_edit_pack.core.llamagen.generate import SamplePicker  # noqa: E402
from ar_edit_pack.core.sampling import SamplingSettings  # noqa: E402
from tiny_models import janus_tokenizer_json  # noqa: E402

DIM, LAYERS, HEADS, FFN = 64, 3, 4, 160
CAPTIONS = ["a red fox in the snow", "a small blue boat on a calm lake at dawn", "a cat"]


def official_config(vocab_size: int) -> dict:
    return {
        "vision_config": {"cls": "MlpProjector", "params": {"cfg": {"projector_type": "identity"}}},
        "aligner_config": {"cls": "MlpProjector", "params": {"projector_type": "identity"}},
        "gen_vision_config": {"cls": "VQ-16", "params": {"image_token_size": 16384, "n_embed": 8}},
        "gen_aligner_config": {"cls": "MlpProjector", "params": {"depth": 2, "input_dim": 8, "n_embed": DIM,
                                                                  "projector_type": "mlp_gelu"}},
        "gen_head_config": {"cls": "vision_head", "params": {"image_token_embed": DIM, "image_token_size": 16384,
                                                             "n_embed": DIM}},
        "language_config": {"hidden_size": DIM, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
                            "num_attention_heads": HEADS, "num_key_value_heads": HEADS, "vocab_size": vocab_size,
                            "max_position_embeddings": 1024, "rms_norm_eps": 1e-6, "torch_dtype": "float32"},
        "model_type": "multi_modality", "torch_dtype": "float32",
    }


def official_generate_fn():
    """generate() from generation_inference.py, compiled from its source (the script itself loads a hub model at
    import time, so only the function is taken)."""
    path = os.path.join(ARGS.official, "generation_inference.py")
    tree = ast.parse(open(path).read())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate")
    import numpy as np
    import PIL.Image

    namespace = {"torch": torch, "np": np, "os": os, "PIL": PIL, "MultiModalityCausalLM": MultiModalityCausalLM,
                 "VLChatProcessor": VLChatProcessor}
    exec(compile(ast.Module([fn], []), path, "exec"), namespace)
    return namespace["generate"]


class Processor:
    """What generate() reads off its VLChatProcessor: .tokenizer.encode and .pad_id (looked up by name as there)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.vocab.get("<｜▁pad▁｜>")


def official_prompt(caption: str) -> str:
    conversation = [{"role": "<|User|>", "content": caption}, {"role": "<|Assistant|>", "content": ""}]
    text = VLChatProcessor.apply_sft_template_for_multi_turn_prompts(None, conversation, sft_format="deepseek",
                                                                     system_prompt="")
    return text + "<begin_of_image>"


def official_greedy(model, processor, caption: str, cfg: float) -> torch.Tensor:
    generate, seen = official_generate_fn(), {}
    real_cuda, real_multinomial = torch.Tensor.cuda, torch.multinomial
    decode = model.gen_vision_model.decode_code
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.multinomial = lambda probs, num_samples: probs.argmax(-1, keepdim=True)

    def recording(codes, shape):
        seen["codes"] = codes.clone()
        return decode(codes, shape)

    model.gen_vision_model.decode_code = recording
    cwd = os.getcwd()
    os.chdir(tempfile.mkdtemp(prefix="janus_samples_"))
    try:
        generate(model, processor, official_prompt(caption), temperature=1, parallel_size=1, cfg_weight=cfg,
                 image_token_num_per_image=576, img_size=384, patch_size=16)
    finally:
        os.chdir(cwd)
        torch.Tensor.cuda, torch.multinomial = real_cuda, real_multinomial
        model.gen_vision_model.decode_code = decode
    return seen["codes"].long()


def save_original(model, folder: str, shards: int, tokenizer_json: str, config: dict) -> str:
    os.makedirs(folder, exist_ok=True)
    state = model.state_dict()
    if shards == 1:
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    else:
        keys = list(state)
        parts = [keys[i::shards] for i in range(shards)]
        weight_map = {}
        for i, part in enumerate(parts):
            name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            torch.save({k: state[k] for k in part}, os.path.join(folder, name))
            weight_map.update({k: name for k in part})
        with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(tokenizer_json)
    return folder


def bf16_picks(logits_of, ours, caption: str, cfg: float, codes: torch.Tensor) -> int:
    """How many of the official loop's picks `codes` [1, N] differ from argmax(softmax(u + w (c - u))) computed in bf16
    from logits_of(ids, codes) (the official generate()'s arithmetic, its multinomial read as argmax)."""
    ids = ours.tokenizer.prompt_ids(caption)
    with torch.no_grad():
        c = logits_of(torch.tensor([ids]), codes).to(torch.bfloat16)
        u = logits_of(torch.tensor([ours.tokenizer.unconditional(ids)]), codes).to(torch.bfloat16)
        picks = torch.softmax(u + cfg * (c - u), dim=-1).argmax(-1)
    return int((picks != codes).sum())


def teacher_forced(model, ids: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The official modules' image logits for given codes (as generate() feeds them, without a cache)."""
    x = torch.cat([model.language_model.get_input_embeddings()(ids), model.prepare_gen_img_embeds(codes[:, :-1])], 1)
    h = model.language_model.model(inputs_embeds=x).last_hidden_state
    return model.gen_head(h[:, ids.shape[1] - 1:])


def official_part(root: str, tok_json: str, words: list[str]) -> dict:
    from transformers import LlamaTokenizerFast
    import transformers

    out: dict = {"code": "deepseek-ai/Janus", "transformers": transformers.__version__, "layers": LAYERS, "dim": DIM}
    hf_tok = LlamaTokenizerFast(tokenizer_file=os.path.join(root, "tokenizer.json"), bos_token="<｜begin▁of▁sentence｜>",
                                eos_token="<｜end▁of▁sentence｜>", pad_token="<｜▁pad▁｜>", add_bos_token=True,
                                add_eos_token=False)
    processor = Processor(hf_tok)
    config = official_config(len(words))
    torch.manual_seed(0)
    official = MultiModalityCausalLM(MultiModalityConfig(**config)).eval()
    with torch.no_grad():  # norms start at 1: random here, so a mistake in them shows
        for name, p in official.named_parameters():
            if "norm" in name and not name.startswith("gen_vision_model"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.startswith(("gen_embed", "gen_aligner", "gen_head")):
                p.normal_(0, 0.3)
    folders = {"original, one file (1B)": save_original(official, os.path.join(root, "one"), 1, tok_json, config),
               "original, 2 shards (7B)": save_original(official, os.path.join(root, "two"), 2, tok_json, config)}
    ours = {k: load_janus(f, dtype=torch.float32) for k, f in folders.items()}
    model, vq = ours["original, one file (1B)"]

    # prompt ids: the official template and tokenizer vs ours
    out["prompt_ids_equal"] = all(hf_tok.encode(official_prompt(c)) == model.tokenizer.prompt_ids(c) for c in CAPTIONS)

    # teacher-forced logits, fp32
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 16384, (1, 576), generator=g)
    diffs = {}
    for name, (m, _) in ours.items():
        d = 0.0
        for c in CAPTIONS:
            ids = torch.tensor([m.tokenizer.prompt_ids(c)])
            with torch.no_grad():
                d = max(d, (teacher_forced(official, ids, codes).float() - m(ids, codes).float()).abs().max().item())
        diffs[name] = d
    out["teacher_forced_max_abs_logit_diff_fp32"] = diffs

    # greedy CFG generation through the official generate(), fp32 and bf16 (as the script casts the model)
    def ours_greedy(m, caption, cfg):
        ids = m.tokenizer.prompt_ids(caption)
        return decode_codes(m, [ids], cfg, SamplePicker(SamplingSettings(temperature=0.0, top_k=0), torch.zeros(1)))

    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        off = copy.deepcopy(official).to(dtype)
        m = load_janus(folders["original, 2 shards (7B)"], dtype=dtype)[0]
        for caption in CAPTIONS:
            for cfg in (1.0, 5.0):
                a, b = official_greedy(off, processor, caption, cfg), ours_greedy(m, caption, cfg)
                row = {"dtype": str(dtype).split(".")[-1], "caption": caption, "cfg": cfg,
                       "codes_differing": int((a != b).sum()), "of": a.numel()}
                if dtype != torch.float32:  # bf16 rounding makes near-ties; one flip re-routes the rest, so also
                    # per position: the pick from the same softmax in bf16 (first of ties, as argmax over probs),
                    # fed the official's codes, by the official's modules without a cache and by ours
                    row["teacher_forced_picks_differing"] = {
                        "official uncached": bf16_picks(lambda i, c: teacher_forced(off, i, c), m, caption, cfg, a),
                        "ours": bf16_picks(lambda i, c: m(i, c), m, caption, cfg, a)}
                rows.append(row)
    out["greedy_cfg"] = rows

    # batched prompts of different lengths (left padding, masks) vs each alone
    alone = torch.cat([ours_greedy(model, c, 5.0) for c in CAPTIONS])
    batch = decode_codes(model, [model.tokenizer.prompt_ids(c) for c in CAPTIONS], 5.0,
                         SamplePicker(SamplingSettings(temperature=0.0, top_k=0), torch.zeros(len(CAPTIONS))))
    out["batched_vs_alone_codes_differing"] = int((alone != batch).sum())

    # VQ decode
    with torch.no_grad():
        ref = official.gen_vision_model.decode_code(codes.int(), shape=[1, 8, 24, 24]).float()
        got = vq.decode(codes.view(1, 24, 24)).float()
    out["vq_decode_max_abs_diff"] = (ref - got).abs().max().item()
    return out


def transformers_part(root: str, tok_json: str, vocab: int) -> dict:
    """transformers' layout: JanusForConditionalGeneration saved by save_pretrained, beside its own modules."""
    import transformers
    from transformers import JanusConfig as HFJanusConfig
    from transformers import JanusForConditionalGeneration

    codes = torch.randint(0, 16384, (1, 576), generator=torch.Generator().manual_seed(1))
    cfg = HFJanusConfig(
        text_config={"model_type": "llama", "hidden_size": DIM, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
                     "num_attention_heads": HEADS, "num_key_value_heads": HEADS, "vocab_size": vocab,
                     "max_position_embeddings": 1024, "rms_norm_eps": 1e-6},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 384, "patch_size": 16, "projection_dim": DIM},
        vq_config={"embed_dim": 8, "num_embeddings": 16384, "base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4],
                   "num_res_blocks": 2, "latent_channels": 256, "projection_dim": DIM, "image_token_embed_dim": DIM})
    torch.manual_seed(2)
    hf = JanusForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "norm" in name and "vqmodel" not in name and "vision_model" not in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "generation_" in name:
                p.normal_(0, 0.3)
    folder = os.path.join(root, "hf")
    hf.save_pretrained(folder, max_shard_size="100MB")
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(tok_json)
    ours, vq = load_janus(folder, dtype=torch.float32)
    d = 0.0
    for c in CAPTIONS:
        ids = torch.tensor([ours.tokenizer.prompt_ids(c)])
        with torch.no_grad():
            inner = hf.model
            x = torch.cat([inner.language_model.get_input_embeddings()(ids),
                           inner.generation_aligner(inner.generation_embeddings(codes[:, :-1]))], 1)
            h = inner.language_model(inputs_embeds=x).last_hidden_state
            ref = inner.generation_head(h[:, ids.shape[1] - 1:]).float()
            d = max(d, (ref - ours(ids, codes).float()).abs().max().item())
        with torch.no_grad():
            dec_ref = hf.model.vqmodel.decode(codes).float()
            dec = vq.decode(codes.view(1, 24, 24)).float()
    shards = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
    return {"transformers": transformers.__version__, "files": shards, "teacher_forced_max_abs_logit_diff_fp32": d,
            "vq_decode_max_abs_diff": (dec_ref - dec).abs().max().item()}


if __name__ == "__main__":
    if not (ARGS.official or ARGS.transformers_layout):
        raise SystemExit("give --official PATH and / or --transformers-layout")
    root = tempfile.mkdtemp(prefix="janus_parity_")
    tok_json, words = janus_tokenizer_json(CAPTIONS)
    with open(os.path.join(root, "tokenizer.json"), "w") as f:
        f.write(tok_json)
    result = json.load(open(ARGS.out)) if ARGS.out and os.path.isfile(ARGS.out) else {}
    if ARGS.official:
        result["official"] = official_part(root, tok_json, words)
    if ARGS.transformers_layout:
        result["transformers_layout"] = transformers_part(root, tok_json, len(words))
    print(json.dumps(result, indent=1))
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(result, f, indent=1)
