"""VAREdit on tiny models of the Infinity layout: SAR attention, RoPE quirk, canvas, mask control, loading."""
import pytest
import torch
import torch.nn.functional as F

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.infinity.aredit import region_per_scale
from ar_edit_pack.core.infinity.bsq import bits_to_codes, quantize_multiscale
from ar_edit_pack.core.infinity.generate import InfinitySampling
from ar_edit_pack.core.infinity.scales import scale_schedule
from ar_edit_pack.core.infinity.varedit import canvas, crop_back, mask_canvas, varedit_edit, varedit_forward, varedit_rope

from tiny_models import infinity_condition, tiny_infinity, tiny_infinity_vae

SCHED = scale_schedule(256)  # 7 scales up to 16x16 (the original runs 512/1024; the code is the same)


@pytest.fixture(scope="module")
def parts():
    model, vae = tiny_infinity(seed=3), tiny_infinity_vae(seed=4)
    img = torch.rand(2, 3, 256, 256) * 2 - 1
    return model, vae, img


def _inputs(bits, schedule):
    final = schedule[-1]
    running, out = 0, []
    for k in range(len(schedule) - 1):
        running = running + F.interpolate(bits_to_codes(bits[k]), size=final, mode="bilinear", align_corners=False)
        out.append(F.interpolate(running, size=schedule[k + 1], mode="bilinear", align_corners=False).flatten(2).transpose(1, 2))
    return torch.cat(out, 1)


@pytest.mark.parametrize("cfg,patchify", [(1.0, False), (3.0, False), (3.0, True)])
def test_cached_editor_equals_the_explicit_sar_pass(parts, cfg, patchify):
    model, vae, img = parts
    if patchify:  # the 8B path: stride-8 VAE, 2x2 VAE tokens per transformer token
        model, vae = tiny_infinity(seed=3, patchify=True), tiny_infinity_vae(seed=4, ch_mult=(1, 1, 1, 1))
    cond = infinity_condition(2, lengths=[4, 6], seed=5)
    out = varedit_edit(model, vae, cond, img, SCHED, InfinitySampling(cfg=cfg, tau=0.7, top_p=1.0), torch.tensor([1, 2]))
    z = vae.encode_latent(img)
    tokens = (F.pixel_unshuffle(z, 2) if patchify else z).flatten(2).transpose(1, 2)
    bits = out.bits
    if patchify:  # next-scale inputs are built on the VAE grid, then patchified
        from ar_edit_pack.core.infinity.generate import tokens_to_vae_bits
        vae_bits = [tokens_to_vae_bits(b, True) for b in bits]
        inputs = _inputs(vae_bits, [(2 * h, 2 * w) for h, w in SCHED])
        grids = [(2 * h, 2 * w) for h, w in SCHED[1:]]
        parts_ = torch.split(inputs, [g[0] * g[1] for g in grids], 1)
        inputs = torch.cat([F.pixel_unshuffle(x.transpose(1, 2).reshape(2, -1, *g), 2).flatten(2).transpose(1, 2)
                            for x, g in zip(parts_, grids)], 1)
    else:
        inputs = _inputs(bits, SCHED)
    logits = varedit_forward(model, cond.raw, cond.mask, tokens, inputs, SCHED)
    if cfg != 1:
        null = varedit_forward(model, model.null_text(cond.mask), cond.mask, tokens, inputs, SCHED)
        logits = cfg * logits + (1 - cfg) * null
    p1 = (logits / 0.7).softmax(-1)[..., 1]
    cached = torch.cat([p.reshape(2, -1, p.shape[-1]) for p in out.p1], 1)
    torch.testing.assert_close(cached, p1, atol=2e-5, rtol=1e-4)


def test_the_source_changes_the_result(parts):
    model, vae, img = parts
    cond = infinity_condition(1, seed=5)
    s = InfinitySampling(cfg=1.0, tau=1.0, top_p=1.0)
    a = varedit_edit(model, vae, cond, img[:1], SCHED, s, torch.tensor([1]))
    b = varedit_edit(model, vae, cond, img[1:], SCHED, s, torch.tensor([1]))
    assert not torch.allclose(a.p1[0], b.p1[0])  # scale 0 already sees the source through the reference


