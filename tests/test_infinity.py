"""Infinity transformer, BSQ VAE, next-scale generation and AREdit on tiny models of the official layouts."""
import pytest
import torch
import torch.nn.functional as F

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.infinity.aredit import AREditSettings, aredit_edit, build_source, region_per_scale
from ar_edit_pack.core.infinity.bsq import bits_to_codes, quantize_multiscale
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.infinity.codec import bits_to_images, image_to_bits
from ar_edit_pack.core.infinity.generate import (BitTokens, InfinitySampling, generate, summed_codes,
                                                 teacher_forced, tokens_to_vae_bits, vae_bits_to_tokens)
from ar_edit_pack.core.infinity.model import InfinityConfig, InfinityTransformer, config_from_state_dict, rope_table
from ar_edit_pack.core.infinity.scales import scale_schedule
from ar_edit_pack.core.infinity.vae import BSQVAE, BSQVAEConfig

from tiny_models import TINY_INFINITY, infinity_condition, tiny_infinity, tiny_infinity_vae

SCHED = [(1, 1), (2, 2), (4, 4), (6, 6)]  # the first scales of the square template
PLAIN = InfinitySampling(cfg=1.0, tau=1.0, top_p=1.0)


@pytest.fixture(scope="module")
def model():
    return tiny_infinity()


def _probe(model, cond=None):
    cond = cond or infinity_condition(2, lengths=[5, 3])
    return generate(model, cond, SCHED, InfinitySampling(cfg=2.0, tau=0.7, top_p=0.9), torch.tensor([3, 4]))


# ------------------------------------------------------------------------------------------- layouts

def test_official_layouts_names_and_sizes():
    with torch.device("meta"):
        m2 = InfinityTransformer(InfinityConfig.preset("infinity-2b"))
        m8 = InfinityTransformer(InfinityConfig.preset("infinity-8b"))
    s2, s8 = m2.state_dict(), m8.state_dict()
    assert s2["cfg_uncond"].shape == (512, 2048) and s2["head.weight"].shape == (64, 2048)
    assert s2["block_chunks.7.module.3.sa.scale_mul_1H11"].shape == (1, 16, 1, 1)
    assert s2["block_chunks.0.module.0.ada_gss"].shape == (1, 1, 6, 2048)
    assert s2["text_proj_for_sos.ca.mat_q"].shape == (1, 16, 128) and s2["lvl_embed.weight"].shape == (15, 2048)
    assert "block_chunks.0.module.0.sa.zero_k_bias" in s2 and "shared_ada_lin.1.weight" in s2
    # the official 8B head predicts 2 x 56 bits: 2x2 patchified tokens of the 14-bit VAE (models/infinity.py)
    assert s8["head.weight"].shape == (112, 3584) and s8["word_embed.weight"].shape == (3584, 56)
    assert s8["text_proj_for_sos.ca.mat_q"].shape == (1, 16, 224)
    assert 2.1e9 < sum(v.numel() for v in m2.parameters()) < 2.3e9
    assert 8.2e9 < sum(v.numel() for v in m8.parameters()) < 8.5e9
    assert config_from_state_dict(s2) == m2.cfg and config_from_state_dict(s8) == m8.cfg


def test_rope_positions_are_normalised_to_the_1024_grid():
    cfg = TINY_INFINITY
    rope = rope_table(SCHED, cfg)[:, 21:]  # scale 3 = (6, 6) starts after 1 + 4 + 16 tokens
    half = cfg.head_dim // 2
    inv = 1.0 / (cfg.rope_base ** (torch.arange(0, half, 2).float() / half))
    # scale (6, 6) of the square template (final 64): rows at round(i * 64 / 6) = 0, 11, 21, 32, 43, 53
    rows = torch.tensor([0, 11, 21, 32, 43, 53]).repeat_interleave(6).float()
    cols = torch.tensor([0, 11, 21, 32, 43, 53]).repeat(6).float()
    angles = torch.cat([rows[:, None] * inv, cols[:, None] * inv], -1)
    torch.testing.assert_close(rope[0], angles.cos())
    torch.testing.assert_close(rope[1], angles.sin())


