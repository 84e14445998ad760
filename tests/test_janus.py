"""Janus-Pro: both checkpoint layouts load strictly to the same model; the cached CFG loop is the full forward's;
prompts, padding and drafts change nothing they should not. Parity with deepseek-ai/Janus: bench/parity_janus.py."""
import json
import os

import pytest
import torch

from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.janus import model as janus_model
from ar_edit_pack.core.janus.files import load_janus
from ar_edit_pack.core.janus.generate import decode_codes
from ar_edit_pack.core.janus.prompt import prompt_text
from ar_edit_pack.core.llamagen.generate import DecodeStats, SamplePicker
from ar_edit_pack.core.sampling import SamplingSettings

from tiny_models import JANUS_CAPTIONS, save_tiny_janus

GREEDY = SamplingSettings(temperature=0.0, top_k=0)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("janus")
    return {"original": save_tiny_janus(root / "one"), "shards": save_tiny_janus(root / "two", shards=2),
            "transformers": save_tiny_janus(root / "hf", layout="transformers")}


def test_every_layout_loads_the_same_model_and_drops_only_what_drawing_never_reads(folders):
    loaded = {k: load_janus(f) for k, f in folders.items()}
    ref_model, ref_vq = loaded["original"]
    assert set(ref_model.state_dict()) == set(loaded["transformers"][0].state_dict())
    for name, (m, vq) in loaded.items():
        for k, v in ref_model.state_dict().items():
            assert torch.equal(m.state_dict()[k], v), (name, k)
        for k, v in ref_vq.state_dict().items():
            if k != "quantize.codebook_used":
                assert torch.equal(vq.state_dict()[k], v), (name, k)
    assert not any(k.startswith(("vision_model", "aligner", "language_model.lm_head")) for k in ref_model.state_dict())
    assert ref_model.cfg.grid_size == 4 and ref_model.tokenizer.image_start_id is not None


