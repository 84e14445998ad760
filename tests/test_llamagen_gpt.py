import hashlib
import os

import pytest
import torch

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.llamagen.generate import SamplePicker, decode_tokens, generate, teacher_forced_logits
from ar_edit_pack.core.llamagen.gpt import (GPT_PRESETS, GPTConfig, LlamaGenGPT, apply_rope, config_from_state_dict,
                                            rope_table_2d)
from ar_edit_pack.core.sampling import SamplingSettings

from tiny_models import TINY_HEADS, save_bare_safetensors, save_official_pt, tiny_gpt, tiny_vq


def caption_condition(cfg, batch, seed=0, valid=(3, 8, 5)):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, cfg.cls_token_num, cfg.caption_dim, generator=g)
    mask = torch.zeros(batch, cfg.cls_token_num, dtype=torch.bool)
    for b in range(batch):
        mask[b, cfg.cls_token_num - valid[b % len(valid)]:] = True  # left padding, as LlamaGen lays out
    return Condition(feats * mask[..., None], mask)


def test_official_sizes_match_published_table():
    # (ffn hidden, parameter count in millions, roughly) from the LlamaGen paper / sheet
    expected = {"GPT-B": (2048, 111), "GPT-L": (2816, 343), "GPT-XL": (3584, 775), "GPT-XXL": (4096, 1400),
                "GPT-3B": (8704, 3100)}
    for name, (ffn, millions) in expected.items():
        cfg = GPTConfig.preset(name, model_type="c2i", cls_token_num=1)
        assert cfg.hidden_dim == ffn, name
        with torch.device("meta"):
            n = sum(p.numel() for p in LlamaGenGPT(cfg).parameters())
        assert abs(n / 1e6 - millions) / millions < 0.03, (name, n)


def test_t2i_xl_state_dict_names_and_shapes_and_inference():
    cfg = GPTConfig.preset("GPT-XL")
    with torch.device("meta"):
        sd = LlamaGenGPT(cfg).state_dict()
    assert sd["cls_embedding.uncond_embedding"].shape == (120, 2048)
    assert sd["cls_embedding.cap_proj.fc1.weight"].shape == (1280, 2048)
    assert sd["cls_embedding.cap_proj.fc2.weight"].shape == (1280, 1280)
    assert sd["tok_embeddings.weight"].shape == (16384, 1280)
    assert sd["layers.35.attention.wqkv.weight"].shape == (3840, 1280)
    assert sd["layers.0.feed_forward.w1.weight"].shape == (3584, 1280)
    assert sd["layers.0.feed_forward.w2.weight"].shape == (1280, 3584)
    assert sd["output.weight"].shape == (16384, 1280)
    assert not any("bias" in k for k in sd)
    inferred = config_from_state_dict(sd, image_size=512)
    assert inferred.n_head == 20 and inferred.n_layer == 36 and inferred.hidden_dim == 3584
    assert inferred.model_type == "t2i" and inferred.cls_token_num == 120 and inferred.grid_size == 32