# -------------------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_checkpoint_round_trip_with_the_official_layout(model, tmp_path, fmt):
    path = tmp_path / f"infinity_tiny.{fmt}"
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if fmt == "pth":
        state["attn_bias_for_masking"] = torch.zeros(3, 3)  # derived buffers in official files are dropped
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file(state, str(path))
    loaded = loaders.load_gpt(path, precision="fp32")
    assert isinstance(loaded, InfinityTransformer) and loaded.cfg == model.cfg
    a, b = _probe(model), _probe(loaded)
    assert all(torch.equal(x, y) for x, y in zip(a.bits, b.bits))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.p1, b.p1))


def test_scale_mul_saved_by_flash_builds_loads_in_the_right_layout(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    H = model.cfg.num_heads
    for k in [k for k in state if k.endswith("scale_mul_1H11")]:
        state[k] = state[k].reshape(1, 1, H, 1)  # the custom-kernel layout
    torch.save(state, tmp_path / "flash.pth")
    loaded = loaders.load_gpt(tmp_path / "flash.pth", precision="fp32")
    k = "block_chunks.1.module.0.sa.scale_mul_1H11"
    assert torch.equal(loaded.state_dict()[k], model.state_dict()[k])


def test_missing_and_unexpected_keys_are_named(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    del state["cfg_uncond"]
    state["block_chunks.0.module.0.sa.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        loaders.load_gpt(tmp_path / "bad.pth")
    assert "not an Infinity" in str(e.value) or "cfg_uncond" in str(e.value)
    state["cfg_uncond"] = model.cfg_uncond.clone()
    torch.save(state, tmp_path / "bad2.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): block_chunks.0.module.0.sa.extra"):
        loaders.load_gpt(tmp_path / "bad2.pth")


def test_sharded_folder_loads(model, tmp_path):
    import json
    from safetensors.torch import save_file

    folder = tmp_path / "infinity_8b_weights"
    folder.mkdir()
    state = model.state_dict()
    names = sorted(state)
    parts = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
             "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in parts.items():
        save_file({k: state[k].contiguous() for k in keys}, str(folder / shard))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: shard for shard, keys in parts.items() for k in keys}}))
    loaded = loaders.load_gpt(folder, precision="fp32")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="shard files missing"):
        loaders.load_gpt(folder)


@pytest.mark.parametrize("plain_names", [False, True])
def test_vae_checkpoint_round_trip(tmp_path, plain_names):
    vae = tiny_infinity_vae()
    state = {k: v.clone() for k, v in vae.state_dict().items()}
    if plain_names:  # files saved with the unwrapped conv / norm names
        state = {k.replace(".conv.weight", ".weight").replace(".conv.bias", ".bias")
                 .replace(".norm.weight", ".weight").replace(".norm.bias", ".bias"): v for k, v in state.items()}
    state["quantizer.lfq.mask"] = 2 ** torch.arange(7, -1, -1)
    torch.save({"vae": state}, tmp_path / "vae.pth")
    loaded = loaders.load_vq(tmp_path / "vae.pth")
    assert isinstance(loaded, BSQVAE) and loaded.cfg == vae.cfg
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.encode_latent(x), vae.encode_latent(x))
    del state[next(k for k in state if k.startswith("decoder.up.0"))]
    torch.save({"vae": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="missing keys"):
        loaders.load_vq(tmp_path / "bad.pth")


class _OfficialStyleVAE(torch.nn.Module):
    """Registers modules the way the official BSQ VAE does, including `self.quantize = self.quantizer`, so its
    state_dict() is written exactly as the official training code writes it (the alias repeats every key)."""

    def __init__(self, vae: BSQVAE):
        super().__init__()
        self.encoder, self.decoder = vae.encoder, vae.decoder
        self.quantizer = torch.nn.Module()
        self.quantizer.lfq = torch.nn.Module()
        self.quantizer.lfq.register_buffer("mask", 2 ** torch.arange(vae.cfg.bits - 1, -1, -1))
        self.quantize = self.quantizer


def test_vae_file_with_the_official_quantizer_alias_loads(tmp_path):
    vae = tiny_infinity_vae()
    official = _OfficialStyleVAE(vae).state_dict()
    assert "quantize.lfq.mask" in official and "quantizer.lfq.mask" in official
    torch.save({"vae": official}, tmp_path / "vae.pth")
    loaded = loaders.load_vq(tmp_path / "vae.pth")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.encode_latent(x), vae.encode_latent(x))
    # an alias that is not a copy of its twin, or has no twin, is named, never silently dropped
    bad = dict(official, **{"quantize.lfq.mask": official["quantize.lfq.mask"] + 1})
    torch.save({"vae": bad}, tmp_path / "differs.pth")
    with pytest.raises(CheckpointError, match="'quantize.lfq.mask' differs from 'quantizer.lfq.mask'"):
        loaders.load_vq(tmp_path / "differs.pth")
    orphan = dict(official, **{"quantize.lfq.extra": torch.zeros(2)})
    torch.save({"vae": orphan}, tmp_path / "orphan.pth")
    with pytest.raises(CheckpointError, match="'quantize.lfq.extra' has no 'quantizer.lfq.extra' twin"):
        loaders.load_vq(tmp_path / "orphan.pth")


