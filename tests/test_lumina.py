"""Lumina-mGPT (Chameleon architecture): official-layout folders loaded strictly, the image token layout and its
structure rules, batched CFG, and Anchor Token Matching on it. Parity with the official code itself is
bench/parity_lumina.py (it needs the official repository and transformers 4.4x)."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.lumina import tokens as T
from ar_edit_pack.core.lumina.chameleon import ChameleonConfig
from ar_edit_pack.core.lumina.vqgan import load_vqgan
from ar_edit_pack.core.pipelines import lumina
from ar_edit_pack.core.sampling import SamplingSettings

from tiny_models import save_tiny_chameleon_vqgan, save_tiny_lumina

GREEDY = SamplingSettings(cfg_scale=3.0, temperature=1.0, top_k=1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_lumina(tmp_path_factory.mktemp("lumina") / "Lumina-mGPT-tiny")


@pytest.fixture(scope="module")
def model(folder):
    return lumina.load_lumina(folder)


@pytest.fixture(scope="module")
def vqgan(tmp_path_factory):
    return load_vqgan(save_tiny_chameleon_vqgan(tmp_path_factory.mktemp("vqgan") / "chameleon"))


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_the_folder_loads_from_its_shards_and_reads_its_vocabulary(folder, model):
    index = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
    assert len(set(index["weight_map"].values())) == 2
    assert model.cfg == ChameleonConfig.from_hf(json.load(open(os.path.join(folder, "config.json"))))
    assert model.vocab.n_codes == 8192 and model.vocab.image_ids[0] == 4 and model.vocab.image_ids[-1] == 8195
    assert (model.vocab.image_start, model.vocab.image_end, model.vocab.row_end) == (8197, 8196, 8803)
    ids = lumina.encode_prompts(model, ["a red circle"], 96, 64)[0]
    assert ids[0] == model.vocab.bos and ids[-1] == 8710  # BOS ... <reserved08706>
    assert T.image_prefix(model.vocab, 96, 64) == [8197, 8804 + 3, 8804 + 2]


def test_a_folder_that_does_not_fit_is_refused_naming_what(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = _copy(folder, tmp_path)
    shard = next(p for p in sorted(bad.iterdir()) if p.suffix == ".safetensors")
    state = load_file(shard)
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped} | {"model.extra.weight": torch.zeros(1)}, shard)
    index = json.loads((bad / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.extra.weight"] = shard.name
    del index["weight_map"][dropped]
    (bad / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError,
                       match=rf"(?s)missing keys \(1\): {dropped}\n.*unexpected keys \(1\): model.extra.weight"):
        lumina.load_lumina(bad)
    wide = _copy(folder, tmp_path / "w")
    cfg = json.loads((wide / "config.json").read_text())
    (wide / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 256}))
    with pytest.raises(CheckpointError, match=r"shape mismatches \(\d+\): model.layers.0.mlp"):
        lumina.load_lumina(wide)
    for change, message in [({"vocabulary_map": None}, "has no vocabulary_map"),
                            ({"model_type": "llama"}, "not a Chameleon"),
                            ({"hidden_size": 10 ** 9}, "beyond any Lumina-mGPT model")]:
        (wide / "config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(ValueError, match=message):
            lumina.load_lumina(wide)
    (wide / "config.json").write_text(json.dumps(cfg))
    os.remove(wide / "tokenizer.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        lumina.load_lumina(wide)


def test_a_chameleon_base_config_that_masks_image_logits_cannot_generate(folder, tmp_path):
    base = _copy(folder, tmp_path)
    cfg = json.loads((base / "config.json").read_text())
    del cfg["mask_image_logits"]  # the official default is True: a base Chameleon never draws
    (base / "config.json").write_text(json.dumps(cfg))
    model = lumina.load_lumina(base)
    with pytest.raises(ValueError, match="masks image tokens out"):
        lumina.generate(model, ["a red circle"], 32, 32, [0], GREEDY)


def test_generation_keeps_the_layout_and_each_row_is_its_own(model):
    captions = ["a red circle at the top left", "a blue star"]
    both = lumina.generate(model, captions, 32, 64, [3, 4])
    assert both.tokens.shape == (2, 2, 4) and int(both.tokens.max()) < 8192
    for i, c in enumerate(captions):  # rows of different prompt lengths share a batch (left padding, own positions)
        alone = lumina.generate(model, [c], 32, 64, [3 + i])
        assert torch.equal(alone.tokens[0], both.tokens[i])
    body = T.layout(model.vocab, both.tokens, 4)
    assert body.shape == (2, 2 * 5 + 1) and bool((body[:, 4::5][:, :2] == 8803).all()) and bool((body[:, -1] == 8196).all())
    assert torch.equal(T.codes_of(model.vocab, body, 2, 4), both.tokens)
    with pytest.raises(ValueError, match="multiples of 32"):
        lumina.generate(model, ["a red circle"], 48, 48, [0])


def test_cfg_is_the_unconditional_branch_without_the_prompt(model):
    """Greedy CFG tokens equal u + s (c - u) computed step by step with two separate, unbatched branches."""
    caption, s = "a green square in the middle", 3.0
    got = lumina.generate(model, [caption], 32, 32, [0], GREEDY).tokens.flatten()
    cond = lumina.encode_prompts(model, [caption], 32, 32)[0] + T.image_prefix(model.vocab, 32, 32)
    uncond = T.image_prefix(model.vocab, 32, 32)
    ids = model.vocab.image_ids
    with torch.no_grad():
        for i in range(got.numel()):
            body = torch.tensor([t for j, t in enumerate(got[:i].tolist()) for t in
                                 ([ids[t].item(), 8803] if (j + 1) % 2 == 0 else [ids[t].item()])], dtype=torch.long)
            logits = []
            for prefix in (cond, uncond):
                seq = torch.cat([torch.tensor(prefix), body])[None]
                cache = model.new_cache(1, seq.shape[1])
                logits.append(model.forward_tokens(seq, torch.arange(seq.shape[1])[None], torch.arange(seq.shape[1]),
                                                   cache)[0, -1, ids])
            assert int((logits[1] + s * (logits[0] - logits[1])).argmax()) == int(got[i]), i


def test_the_vqgan_loads_strictly_and_round_trips_its_codes(vqgan, tmp_path):
    codes = torch.randint(0, 8192, (2, 3, 5))
    pixels = vqgan.decode(codes)
    assert pixels.shape == (2, 3, 48, 80) and float(pixels.abs().max()) <= 1
    assert vqgan.encode(pixels).shape == (2, 3, 5)
    folder = save_tiny_chameleon_vqgan(tmp_path / "v")
    ckpt = torch.load(os.path.join(folder, "vqgan.ckpt"), weights_only=True)
    del ckpt["state_dict"]["quant_conv.bias"]
    torch.save(ckpt, os.path.join(folder, "vqgan.ckpt"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): quant_conv.bias$"):
        load_vqgan(folder)
    os.remove(os.path.join(folder, "vqgan.yaml"))
    with pytest.raises(FileNotFoundError, match="Meta's Chameleon weights .* models/vq/chameleon"):
        load_vqgan(folder)


def test_atm_on_lumina_locks_to_the_source_under_its_own_prompt_and_keeps_outside_a_mask(model):
    captions = ["a red circle at the top left", "a blue star at the bottom right"]
    src = lumina.generate(model, captions, 64, 64, [5, 6], GREEDY)
    cache = lumina.source_cache(model, src)
    assert cache.metric == "cosine" and torch.allclose(cache.codebook.norm(dim=-1), torch.ones(8192))
    same = lumina.edit(model, cache, captions, [5, 6], "atm", GREEDY)
    assert torch.equal(same.tokens.view_as(src.tokens), src.tokens)  # the anchor is the greedy token: distance 0
    mask = torch.zeros(1, 64, 64)
    mask[:, :32, :32] = 1  # the top-left 2 x 2 codes may change
    edited = lumina.edit(model, cache, ["a green square in the middle"], [5, 6], "atm", GREEDY, mask=mask)
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[:2, :2] = True
    assert torch.equal(edited.tokens.view(2, 4, 4)[:, ~inside], src.tokens[:, ~inside])
    naive = lumina.edit(model, cache, ["a green square in the middle"], [5, 6], "naive", GREEDY, mask=mask)
    assert torch.equal(naive.tokens.view(2, 4, 4)[:, ~inside], src.tokens[:, ~inside])
    free = lumina.edit(model, cache, ["a green square in the middle"], [5, 6], "naive", GREEDY)
    assert torch.equal(free.tokens.view(2, 4, 4),
                       lumina.generate(model, ["a green square in the middle"] * 2, 64, 64, [5, 6], GREEDY).tokens)


def test_the_cosine_distance_is_one_minus_cos_of_the_first_layer_embeddings(model):
    from ar_edit_pack.core.llamagen.atm import AnchorPicker, ATMParams, ATMSettings

    src = lumina.generate(model, ["a red circle"], 32, 32, [1], GREEDY)
    cache = lumina.source_cache(model, src)
    table = model.model.embed_tokens.weight[model.vocab.image_ids]
    anchor = int(src.tokens.flatten()[0])
    cos = torch.nn.functional.cosine_similarity(table, table[anchor][None], dim=-1)
    cos[anchor] = float("nan")
    near, far = int(cos.nan_to_num(-2).argmax()), int(cos.nan_to_num(2).argmin())
    logits = torch.full((1, 1, 8192), -1e9)
    logits[0, 0, far], logits[0, 0, near] = 1.0, 0.0  # two candidates: the greedy one far from the anchor
    d = 1 - float(cos[near])
    for tau, want in [(d + 1e-4, near), (d - 1e-4, far)]:  # within tau: the near one; else the greedy fallback
        params = ATMParams.from_settings(ATMSettings(K=2, tau=tau), 1, 8192)
        pick = AnchorPicker(cache, params, SamplingSettings(top_k=0), torch.zeros(1, dtype=torch.long), None)
        assert int(pick(torch.zeros(1, dtype=torch.long), logits)) == want


def test_the_nodes_generate_decode_and_edit_from_a_models_folder(folder, tmp_path, monkeypatch):
    from ar_edit_pack.core.files import model_files
    from ar_edit_pack.nodes import lumina as nodes

    models = tmp_path / "models"
    shutil.copytree(folder, models / "autoregressive" / "Lumina-mGPT-tiny")
    save_tiny_chameleon_vqgan(models / "vq" / "chameleon-tiny")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(models))
    monkeypatch.setattr(model_files, "hub_reachable", lambda timeout=3.0: False)
    choices = nodes.LuminaLoader.INPUT_TYPES()["required"]["model_name"][0]
    assert "Lumina-mGPT-tiny" in choices and "Lumina-mGPT-7B-768" in choices
    missing = nodes.LuminaLoader.VALIDATE_INPUTS("Lumina-mGPT-7B-768")  # official: where from, where to
    assert "huggingface.co/Alpha-VLLM/Lumina-mGPT-7B-768" in missing and "models/autoregressive" in missing
    assert "not in models/vq" in nodes.ChameleonVQGANLoader.VALIDATE_INPUTS("chameleon")
    assert "not a path out of it" in str(nodes.LuminaLoader.VALIDATE_INPUTS("../../etc"))
    (model,) = nodes.LuminaLoader().load("Lumina-mGPT-tiny", "fp32")
    (vqgan,) = nodes.ChameleonVQGANLoader().load("chameleon-tiny")
    (codes,) = nodes.LuminaGenerate().generate(model, "a red circle\na blue star", 64, 32, 1, 7, 3.0, 1.0, 1)
    assert codes.tokens.shape == (2, 2, 4) and codes.seeds.tolist() == [7, 8]
    (image,) = nodes.LuminaCodesToImage().decode(vqgan, codes)
    assert image.shape == (2, 32, 64, 3) and 0 <= float(image.min()) and float(image.max()) <= 1
    (again,) = nodes.LuminaImageToCodes().encode(vqgan, image, 0, 0)
    assert again.tokens.shape == (2, 2, 4)
    edited, changed, locked = nodes.LuminaEdit().edit(model, codes, "a red circle\na blue star", "atm", 0, True,
                                                      3.0, 1.0, 1, -1, 0.6, -1, "greedy")
    assert locked == 1.0 and float(changed.sum()) == 0 and torch.equal(edited.tokens, codes.tokens)
    mask = torch.zeros(1, 32, 64)
    mask[:, :, :32] = 1
    edited, changed, _ = nodes.LuminaEdit().edit(model, codes, "a green square", "atm", 0, True, 3.0, 1.0, 1, -1,
                                                 0.6, -1, "greedy", mask=mask)
    assert float(changed[:, :, 32:].sum()) == 0 and torch.equal(edited.tokens[..., 2:], codes.tokens[..., 2:])
    images, grid, swept = nodes.LuminaSweep().sweep(model, vqgan, codes, "a green square", "atm", "0.1, 0.9", "-1",
                                                    "0.6", "1, 3", "0", False, "greedy", 1.0, 0, 0, mask=mask)
    assert images.shape == (8, 32, 64, 3) and grid.shape[0] == 1 and swept.tokens.shape == (8, 2, 4)
    # 2 columns (tau) x 4 rows of cells enlarged 6x with crisp pixels: each source pixel a 6 x 6 block
    assert grid.shape[1] > 4 * 192 and grid.shape[2] > 2 * 384
    block = grid[0, 4:10, 4:10]
    assert torch.allclose(block, images[0, 0, 0].expand_as(block), atol=1 / 255)
    assert torch.equal(swept.tokens[:, :, 2:], codes.tokens.repeat_interleave(4, 0)[:, :, 2:])  # the mask holds
    one, _, _ = nodes.LuminaEdit().edit(model, codes, "a green square", "atm", 0, False, 3.0, 1.0, 0, -1, 0.6, 0.9,
                                        "greedy", mask=mask)
    assert torch.equal(swept.tokens[3], one.tokens[0])  # seed 0, tau 0.9 at cfg 3: the first item's last setting


def test_a_sweep_row_equals_the_single_edit_with_its_setting(model):
    from ar_edit_pack.core.sweeps import expand

    captions = ["a red circle at the top left", "a blue star at the bottom right"]
    sampled = SamplingSettings(cfg_scale=2.0, temperature=1.0, top_k=0)
    cache = lumina.source_cache(model, lumina.generate(model, captions, 64, 64, [1, 2], sampled))
    settings, varying = expand([16, 64], [0.6], [0.1, 0.6], [4, 5], [1.0, 3.0], "greedy", "sampled")
    assert len(settings) == 16 and varying == {"K", "tau", "seed", "cfg"}
    swept = lumina.sweep(model, cache, ["a green square"], settings, "atm", sampled).tokens.view(2, 16, -1)
    for item in range(2):
        for j in (0, 5, 10, 15):
            s = settings[j]
            single = lumina.edit(model, cache.select(torch.tensor([item])), ["a green square"], [s.seed], "atm",
                                 SamplingSettings(s.cfg_scale, 1.0, 0), s.atm)
            assert torch.equal(swept[item, j], single.tokens[0])
    assert len({tuple(r.tolist()) for r in swept[0]}) > 1  # the settings do differ


@pytest.mark.parametrize("method", ["atm", "naive"])
def test_draft_decoding_gives_the_codes_of_one_token_per_pass_in_fewer_passes(model, method):
    from ar_edit_pack.core.llamagen.atm import ATMSettings
    from ar_edit_pack.core.lumina.generate import DecodeStats

    captions = ["a red circle at the top left", "a blue star at the bottom right", "a green square"]
    sampled = SamplingSettings(cfg_scale=2.0, temperature=1.0, top_k=0)
    src = lumina.generate(model, captions, 64, 96, [1, 2, 3], sampled)
    cache = lumina.source_cache(model, src)
    mask = torch.zeros(3, 64, 96)
    mask[0, :32, :32] = mask[1, 32:, 48:] = mask[2, :, 80:] = 1  # each row its own region
    # a loose row (tau 2: always the nearest candidate), a middling and a strict one: drafts hold and fail
    atm = [ATMSettings(K=64, tau=2.0, candidates="sampled"), ATMSettings(K=8, tau=0.5), ATMSettings(K=4, tau=0.05)]
    for region, edit_captions in ((None, captions), (mask, ["a green square in the middle"] * 3)):
        runs = []
        for chunk in (1, 32):
            stats = DecodeStats()
            result = lumina.edit(model, cache, edit_captions, [7, 8, 9], method, sampled, atm, region,
                                 max_chunk=chunk, stats=stats)
            runs.append((result.tokens, stats.passes))
        (one, passes_one), (drafted, passes_drafted) = runs
        assert torch.equal(one, drafted)
        assert passes_one == 1 + 4 * 7 - 1  # the prefill, then one pass per code and row end
        if region is not None or method == "atm":
            assert passes_drafted < passes_one
    one_row = lumina.generate(model, captions[:1], 64, 96, [1], GREEDY)
    stats = DecodeStats()  # greedy under its own prompt: every draft holds, the chunks double
    locked = lumina.edit(model, lumina.source_cache(model, one_row), captions[:1], [7], "atm", GREEDY, stats=stats)
    assert torch.equal(locked.tokens.view(1, 4, 6), one_row.tokens) and stats.passes <= 8


def test_a_bf16_folder_as_released_loads_in_bf16_within_rounding_of_fp32(tmp_path):
    """The released folders are bf16: loaded in the file's own dtype, the logits stay within bf16 rounding of the
    same weights in fp32, and greedy generation keeps the layout."""
    bf16 = lumina.load_lumina(save_tiny_lumina(tmp_path / "bf16", dtype=torch.bfloat16))
    assert bf16.lm_head.weight.dtype == torch.bfloat16
    ref = lumina.load_lumina(tmp_path / "bf16", dtype=torch.float32)  # the same bf16 weights, computed in fp32
    ids = torch.tensor([lumina.encode_prompts(bf16, ["a red circle"], 64, 64)[0]])
    pos = torch.arange(ids.shape[1])[None]
    out = []
    for m in (bf16, ref):
        cache = m.new_cache(1, ids.shape[1])
        out.append(m.forward_tokens(ids, pos, torch.arange(ids.shape[1]), cache))
    scale = out[1].abs().max()
    assert out[0].dtype == torch.float32 and (out[0] - out[1]).abs().max() <= 0.02 * scale  # measured 0.5%
    codes = lumina.generate(bf16, ["a red circle"], 64, 64, [3], GREEDY)
    assert codes.tokens.shape == (1, 4, 4) and int(codes.tokens.max()) < bf16.vocab.n_codes