def test_rope_quirk_at_512():
    model = tiny_infinity()
    src, tgt = varedit_rope(scale_schedule(512), model)
    hd4 = model.cfg.head_dim // 4
    inv = 1.0 / (model.cfg.rope_base ** (torch.arange(0, model.cfg.head_dim // 2, 2).float() / (model.cfg.head_dim // 2)))
    assert src.shape[1] == 32 * 32 and tgt.shape[1] == sum(h * w for h, w in scale_schedule(512))
    # source token f (raster over 32x32) sits at (64 + f // 64, 64 + f % 64) of the 64-wide source block
    f = 100
    torch.testing.assert_close(src[0, f, :hd4], torch.cos((64 + f // 64) * inv))
    torch.testing.assert_close(src[0, f, hd4:], torch.cos((64 + f % 64) * inv))
    # at 512 px the first scale reads entry 1024: still inside the source block, row 64 + 16, column 64
    torch.testing.assert_close(tgt[0, 0, :hd4], torch.cos(80 * inv))
    torch.testing.assert_close(tgt[0, 0, hd4:], torch.cos(64 * inv))
    src1024, tgt1024 = varedit_rope(scale_schedule(1024), model)
    torch.testing.assert_close(tgt1024[0, 0], torch.ones_like(tgt1024[0, 0]))  # 1024 px: scale 0 at (0, 0)


def test_canvas_paste_and_crop_back():
    img = torch.zeros(1, 48, 96, 3)
    img[..., 0] = 1.0  # a red landscape image
    x, hw = canvas(img, 512)
    assert x.shape == (1, 3, 512, 512) and hw == (48, 96)
    assert torch.allclose(x[0, :, -50:, :], torch.ones(3, 50, 512), atol=0.02)  # white below the image
    assert x[0, 1, :200].mean() < -0.95  # red at the top: no green
    back = crop_back((x + 1) / 2, hw)
    assert back.shape == (1, 3, 48, 96) and back[0, 0].mean() > 0.95 and back[0, 1].mean() < 0.05
    m = mask_canvas(torch.ones(1, 48, 96), 512)
    assert m[0, 300:].max() == 0 and m[0, :200].min() > 0.99
    with pytest.raises(ValueError, match="512"):
        canvas(img, 300)


def test_mask_keeps_the_sources_own_bits_outside(parts):
    model, vae, img = parts
    region = torch.zeros(1, 256, 256)
    region[:, :, 128:] = 1  # right half may change
    out = varedit_edit(model, vae, infinity_condition(1, seed=7), img[:1], SCHED, InfinitySampling(), torch.tensor([3]),
                       region)
    src_bits = quantize_multiscale(vae.encode_latent(img[:1]), SCHED)[0]
    editable = region_per_scale(region, SCHED, 1)
    for new, src, ed in zip(out.bits, src_bits, editable):
        assert torch.equal(new[~ed], src[~ed])
    assert not torch.equal(out.bits[-1], src_bits[-1])


def test_loading_names_the_flavour_and_checks_the_vae(parts, tmp_path):
    model, vae, img = parts
    torch.save(model.state_dict(), tmp_path / "2B-512.pth")
    torch.save(model.state_dict(), tmp_path / "infinity_2b_reg.pth")
    assert loaders.load_gpt(tmp_path / "2B-512.pth").flavour == "varedit"
    assert loaders.load_gpt(tmp_path / "infinity_2b_reg.pth").flavour == "infinity"
    wrong = tiny_infinity_vae(bits=16)
    with pytest.raises(ValueError, match="do not belong together"):
        varedit_edit(model, wrong, infinity_condition(1), img[:1], SCHED, InfinitySampling(), torch.tensor([0]))


def test_bf16_blocks_keep_the_rest_in_fp32(tmp_path, parts):
    model = parts[0]
    torch.save(model.state_dict(), tmp_path / "m.pth")
    m = loaders.load_gpt(tmp_path / "m.pth", precision="bf16")
    assert m.dtype == torch.bfloat16 and m.head.weight.dtype == torch.float32 and m.cfg_uncond.dtype == torch.float32
    out = varedit_edit(m, parts[1], infinity_condition(1), parts[2][:1], SCHED, InfinitySampling(), torch.tensor([0]))
    assert out.bits[-1].shape == (1, 16, 16, 8)


def test_the_8b_patchify_path():
    model = tiny_infinity(seed=5, vae_bits=8, patchify=True)  # 2x2 VAE tokens of 8 bits per transformer token
    vae = tiny_infinity_vae(seed=6, ch_mult=(1, 1, 1, 1))  # stride 8, as the d56 VAE
    img = torch.rand(1, 3, 256, 256) * 2 - 1
    region = torch.zeros(1, 256, 256)
    region[:, 128:] = 1
    out = varedit_edit(model, vae, infinity_condition(1), img, SCHED, InfinitySampling(), torch.tensor([1]), region)
    assert out.patchify and out.bits[-1].shape == (1, 16, 16, 32)
    from ar_edit_pack.core.infinity.generate import vae_bits_to_tokens
    src = [vae_bits_to_tokens(b, True) for b in quantize_multiscale(vae.encode_latent(img), [(2 * h, 2 * w) for h, w in SCHED])[0]]
    for new, s, ed in zip(out.bits, src, region_per_scale(region, SCHED, 1)):
        assert torch.equal(new[~ed], s[~ed])
    from ar_edit_pack.core.infinity.codec import bits_to_images
    assert bits_to_images(vae, out).shape == (1, 3, 256, 256)


def test_the_48px_tier_caches_like_the_explicit_pass_and_trains():
    """The embedded editor's tier (3 scales to 3x3, no official template): its own source grid on the RoPE table,
    the cached editor equal to the explicit pass, and the explicit pass differentiable (how the editor is trained)."""
    from ar_edit_pack.core.infinity.varedit import varedit_forward

    sched = scale_schedule(48)
    model, vae = tiny_infinity(seed=3), tiny_infinity_vae(seed=4)
    img = torch.rand(2, 3, 48, 48) * 2 - 1
    src, tgt = varedit_rope(sched, model)
    assert src.shape[1] == 9 and tgt.shape[1] == 1 + 4 + 9
    assert len({tuple(src[:, i].flatten().tolist()) for i in range(9)}) == 9  # nine distinct source positions
    cond = infinity_condition(2, lengths=[4, 6], seed=5)
    out = varedit_edit(model, vae, cond, img, sched, InfinitySampling(cfg=1.0, tau=0.7, top_p=1.0), torch.tensor([1, 2]))
    tokens = vae.encode_latent(img).flatten(2).transpose(1, 2)
    logits = varedit_forward(model, cond.raw, cond.mask, tokens, _inputs(out.bits, sched), sched)
    cached = torch.cat([p.reshape(2, -1, p.shape[-1]) for p in out.p1], 1)
    torch.testing.assert_close(cached, (logits / 0.7).softmax(-1)[..., 1], atol=2e-5, rtol=1e-4)
    trainable = tiny_infinity(seed=3).train().requires_grad_(True)
    loss = varedit_forward(trainable, cond.raw, cond.mask, tokens, _inputs(out.bits, sched), sched).logsumexp(-1).mean()
    loss.backward()
    assert trainable.lvl_embed.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in trainable.named_parameters() if "word_embed" in n)