def test_vae_official_layout():
    with torch.device("meta"):
        v = BSQVAE(BSQVAEConfig.preset("infinity-vae-d32"))
        v8 = BSQVAE(BSQVAEConfig.preset("infinity-vae-d56-f8"))
    s = v.state_dict()
    assert s["encoder.conv_out.conv.weight"].shape == (32, 512, 3, 3)
    assert "encoder.down.3.downsample.conv.conv.weight" in s and "encoder.down.4.downsample.conv.conv.weight" not in s
    assert "decoder.up.4.upsample.conv.conv.weight" in s and "decoder.up.0.upsample.conv.conv.weight" not in s
    assert "decoder.up.0.block.2.norm2.norm.weight" in s and "encoder.down.0.block.2.conv1.conv.weight" not in s
    assert v.stride == 16 and v8.stride == 8 and v8.cfg.bits == 14  # the 8B VAE: 14 bits at stride 8 (vae_type 14)
    assert v8.state_dict()["encoder.conv_out.conv.weight"].shape[0] == 14


# ---------------------------------------------------------------------------------------- the VAE

def test_vae_encode_decode_and_the_residual_identity():
    vae = tiny_infinity_vae()
    img = torch.rand(2, 96, 64, 3)  # portrait: the 1.5 template
    tokens = image_to_bits(vae, img, 256)
    assert tokens.schedule == scale_schedule(256, 1.5) and tokens.origin == "encoded"
    assert [tuple(b.shape) for b in tokens.bits] == [(2, h, w, 8) for h, w in tokens.schedule]
    H, W = tokens.schedule[-1]
    # what decode receives (the sum of the upsampled codes of the bits) equals the quantiser's running sum
    from ar_edit_pack.core.images import comfy_to_model
    x = comfy_to_model(img, (H * 16, W * 16), "center_crop", 16, resample="lanczos")
    bits, summed = quantize_multiscale(vae.encode_latent(x), tokens.schedule)
    assert all(torch.equal(a, b) for a, b in zip(bits, tokens.bits))
    torch.testing.assert_close(summed_codes(tokens.bits, False), summed)
    out = bits_to_images(vae, tokens)
    assert out.shape == (2, 3, H * 16, W * 16) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="resolution"):
        image_to_bits(vae, img, 300)
    with pytest.raises(ValueError, match="needs"):
        image_to_bits(vae, img, 256, resize="none")


def test_patchify_bits_round_trip_and_the_stride_8_vae():
    bits = torch.rand(2, 4, 6, 8) > 0.5
    tok = vae_bits_to_tokens(bits, True)
    assert tok.shape == (2, 2, 3, 32) and torch.equal(tokens_to_vae_bits(tok, True), bits)
    vae8 = tiny_infinity_vae(ch_mult=(1, 1, 1, 1))
    t = image_to_bits(vae8, torch.rand(1, 64, 64, 3), 256)
    assert t.patchify and t.bits[-1].shape == (1, 16, 16, 32) and t.bits[0].shape == (1, 1, 1, 32)
    assert bits_to_images(vae8, t).shape == (1, 3, 256, 256)


# ---------------------------------------------------------------------------------------- generation