def test_rope_matches_complex_rotation_and_zero_prefix():
    grid, hd, prefix = 4, 16, 3
    table = rope_table_2d(grid, hd, 10000.0, prefix)
    assert table.shape == (prefix + grid * grid, hd // 2, 2)
    assert table[:prefix].abs().sum() == 0
    x = torch.randn(1, prefix + grid * grid, 2, hd)
    out = apply_rope(x, table)
    assert out[:, :prefix].abs().sum() == 0  # prefix queries/keys become zero vectors
    # Independent reference: complex multiply, pair m < hd/4 rotated by row*f_m, the rest by col*f_m.
    freqs = 10000.0 ** (-torch.arange(hd // 4).float() * 2 / (hd // 2))
    for cell in (0, 5, 15):
        i, j = divmod(cell, grid)
        angles = torch.cat([i * freqs, j * freqs])
        z = torch.view_as_complex(x[0, prefix + cell].reshape(2, hd // 2, 2).contiguous())
        ref = torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).reshape(2, hd)
        torch.testing.assert_close(out[0, prefix + cell], ref, atol=1e-5, rtol=1e-5)


def test_head_count_of_a_custom_size_file_is_stated_never_guessed(tmp_path):
    # width 128 x 2 layers matches no preset; with 4 heads a 64-wide-head guess (2 heads) gives wrong logits
    model = tiny_gpt(dim=128, n_head=4)
    path = save_official_pt(model, str(tmp_path / "custom_64.pt"))
    with pytest.raises(CheckpointError, match="matches no LlamaGen preset.*n_head"):
        loaders.load_gpt(path, precision="fp32")
    cond = caption_condition(model.cfg, 2)
    tokens = torch.randint(0, model.cfg.vocab_size, (2, model.cfg.num_image_tokens))
    loaded = loaders.load_gpt(path, precision="fp32", n_head=4)
    assert loaded.cfg.n_head == 4
    torch.testing.assert_close(teacher_forced_logits(loaded, cond, tokens), teacher_forced_logits(model, cond, tokens))
    with pytest.raises(CheckpointError, match="does not divide"):
        loaders.load_gpt(path, n_head=3)
    # converted files (and our own saves) store the count: no option needed, a contradicting one is refused
    from ar_edit_pack.core.__main__ import main
    assert main(["convert", path, str(tmp_path / "custom.safetensors"), "--n-head", "4"]) == 0
    converted = loaders.load_gpt(tmp_path / "custom.safetensors", precision="fp32")
    torch.testing.assert_close(teacher_forced_logits(converted, cond, tokens), teacher_forced_logits(model, cond, tokens))
    with pytest.raises(CheckpointError, match="stores n_head 4, but n_head 2 was given"):
        loaders.load_gpt(tmp_path / "custom.safetensors", n_head=2)
    # no test size hides in the table of official ones: 64 wide x 2 layers with 8 heads is refused, not read as 4
    eight = tiny_gpt(n_head=8)
    p8 = save_official_pt(eight, str(tmp_path / "t2i_eight_64.pt"))
    with pytest.raises(CheckpointError, match="width 64 x 2 layers matches no LlamaGen preset.*n_head"):
        loaders.load_gpt(p8, precision="fp32")
    c8 = caption_condition(eight.cfg, 2)
    t8 = torch.randint(0, eight.cfg.vocab_size, (2, eight.cfg.num_image_tokens))
    torch.testing.assert_close(teacher_forced_logits(loaders.load_gpt(p8, precision="fp32", n_head=8), c8, t8),
                               teacher_forced_logits(eight, c8, t8))
    assert "GPT-tiny" not in GPT_PRESETS


@pytest.mark.parametrize("fmt", ["pt-model", "pt-module", "pt-state_dict", "pt-bare", "safetensors"])
def test_checkpoint_round_trip_gives_identical_logits(tmp_path, fmt):
    model = tiny_gpt()
    if fmt == "safetensors":
        path = save_bare_safetensors(model, str(tmp_path / "t2i_tiny_64.safetensors"))
    else:
        wrapper = fmt.split("-")[1]
        path = save_official_pt(model, str(tmp_path / "t2i_tiny_64.pt"), None if wrapper == "bare" else wrapper)
    loaded = loaders.load_gpt(path, precision="fp32", n_head=TINY_HEADS)
    assert loaded.cfg.grid_size == 4  # from the "_64" in the file name
    cond = caption_condition(model.cfg, 3)
    tokens = torch.randint(0, 64, (3, 16))
    torch.testing.assert_close(teacher_forced_logits(loaded, cond, tokens, 3.0),
                               teacher_forced_logits(model, cond, tokens, 3.0), rtol=0, atol=0)
    # the null caption is the file's, not a fresh random one
    assert torch.equal(loaded.cls_embedding.uncond_embedding, model.cls_embedding.uncond_embedding)


def test_c2i_config_inferred_and_null_class(tmp_path):
    model = tiny_gpt(model_type="c2i", num_classes=10, cls_token_num=1)
    path = save_official_pt(model, str(tmp_path / "c2i_tiny_64.pt"))
    loaded = loaders.load_gpt(path, n_head=TINY_HEADS)
    assert loaded.cfg.model_type == "c2i" and loaded.cfg.num_classes == 10
    cond = Condition(torch.tensor([1, 7]))
    tokens = generate(loaded, cond, SamplingSettings(cfg_scale=4.0, top_k=0), [5, 6])
    assert torch.equal(tokens, generate(model, cond, SamplingSettings(cfg_scale=4.0, top_k=0), [5, 6]))
    with pytest.raises(ValueError, match="class labels"):
        generate(loaded, Condition(torch.tensor([10])), SamplingSettings(), [0])


def test_strict_loading_names_missing_and_unexpected_keys(tmp_path):
    state = tiny_gpt().state_dict()
    del state["layers.1.ffn_norm.weight"]
    del state["cls_embedding.uncond_embedding"]
    state["extra_head.weight"] = torch.zeros(1)
    state["layers.0.attention.wo.weight"] = torch.zeros(64, 32)
    torch.save({"model": state}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError) as e:
        loaders.load_gpt(tmp_path / "broken.pt", image_size=64, n_head=TINY_HEADS)
    msg = str(e.value)
    assert "missing keys (2)" in msg
    assert "layers.1.ffn_norm.weight" in msg and "cls_embedding.uncond_embedding" in msg
    assert "unexpected keys (1): extra_head.weight" in msg
    assert "layers.0.attention.wo.weight: file (64, 32) vs model (64, 64)" in msg


def test_wrong_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="could not be read"):
        loaders.load_gpt(junk)
    with pytest.raises(CheckpointError, match="not found"):
        loaders.load_gpt(tmp_path / "missing.pt")
    vq_path = save_official_pt(tiny_vq(), str(tmp_path / "vq.pt"))
    with pytest.raises(CheckpointError, match="VQ image tokenizer"):
        loaders.load_gpt(vq_path)
    # pickles that execute code are refused
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))
    torch.save({"model": {"x": torch.zeros(1)}, "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        loaders.load_gpt(tmp_path / "evil.pt")


def test_convert_to_safetensors_keeps_logits_and_source(tmp_path):
    model = tiny_gpt()
    src = save_official_pt(model, str(tmp_path / "t2i_tiny_64.pt"))
    digest = hashlib.sha256(open(src, "rb").read()).hexdigest()
    dst = loaders.convert_to_safetensors(src, n_head=TINY_HEADS)
    assert dst.endswith(".safetensors")
    assert hashlib.sha256(open(src, "rb").read()).hexdigest() == digest
    loaded = loaders.load_gpt(dst)  # the head count is stored now
    assert loaded.cfg == loaders.load_gpt(src, n_head=TINY_HEADS).cfg
    cond = caption_condition(model.cfg, 2)
    tokens = torch.randint(0, 64, (2, 16))
    assert torch.equal(teacher_forced_logits(loaded, cond, tokens), teacher_forced_logits(model, cond, tokens))


def test_precision_choice(tmp_path):
    path = save_official_pt(tiny_gpt(), str(tmp_path / "t2i_tiny_64.pt"))
    assert loaders.load_gpt(path, precision="bf16", n_head=TINY_HEADS).dtype == torch.bfloat16
    assert loaders.load_gpt(path, precision="auto", device="cpu", n_head=TINY_HEADS).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        loaders.load_gpt(path, precision="int3", n_head=TINY_HEADS)


def test_image_size_from_file_name():
    assert loaders.image_size_from_name("/x/t2i_XL_stage2_512.pt") == 512
    assert loaders.image_size_from_name("t2i_XL_stage1_256.pt") == 256
    assert loaders.image_size_from_name("c2i_XXL_384.pt") == 384
    assert loaders.image_size_from_name("my_model.pt") is None


# ---- generation ---------------------------------------------------------------------------------------

def recording_picker(settings, seeds):
    base, seen = SamplePicker(settings, seeds), []

    def pick(steps, logits):
        seen.append(logits[:, 0].clone())  # one step per pass
        return base(steps, logits)
    return pick, seen


@pytest.mark.parametrize("cfg_scale", [1.0, 4.0])
def test_kv_cache_decoding_equals_full_forward(cfg_scale):
    model = tiny_gpt()
    cond = caption_condition(model.cfg, 3)
    pick, seen = recording_picker(SamplingSettings(top_k=0), torch.tensor([1, 2, 3]))
    tokens = decode_tokens(model, cond, cfg_scale, pick)
    incremental = torch.stack(seen, 1)
    full = teacher_forced_logits(model, cond, tokens, cfg_scale)
    torch.testing.assert_close(incremental, full, atol=1e-4, rtol=1e-4)


def test_cfg_halves_combine_as_specified():
    """guided = u + s (c - u), with u from the learned null caption under the SAME caption mask."""
    model = tiny_gpt()
    cond = caption_condition(model.cfg, 2)
    pick, seen = recording_picker(SamplingSettings(top_k=0), torch.tensor([4, 5]))
    tokens = decode_tokens(model, cond, 2.5, pick)
    c = teacher_forced_logits(model, cond, tokens)
    u = teacher_forced_logits(model, Condition(model.null_condition(2), cond.mask), tokens)
    torch.testing.assert_close(torch.stack(seen, 1), u + 2.5 * (c - u), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(c, u, atol=1e-3)  # the two halves really differ


def test_seeds_determinism_and_batch_independence():
    model = tiny_gpt()
    cond = caption_condition(model.cfg, 3)
    s = SamplingSettings(cfg_scale=3.0, top_k=0)
    a = generate(model, cond, s, [11, 12, 13])
    assert torch.equal(a, generate(model, cond, s, [11, 12, 13]))
    b = generate(model, cond, s, [21, 22, 23])
    assert not torch.equal(a, b)
    # row j of a batch equals the single run with the same seed
    single = generate(model, Condition(cond.raw[1:2], cond.mask[1:2]), s, [12])
    assert torch.equal(single[0], a[1])


def test_top_k_one_equals_greedy():
    model = tiny_gpt()
    cond = caption_condition(model.cfg, 2)
    greedy = generate(model, cond, SamplingSettings(cfg_scale=2.0, temperature=0.0), [1, 2])
    topk1 = generate(model, cond, SamplingSettings(cfg_scale=2.0, top_k=1), [7, 9])
    assert torch.equal(greedy, topk1)
    # greedy really is the argmax of the guided logits at every step
    full = teacher_forced_logits(model, cond, greedy, 2.0)
    assert torch.equal(full.argmax(-1), greedy)


def test_sampling_respects_top_k_support():
    model = tiny_gpt()
    cond = caption_condition(model.cfg, 4)
    tokens = generate(model, cond, SamplingSettings(cfg_scale=2.0, top_k=3), [0, 1, 2, 3])
    full = teacher_forced_logits(model, cond, tokens, 2.0)
    top3 = full.topk(3, dim=-1).indices
    assert (top3 == tokens[..., None]).any(-1).all()


def test_bad_parameters_and_mismatched_condition():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="top_p"):
        generate(model, caption_condition(model.cfg, 1), SamplingSettings(top_p=0.0), [0])
    with pytest.raises(ValueError, match="temperature"):
        generate(model, caption_condition(model.cfg, 1), SamplingSettings(temperature=-1), [0])
    wrong = Condition(torch.randn(1, 8, 16), torch.ones(1, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="text encoder does not match"):
        generate(model, wrong, SamplingSettings(), [0])
    with pytest.raises(ValueError, match="one seed per batch row"):
        generate(model, caption_condition(model.cfg, 2), SamplingSettings(), [0])