def test_a_leftover_or_missing_tensor_is_named(tmp_path):
    save_tiny_janus(tmp_path / "extra", extra={"gen_head.extra.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unexpected keys.*gen_head.extra.weight"):
        load_janus(tmp_path / "extra")
    folder = save_tiny_janus(tmp_path / "missing")
    state = torch.load(os.path.join(folder, "pytorch_model.bin"), weights_only=True)
    del state["gen_aligner.layers.2.bias"]
    torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    with pytest.raises(CheckpointError, match="missing keys.*gen_aligner.layers.2.bias"):
        load_janus(folder)


def test_a_folder_that_is_not_janus_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(ValueError, match="not a Janus-Pro config"):
        load_janus(tmp_path)
    folder = save_tiny_janus(tmp_path / "crossed")
    cfg = json.load(open(os.path.join(folder, "config.json")))
    cfg["gen_vision_config"]["params"]["image_token_size"] = 128  # a head for 128 codes, a VQ of 64
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    with pytest.raises(CheckpointError, match="shape mismatches|do not belong together"):
        load_janus(folder)


def test_the_prompt_is_the_official_template_and_the_cfg_row_pads_between_bos_and_image_start(folders):
    assert prompt_text("  a cat ") == "<|User|>: a cat\n\n<|Assistant|>:<begin_of_image>"
    tok = load_janus(folders["original"])[0].tokenizer
    ids = tok.prompt_ids("a cat")
    assert ids[0] == tok.bos_id and ids[-1] == tok.image_start_id and len(ids) == 8
    assert tok.unconditional(ids) == [tok.bos_id] + [tok.pad_id] * 6 + [tok.image_start_id]
    with pytest.raises(ValueError, match="empty"):
        tok.prompt_ids(" ... ")


def full_forward_guided(model, ids, codes, cfg):
    tok = model.tokenizer
    c = model(torch.tensor([ids]), codes)
    u = model(torch.tensor([tok.unconditional(ids)]), codes)
    return (u + cfg * (c - u)).float() if cfg != 1 else c.float()


@pytest.mark.parametrize("cfg", [1.0, 5.0])
def test_cached_cfg_decoding_is_the_full_forward(folders, cfg):
    model = load_janus(folders["original"])[0]
    ids = model.tokenizer.prompt_ids(JANUS_CAPTIONS[1])
    codes = decode_codes(model, [ids], cfg, SamplePicker(GREEDY, torch.zeros(1)))
    assert codes.shape == (1, 16)
    with torch.no_grad():
        assert torch.equal(full_forward_guided(model, ids, codes, cfg).argmax(-1), codes)


def test_prompts_of_different_lengths_in_one_batch_are_each_their_own_run(folders):
    model = load_janus(folders["original"])[0]
    prompts = [model.tokenizer.prompt_ids(c) for c in JANUS_CAPTIONS]
    assert len({len(p) for p in prompts}) == 3
    seeds = torch.tensor([3, 4, 5])
    settings = SamplingSettings(temperature=1.0, top_k=0)
    batch = decode_codes(model, prompts, torch.tensor([5.0, 1.0, 2.5]), SamplePicker(settings, seeds))
    for i, p in enumerate(prompts):
        alone = decode_codes(model, [p], [5.0, 1.0, 2.5][i], SamplePicker(settings, seeds[i:i + 1]))
        assert torch.equal(alone[0], batch[i])
    again = decode_codes(model, prompts, torch.tensor([5.0, 1.0, 2.5]), SamplePicker(settings, seeds))
    assert torch.equal(again, batch)  # a seed gives the same picture


def test_draft_decoding_gives_the_same_codes_in_fewer_passes(folders):
    model = load_janus(folders["original"])[0]
    prompts = [model.tokenizer.prompt_ids(c) for c in JANUS_CAPTIONS[:2]]
    settings, seeds = SamplingSettings(temperature=1.0, top_k=0), torch.tensor([7, 8])
    plain = decode_codes(model, prompts, 5.0, SamplePicker(settings, seeds))
    draft = plain.clone()
    draft[:, 9:] = torch.randint(0, 64, (2, 7))  # right for the first nine codes, then a wrong guess
    stats = DecodeStats()
    fast = decode_codes(model, prompts, 5.0, SamplePicker(settings, seeds), draft=draft, stats=stats)
    assert torch.equal(fast, plain) and stats.passes < 16
    keep = torch.zeros(2, 16, dtype=torch.bool)
    keep[:, :8] = True  # outside a mask: the source's codes, whatever the logits
    masked = decode_codes(model, prompts, 5.0, SamplePicker(settings, seeds, keep, draft), draft=draft, forced=keep)
    single = decode_codes(model, prompts, 5.0, SamplePicker(settings, seeds, keep, draft))
    assert torch.equal(masked, single) and torch.equal(masked[keep], draft[keep])


def test_bf16_rope_rounds_the_inverse_frequencies_as_the_official_bf16_model_does():
    pos = torch.tensor([[600]])
    cos32, _ = janus_model.rope(pos, 16, 10000.0, torch.float32)
    cos16, _ = janus_model.rope(pos, 16, 10000.0, torch.bfloat16)
    inv = (1.0 / 10000.0 ** (torch.arange(0, 16, 2).float() / 16)).to(torch.bfloat16).float()
    expected = torch.cos(600 * torch.cat([inv, inv])).to(torch.bfloat16)
    assert torch.equal(cos16[0, 0, 0], expected)
    assert (cos16.float() - cos32).abs().max() > 0.01  # the rounding is not negligible that far along


def test_pipeline_generates_edits_and_sweeps_on_the_llamagen_rules(folders):
    from ar_edit_pack.core.defaults import defaults
    from ar_edit_pack.core.llamagen.atm import ATMSettings
    from ar_edit_pack.core.pipelines import janus
    from ar_edit_pack.core.sweeps import SweepSetting

    model, vq = load_janus(folders["shards"])
    assert defaults(model, "sampling").cfg_scale == 5.0 and defaults(model, "atm").K == 150
    source = janus.generate(model, [JANUS_CAPTIONS[0]], [1])
    assert source.tokens.shape == (1, 4, 4)
    images = janus.decode(vq, source)
    assert images.shape == (1, 3, 64, 64) and 0 <= float(images.min()) and float(images.max()) <= 1
    cache = janus.source_cache(source, vq)
    keep_all = ATMSettings(K=64, alpha=0.0, tau=1e9, candidates="distinct")  # all codes, any distance accepted
    same = janus.edit(model, cache, JANUS_CAPTIONS[2], [5], "atm", atm=keep_all)
    assert torch.equal(same.tokens, source.tokens.view(1, -1)) and float(same.locked_fraction) == 1.0
    mask = torch.zeros(1, 64, 64)
    mask[:, :16] = 1  # the top row of codes may change
    naive = janus.edit(model, cache, JANUS_CAPTIONS[2], [5], "naive", mask=mask)
    assert torch.equal(naive.tokens.view(1, 4, 4)[:, 1:], source.tokens[:, 1:])
    settings = [SweepSetting(seed=s, atm=ATMSettings(K=k, tau=0.5), cfg_scale=c) for s, k, c in
                ((0, 8, 5.0), (1, 32, 2.0), (2, 64, 1.0))]
    rows = janus.sweep(model, cache, JANUS_CAPTIONS[1], settings)
    for j, s in enumerate(settings):
        one = janus.edit(model, cache, JANUS_CAPTIONS[1], [s.seed], "atm", atm=s.atm, cfg_scale=s.cfg_scale)
        assert torch.equal(rows.tokens[j], one.tokens[0])
    with pytest.raises(ValueError, match="code grid"):
        janus.edit(model, janus.source_cache(janus.llamagen.encode(vq, images.permute(0, 2, 3, 1), 32), vq), "a cat", [0])


def test_nodes_load_draw_and_edit_through_the_shared_token_nodes(tmp_path, monkeypatch):
    """AR Janus-Pro Loader lists the folder and gives the model and its VQ tokenizer; the codes it draws go through
    AR Edit Source Cache and AR Tokens to Image like LlamaGen's; a keep-everything ATM edit returns the source."""
    from ar_edit_pack import NODE_CLASS_MAPPINGS as N

    root = tmp_path / "models"
    save_tiny_janus(root / "autoregressive" / "janus-tiny")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(root))
    loader = N["ARE_JanusLoader"]
    choices = loader.INPUT_TYPES()["required"]["model_name"][0]
    assert choices[:2] == ["(embedded) shapes-janus", "janus-tiny"] and {"Janus-Pro-1B", "Janus-Pro-7B"} <= set(choices)
    assert loader.VALIDATE_INPUTS("janus-tiny") is True
    assert "not a Janus-Pro folder" in loader.VALIDATE_INPUTS("nothing-here")
    model, tok = loader().load("janus-tiny", "fp32")
    (tokens,) = N["ARE_JanusGenerate"]().generate(model, JANUS_CAPTIONS[0], 2, 3, -1.0, 1.0, -1)
    assert tokens.tokens.shape == (2, 4, 4) and tokens.seeds.tolist() == [3, 4]
    (source,) = N["ARE_SourceCache"]().build(tokens, tok)
    edited, changed, locked = N["ARE_JanusEdit"]().edit(model, source, JANUS_CAPTIONS[2], "atm", 0, True, -1.0, 1.0,
                                                       -1, 64, 0.0, 1e9, "greedy", candidates="distinct")
    assert torch.equal(edited.tokens, tokens.tokens) and locked == 1.0 and float(changed.max()) == 0.0
    (image,) = N["ARE_TokensToImage"]().decode(tok, edited)
    assert image.shape == (2, 64, 64, 3)
    # AR Janus Sweep: every (cfg, seed) as one batch, row item * S + j equal to the single edit with setting j
    (single, _, _) = N["ARE_JanusEdit"]().edit(model, source, JANUS_CAPTIONS[2], "naive", 0, False, 2.0, 1.0, -1, -1,
                                               0.6, -1, "greedy")
    images, grid, swept = N["ARE_JanusSweep"]().sweep(model, tok, source, JANUS_CAPTIONS[2], "naive", "-1", "-1",
                                                      "0.6", "2, 3", "0, 1", False, "greedy", 1.0, -1, 0)
    assert swept.tokens.shape == (8, 4, 4) and images.shape == (8, 64, 64, 3) and grid.shape[-1] == 3
    assert swept.seeds.tolist() == [0, 0, 1, 1] * 2  # settings: seed 0 cfg 2, seed 0 cfg 3, seed 1 cfg 2, ...
    assert torch.equal(swept.tokens[0], single.tokens[0]) and torch.equal(swept.tokens[6], single.tokens[1])
    assert not torch.equal(swept.tokens[0], swept.tokens[2])  # another seed draws other codes
    with pytest.raises(ValueError, match="single source picture"):
        N["ARE_JanusSweep"]().sweep(model, tok, source, JANUS_CAPTIONS[2], "atm", "1", "-1", "0.6", "-1", "0", True,
                                    "greedy", 1.0, -1, 0)
    with pytest.raises(ValueError, match="Janus-Pro model"):
        N["ARE_JanusGenerate"]().generate(tok, "a cat", 1, 0, -1.0, 1.0, -1)