@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_kv_cached_generation_equals_a_full_block_causal_forward(model, cfg):
    cond = infinity_condition(2, lengths=[5, 3])
    t = generate(model, cond, SCHED, InfinitySampling(cfg=cfg, tau=0.8, top_p=1.0), torch.tensor([1, 2]))
    final = SCHED[-1]
    inputs, running = [], torch.zeros(2, 8, *final)
    for k in range(len(SCHED) - 1):  # independent of the generator's helpers
        running = running + F.interpolate(bits_to_codes(t.bits[k]), size=final, mode="bilinear", align_corners=False)
        nxt = F.interpolate(running, size=SCHED[k + 1], mode="bilinear", align_corners=False)
        inputs.append(nxt.flatten(2).transpose(1, 2))
    inputs = torch.cat(inputs, 1)
    with torch.no_grad():
        lc = model(cond.raw, cond.mask, inputs, SCHED)
        logits = lc if cfg == 1 else cfg * lc + (1 - cfg) * model(model.null_text(cond.mask), cond.mask, inputs, SCHED)
    p1 = (logits / 0.8).softmax(-1)[..., 1]
    cached = torch.cat([p.reshape(2, -1, 8) for p in t.p1], 1)
    torch.testing.assert_close(cached, p1, atol=1e-5, rtol=1e-4)


def test_seeds_are_per_row_and_reproducible(model):
    cond = infinity_condition(1)
    a = generate(model, cond.repeat_interleave(3), SCHED, PLAIN, torch.tensor([5, 6, 7]))
    b = generate(model, cond, SCHED, PLAIN, torch.tensor([6]))
    assert all(torch.equal(x[1:2], y) for x, y in zip(a.bits, b.bits))
    assert not all(torch.equal(x[0], x[1]) for x in a.bits)


def test_top_p_makes_confident_bits_deterministic(model):
    cond = infinity_condition(1).repeat_interleave(4)
    t = generate(model, cond, SCHED, InfinitySampling(cfg=1.0, tau=1.0, top_p=0.6), torch.arange(4))
    greedy = [(p > 0.5) for p in t.p1]
    confident = [torch.minimum(p, 1 - p) <= 0.4 for p in t.p1]
    assert all(torch.equal(b[c], g[c]) for b, g, c in zip(t.bits, greedy, confident))


def test_teacher_forcing_a_generated_image_gives_its_probabilities(model):
    t = _probe(model)
    p1 = teacher_forced(model, t.condition, BitTokens(t.bits, t.schedule, "encoded"), t.sampling)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(p1, t.p1))


def test_wrong_conditioning_is_a_clear_error(model):
    from ar_edit_pack.core.condition import Condition

    cond = infinity_condition(1)
    with pytest.raises(ValueError, match="encoded for LlamaGen"):
        generate(model, Condition(cond.raw, cond.mask, ["x"]), SCHED, PLAIN, torch.tensor([0]))
    with pytest.raises(ValueError, match="32-d"):
        generate(model, infinity_condition(1, dim=16), SCHED, PLAIN, torch.tensor([0]))
    with pytest.raises(ValueError, match="tau"):
        generate(model, cond, SCHED, InfinitySampling(tau=0.0), torch.tensor([0]))
    with pytest.raises(ValueError, match="scales"):
        generate(model, cond, SCHED, InfinitySampling(cfg=(3.0, 3.0)), torch.tensor([0]))


# -------------------------------------------------------------------------------------------- AREdit

@pytest.fixture(scope="module")
def edit_setup(model):
    src_cond, tgt_cond = infinity_condition(1, seed=1), infinity_condition(1, seed=2)
    sampling = InfinitySampling(cfg=3.0, tau=0.5, top_p=0.97)
    gen = generate(model, src_cond, SCHED, sampling, torch.tensor([11]))
    return build_source(model, gen, None, sampling), tgt_cond, sampling


def _bits_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_gamma_all_scales_and_high_threshold_reproduce_the_source(model, edit_setup):
    source, tgt, _ = edit_setup
    seeds = torch.tensor([11])
    assert _bits_equal(aredit_edit(model, source, tgt, AREditSettings(len(SCHED), -5.0), seeds).tokens.bits, source.tokens.bits)
    r = aredit_edit(model, source, tgt, AREditSettings(0, 1.01), seeds)
    assert _bits_equal(r.tokens.bits, source.tokens.bits) and not any(m.any() for m in r.masks)


def test_low_threshold_equals_unconstrained_target_generation(model, edit_setup):
    source, tgt, sampling = edit_setup
    free = generate(model, tgt, SCHED, sampling, torch.tensor([11]))
    r = aredit_edit(model, source, tgt, AREditSettings(0, -1.01), torch.tensor([11]))
    assert _bits_equal(r.tokens.bits, free.bits) and all(m.all() for m in r.masks)
    assert not _bits_equal(free.bits, source.tokens.bits)  # the prompts do differ


def test_mask_is_the_probability_drop_rule_and_gamma_reuses_scales(model, edit_setup):
    source, tgt, _ = edit_setup
    r = aredit_edit(model, source, tgt, AREditSettings(2, 0.05), torch.tensor([3]))
    for k, (R, m, new) in enumerate(zip(source.tokens.bits, r.masks, r.tokens.bits)):
        if k < 2:
            assert torch.equal(new, R) and not m.any()
            continue
        p_src = torch.where(R, source.p1[k], 1 - source.p1[k])
        p_tgt = torch.where(R, r.tokens.p1[k], 1 - r.tokens.p1[k])
        assert torch.equal(m, p_src - p_tgt > 0.05)
        assert torch.equal(new[~m], R[~m])  # unmasked bits are the source's


def test_user_mask_keeps_every_bit_outside(model, edit_setup):
    source, tgt, _ = edit_setup
    region = torch.zeros(1, 96, 96)
    region[:, 48:, 48:] = 1  # bottom-right quarter of the 6x6 (96 px) grid
    r = aredit_edit(model, source, tgt, AREditSettings(0, -1.01), torch.tensor([11]), region)
    editable = region_per_scale(region, SCHED, 1)
    for R, new, ed in zip(source.tokens.bits, r.tokens.bits, editable):
        assert torch.equal(new[~ed], R[~ed])
    assert not torch.equal(r.tokens.bits[-1], source.tokens.bits[-1])  # inside, things changed
    assert r.edit_map().shape == (1, 6, 6) and r.edit_map()[0, :3, :3].max() == 0


def test_sweep_rows_equal_single_edits(model, edit_setup):
    source, tgt, _ = edit_setup
    settings = [AREditSettings(g, t) for g in (1, 2) for t in (0.0, 0.2)]
    seeds = torch.tensor([4, 5, 6, 7])
    batch = aredit_edit(model, source.index(torch.zeros(4, dtype=torch.long)), tgt, settings, seeds)
    for i, s in enumerate(settings):
        single = aredit_edit(model, source, tgt, s, seeds[i:i + 1])
        assert _bits_equal([b[i:i + 1] for b in batch.tokens.bits], single.tokens.bits)


def test_real_image_source_costs_one_teacher_forced_pass(model):
    vae = tiny_infinity_vae()
    tokens = image_to_bits(vae, torch.rand(1, 64, 64, 3), 256)
    tokens = BitTokens(tokens.bits[:4], SCHED, "encoded")  # the model is tiny: its first 4 scales
    with pytest.raises(ValueError, match="description"):
        build_source(model, tokens, None, PLAIN)
    src = build_source(model, tokens, infinity_condition(1), PLAIN)
    assert _bits_equal(src.tokens.bits, tokens.bits) and len(src.p1) == 4
    bad = BitTokens([b[..., :4] for b in tokens.bits], SCHED, "encoded")
    with pytest.raises(ValueError, match="do not belong together"):
        build_source(model, bad, infinity_condition(1), PLAIN)
    with pytest.raises(ValueError, match="gamma"):
        aredit_edit(model, src, infinity_condition(1), AREditSettings(9, 0.1), torch.tensor([0]))
    other = tiny_infinity(patchify=True)  # 32 bits per token: a cache of another model
    with pytest.raises(ValueError, match="do not belong together"):
        aredit_edit(other, src, infinity_condition(1), AREditSettings(1, 0.1), torch.tensor([0]))


# ------------------------------------------------------------------------------ text and nodes