def _listing(folder):
    return {n: os.path.getsize(os.path.join(folder, n)) for n in sorted(os.listdir(folder))}


@pytest.mark.parametrize("shards", [1, 2])
def test_convert_writes_a_safetensors_folder_that_loads_to_the_same_model_and_leaves_the_source(tmp_path, shards):
    from ar_edit_pack.core.__main__ import main
    from ar_edit_pack.core.janus.files import convert_folder

    src = save_tiny_janus(tmp_path / "Janus-Pro-tiny", shards=shards)
    if shards == 2:  # as in a hub cache snapshot: the tokenizer a link to a blob outside the folder
        blob = tmp_path / "blobs" / "tok"
        blob.parent.mkdir()
        os.replace(os.path.join(src, "tokenizer.json"), blob)
        os.symlink(blob, os.path.join(src, "tokenizer.json"))
    before = _listing(src)
    assert main(["convert", str(src)]) == 0
    dst = str(src) + "-safetensors"
    assert _listing(src) == before  # the source folder as it was
    files = set(os.listdir(dst))
    assert not any(n.endswith(".bin") for n in files) and {"config.json", "tokenizer.json"} <= files
    assert not os.path.islink(os.path.join(dst, "tokenizer.json"))  # a file of its own: the new folder stands alone
    assert ({"model.safetensors"} <= files if shards == 1 else
            {"model.safetensors.index.json", "model-00001-of-00002.safetensors"} <= files)
    (a, vq_a), (b, vq_b) = load_janus(src), load_janus(dst)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    assert torch.equal(vq_a.quantize.embedding.weight, vq_b.quantize.embedding.weight)
    ids = a.tokenizer.prompt_ids(JANUS_CAPTIONS[0])
    assert b.tokenizer.prompt_ids(JANUS_CAPTIONS[0]) == ids
    codes = decode_codes(a, [ids], 5.0, SamplePicker(GREEDY, torch.zeros(1)))
    assert torch.equal(decode_codes(b, [ids], 5.0, SamplePicker(GREEDY, torch.zeros(1))), codes)
    with pytest.raises(ValueError, match="exists already"):
        convert_folder(src)
    with pytest.raises(ValueError, match="source folder"):
        convert_folder(src, src)
    with pytest.raises(ValueError, match="source folder"):
        convert_folder(src, os.path.join(src, "inside"))
    with pytest.raises(ValueError, match="nothing to convert"):
        convert_folder(dst, str(tmp_path / "again"))
    half = convert_folder(src, dst, overwrite=True, precision=torch.bfloat16)
    assert half == dst and not os.path.exists(dst + ".partial") and not os.path.exists(dst + ".old")
    assert load_janus(dst)[0].gen_head.vision_head.weight.dtype == torch.bfloat16


def test_convert_refuses_a_damaged_folder_before_writing_anything(tmp_path):
    from ar_edit_pack.core.janus.files import convert_folder

    src = save_tiny_janus(tmp_path / "broken", extra={"language_model.model.layers.9.mlp.up_proj.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="layers.9"):
        convert_folder(src)
    assert not os.path.exists(str(src) + "-safetensors") and not os.path.exists(str(src) + "-safetensors.partial")