def test_t5_infinity_text_matches_padding_to_512(t5_dir):
    from ar_edit_pack.core.text.encoders import T5TextEncoder

    enc = T5TextEncoder(t5_dir)
    prompts = ["a red circle at the top left", "a green star"]
    emb = enc.encode_infinity(prompts)
    n = emb.mask.sum(1)
    assert emb.mask.shape[1] == int(n.max()) and emb.mask[1, int(n[1]):].sum() == 0
    batch = enc.tokenizer(prompts, max_length=512, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref = enc.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    for i in range(2):  # the reference keeps the valid tokens of a 512-slot encoding
        torch.testing.assert_close(emb.features[i, :int(n[i])], ref[i, :int(n[i])], atol=1e-5, rtol=1e-4)
    assert emb.prompts == prompts  # raw prompts: no caption cleaning on this path


def test_nodes_route_infinity_models(model, t5_dir):
    from ar_edit_pack.nodes.comfy_bridge import ManagedModel
    from ar_edit_pack.nodes import AREdit, AREditSourceCache, InfinityGenerate
    from ar_edit_pack.nodes import BitsToImage, Generate, InfinityTextEncode, TextEncode

    net = tiny_infinity(text_channels=32)
    m = ManagedModel(net, "infinity_tiny")
    from ar_edit_pack.core.text.encoders import T5TextEncoder
    from ar_edit_pack.nodes.loaders import _EncoderHandle
    te = _EncoderHandle(T5TextEncoder(t5_dir), "tiny-t5", torch.device("cpu"))
    (cond,) = InfinityTextEncode().encode(te, "a green star", False)
    (plain,) = TextEncode().encode(te, "a green star", False)
    assert cond.layout == "infinity" and plain.layout == "llamagen"
    with pytest.raises(ValueError, match="Infinity Generate"):
        Generate().generate(m, cond, 0, 1, 7.5, 1.0, 0, 1.0)
    with pytest.raises(ValueError, match="encoded for LlamaGen"):
        InfinityGenerate().generate(m, plain, 0, 1, "256", "1:1", 3.0, 0.5, 0.97, "", "")
    (tokens,) = InfinityGenerate().generate(m, cond, 0, 2, "256", "1:1", 3.0, 0.5, 0.97, "", "")
    assert tokens.batch == 2 and tokens.schedule == scale_schedule(256)
    (neg,) = InfinityTextEncode().encode(te, "a red circle", False)
    (with_neg,) = InfinityGenerate().generate(m, cond, 0, 2, "256", "1:1", 3.0, 0.5, 0.97, "", "", negative=neg)
    assert not torch.equal(with_neg.p1[1], tokens.p1[1])
    (source,) = AREditSourceCache().build(m, tokens, 3.0, 0.5, 0.97, "", "")
    assert all(p is q for p, q in zip(source.p1, tokens.p1))  # same settings: the generation's own probabilities
    edited, edit_mask, changed = AREdit().edit(m, source, cond, 2, 0.1, 0, True)
    assert edit_mask.shape == changed.shape == (2, 256, 256) and 0 <= edit_mask.min() and edit_mask.max() <= 1
    vae = ManagedModel(tiny_infinity_vae(), "vae")
    (img,) = BitsToImage().decode(vae, edited)
    assert img.shape == (2, 256, 256, 3)
    from ar_edit_pack.core.records import TokenBatch
    with pytest.raises(ValueError, match="needs Infinity tokens.*these are LlamaGen tokens"):
        BitsToImage().decode(vae, TokenBatch(torch.zeros(1, 4, 4, dtype=torch.long), "encoded"))


def test_convert_to_safetensors_keeps_config_and_flavour(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "2B-512.pth")  # a VAREdit release name
    out = loaders.convert_to_safetensors(tmp_path / "2B-512.pth")
    loaded = loaders.load_gpt(out, precision="fp32")
    assert loaded.cfg == model.cfg and loaded.flavour == "varedit"
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    vae = tiny_infinity_vae()
    torch.save({"vae": vae.state_dict()}, tmp_path / "vae.pth")
    vae2 = loaders.load_vq(loaders.convert_to_safetensors(tmp_path / "vae.pth"))
    assert vae2.cfg == vae.cfg and all(torch.equal(vae2.state_dict()[k], v) for k, v in vae.state_dict().items())


def test_sharded_folders_are_listed_as_one_model(tmp_path, monkeypatch):
    from ar_edit_pack.nodes import comfy_bridge

    d = tmp_path / "autoregressive" / "infinity_8b_weights"
    d.mkdir(parents=True)
    (d / "model.safetensors.index.json").write_text("{}")
    (d / "model-00001-of-00002.safetensors").write_bytes(b"x")
    (tmp_path / "autoregressive" / "other.pth").write_bytes(b"x")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(tmp_path))
    assert comfy_bridge.list_files("autoregressive") == ["infinity_8b_weights", "other.pth"]


def test_cancel_mid_generation_leaves_the_model_usable(model):
    class Stop(RuntimeError):
        pass

    def progress(done, total):
        if done == 2:
            raise Stop

    cond = infinity_condition(1)
    with pytest.raises(Stop):
        generate(model, cond, SCHED, PLAIN, torch.tensor([9]), progress=progress)
    calls = []
    generate(model, cond, SCHED, PLAIN, torch.tensor([9]), progress=lambda d, t: calls.append(d))
    # a cancel check between layers (count k during scale k), then the scale's completion (k + 1)
    per_scale = [0] * model.cfg.depth + [1]
    assert calls == [k + c for k in range(len(SCHED)) for c in per_scale]
    a = generate(model, cond, SCHED, PLAIN, torch.tensor([9]))
    b = generate(model, cond, SCHED, PLAIN, torch.tensor([9]))
    assert all(torch.equal(x, y) for x, y in zip(a.bits, b.bits))


def test_source_cache_reuses_probabilities_only_for_the_same_settings(model):
    sampling = InfinitySampling(cfg=3.0, tau=0.5, top_p=0.97)
    gen = generate(model, infinity_condition(1), SCHED, sampling, torch.tensor([2]))
    same = build_source(model, gen, None, sampling)
    assert all(p is q for p, q in zip(same.p1, gen.p1))
    other = build_source(model, gen, None, InfinitySampling(cfg=1.0, tau=1.0, top_p=0.97))
    assert not torch.allclose(other.p1[-1], gen.p1[-1])
    ref = teacher_forced(model, gen.condition, gen, InfinitySampling(cfg=1.0, tau=1.0, top_p=0.97))
    assert all(torch.allclose(a, b) for a, b in zip(other.p1, ref))


def test_negative_prompt_replaces_the_null_text(model):
    from ar_edit_pack.core.condition import Condition

    cond = infinity_condition(2, lengths=[5, 3], seed=1)
    s = InfinitySampling(cfg=3.0, tau=1.0, top_p=1.0)
    seeds = torch.tensor([4, 5])
    plain = generate(model, cond, SCHED, s, seeds)
    # the learned null text, given explicitly as a (longer, padded) negative prompt, changes nothing
    L = 7
    null = Condition(model.cfg_uncond[:L].detach()[None].repeat(2, 1, 1),
                     torch.arange(L)[None].expand(2, -1) < torch.tensor([[5], [3]]), ["", ""], "infinity")
    same = generate(model, cond, SCHED, s, seeds, negative=null)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(plain.p1, same.p1))
    other = generate(model, cond, SCHED, s, seeds, negative=infinity_condition(1, length=4, seed=9))
    assert not torch.allclose(other.p1[0], plain.p1[0])
    with pytest.raises(ValueError, match="negative prompts"):
        generate(model, cond, SCHED, s, seeds, negative=infinity_condition(3, seed=9))


def test_node_mask_follows_the_images_crop(model):
    from ar_edit_pack.core.infinity.scales import STRIDE
    from ar_edit_pack.core.pipelines.common import pixel_region

    source = build_source(model, generate(model, infinity_condition(1), SCHED, PLAIN, torch.tensor([1])), None, PLAIN)
    mask = torch.zeros(1, 96, 192)  # a 2:1 image whose centre 96 x 96 became the 6x6-token (96 px) source
    mask[:, :, 48:96] = 1  # the left half of that centre square
    region = pixel_region(mask, source.tokens.grid, STRIDE)
    assert region.shape == (1, 96, 96)
    assert region[0, :, :46].min() == 1 and region[0, :, 50:].max() == 0


def test_an_official_layout_8b_pair_runs_through_the_nodes(tmp_path, t5_dir, monkeypatch):
    """The official 8B set-up: a 14-bit VAE at stride 8 under a transformer that patchifies 2x2 (56-bit tokens), saved
    as the official files are (no config). Loaded by the nodes, it generates, decodes, edits by AREdit and by VAREdit;
    paired with the 2B's kind of VAE it is refused, naming both files."""
    import shutil

    from ar_edit_pack.nodes import (AREdit, AREditSourceCache, BitsToImage, BSQVAELoader, ImageToBits,
                                    InfinityGenerate, InfinityLoader, InfinityTextEncode, TextEncoderLoader, VAREdit,
                                    VAREditLoader)

    models = tmp_path / "models"
    for d in ("autoregressive", "vq", "text_encoders"):
        (models / d).mkdir(parents=True)
    eight_b = dict(vae_bits=14, patchify=True)
    torch.save(tiny_infinity(**eight_b).state_dict(), models / "autoregressive" / "infinity_8b_tiny.pth")
    torch.save(tiny_infinity(seed=1, **eight_b).state_dict(), models / "autoregressive" / "varedit_8b_tiny.pth")
    torch.save({"vae": tiny_infinity_vae(ch_mult=(1, 1, 1, 1), bits=14).state_dict()},
               models / "vq" / "infinity_vae_d56_tiny.pth")
    torch.save({"vae": tiny_infinity_vae().state_dict()}, models / "vq" / "infinity_vae_d8_tiny.pth")
    shutil.copytree(t5_dir, models / "text_encoders" / "tiny-t5")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    (net,) = InfinityLoader().load("infinity_8b_tiny.pth", "fp32")
    assert net.module.cfg.patchify and net.module.cfg.vae_bits == 14 and net.module.cfg.token_bits == 56
    (vae,) = BSQVAELoader().load("infinity_vae_d56_tiny.pth", "fp32")
    assert vae.module.cfg.bits == 14 and vae.module.stride == 8
    (text,) = TextEncoderLoader().load("tiny-t5", "fp32", "cpu")
    (cond,) = InfinityTextEncode().encode(text, "a green star", False)
    (bits,) = InfinityGenerate().generate(net, cond, 0, 1, "256", "1:1", 3.0, 0.5, 0.97, "", "")
    assert bits.patchify and bits.bits[-1].shape == (1, 16, 16, 56)
    (image,) = BitsToImage().decode(vae, bits)
    assert image.shape == (1, 256, 256, 3)
    (photo_bits,) = ImageToBits().encode(vae, image, 256, "center_crop")  # 32 x 32 VAE grid, patchified to 16 x 16
    assert photo_bits.bits[-1].shape == (1, 16, 16, 56)
    (source,) = AREditSourceCache().build(net, photo_bits, 3.0, 0.5, 0.97, "", "", cond)
    edited, _, _ = AREdit().edit(net, source, cond, 0, 5.0, 0, False)  # threshold > 1 keeps every bit
    assert all(torch.equal(a, b) for a, b in zip(edited.bits, photo_bits.bits))

    (editor,) = VAREditLoader().load("varedit_8b_tiny.pth", "fp32")
    out, tokens = VAREdit().edit(editor, vae, text, torch.rand(1, 96, 128, 3), "make it red", "512", 0, 4.0, 0.5, 0.97)
    assert out.shape == (1, 96, 128, 3) and tokens.bits[-1].shape == (1, 32, 32, 56)

    (wrong,) = BSQVAELoader().load("infinity_vae_d8_tiny.pth", "fp32")
    with pytest.raises(ValueError, match=r"infinity_vae_d8_tiny.pth \(8 bits at stride 16\) makes 8-bit tokens, but "
                                         r"varedit_8b_tiny.pth reads 56-bit tokens \(2x2 of a 14-bit VAE at stride 8\)"):
        VAREdit().edit(editor, wrong, text, torch.rand(1, 64, 64, 3), "make it red", "512", 0, 4.0, 0.5, 0.97)
    with pytest.raises(ValueError, match=r"reads 56-bit tokens \(2x2 patchified\)"):
        AREditSourceCache().build(net, ImageToBits().encode(wrong, image, 256, "center_crop")[0], 3.0, 0.5, 0.97, "",
                                  "", cond)


def test_presets_are_the_official_layouts():
    from ar_edit_pack.core.infinity.model import INFINITY_PRESETS
    from ar_edit_pack.core.infinity.vae import VAE_PRESETS

    eight = INFINITY_PRESETS["infinity-8b"]
    assert (eight.vae_bits, eight.patchify, eight.token_bits) == (14, True, 56)
    assert (VAE_PRESETS["infinity-vae-d56-f8"].bits, VAE_PRESETS["infinity-vae-d56-f8"].stride) == (14, 8)
    assert INFINITY_PRESETS["infinity-2b"].token_bits == VAE_PRESETS["infinity-vae-d32"].bits == 32
    assert set(INFINITY_PRESETS) == {"infinity-2b", "infinity-8b"} and set(VAE_PRESETS) == {"infinity-vae-d32",
                                                                                              "infinity-vae-d56-f8"}
