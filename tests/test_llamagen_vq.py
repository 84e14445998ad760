import pytest
import torch
import torch.nn.functional as F

from ar_edit_pack.core import decode_tokens_to_images, encode_images
from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.images import comfy_to_model, fit_image, grid_to_mask, mask_to_grid
from ar_edit_pack.core.llamagen.vq import LlamaGenVQ, VQConfig, config_from_state_dict

from tiny_models import save_bare_safetensors, save_official_pt, tiny_gpt, tiny_vq


def test_vq16_names_shapes_and_size():
    with torch.device("meta"):
        model = LlamaGenVQ(VQConfig.preset("VQ-16"))
    sd = model.state_dict()
    for key, shape in {
        "quantize.embedding.weight": (16384, 8), "quant_conv.weight": (8, 256, 1, 1),
        "post_quant_conv.weight": (256, 8, 1, 1), "quantize.codebook_used": (65536,),
        "encoder.conv_blocks.4.attn.1.q.weight": (512, 512, 1, 1),
        "encoder.conv_blocks.3.downsample.conv.weight": (256, 256, 3, 3),
        "encoder.conv_blocks.2.res.0.nin_shortcut.weight": (256, 128, 1, 1),
        "encoder.mid.1.proj_out.weight": (512, 512, 1, 1), "encoder.norm_out.weight": (512,),
        "encoder.conv_out.weight": (256, 512, 3, 3),
        "decoder.conv_blocks.0.attn.2.v.weight": (512, 512, 1, 1),
        "decoder.conv_blocks.0.res.2.conv2.weight": (512, 512, 3, 3),
        "decoder.conv_blocks.3.upsample.conv.weight": (128, 128, 3, 3),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert "encoder.conv_blocks.4.downsample.conv.weight" not in sd
    assert "decoder.conv_blocks.4.upsample.conv.weight" not in sd
    n = sum(p.numel() for p in model.parameters())
    assert 70e6 < n < 74e6  # "about 72M params"
    cfg = config_from_state_dict(sd)
    assert cfg == VQConfig.preset("VQ-16") and cfg.downsample == 16
    with torch.device("meta"):
        assert config_from_state_dict(LlamaGenVQ(VQConfig.preset("VQ-8")).state_dict()).downsample == 8


def test_round_trip_shapes_range_and_codebook_normalisation():
    vq = tiny_vq()
    images = torch.rand(2, 3, 64, 48) * 2 - 1
    ids = encode_images(vq, images)
    assert ids.shape == (2, 4, 3) and ids.dtype == torch.long
    out = decode_tokens_to_images(vq, ids)
    assert out.shape == (2, 3, 64, 48) and out.min() >= 0 and out.max() <= 1
    codes = vq.quantize.lookup(ids)
    torch.testing.assert_close(codes.norm(dim=1), torch.ones(2, 4, 3))
    # quantisation = nearest normalised codebook entry, i.e. the largest cosine similarity
    z = vq.quant_conv(vq.encoder(images))
    flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1)
    cos = flat @ F.normalize(vq.quantize.embedding.weight, dim=-1).T
    assert torch.equal(cos.argmax(-1).view(2, 4, 3), ids)


def test_decoder_output_is_quantised_like_upstream():
    vq = tiny_vq()
    out = decode_tokens_to_images(vq, torch.randint(0, 64, (1, 2, 2)))
    assert torch.equal((out * 255).round(), out * 255)  # uint8 levels


@pytest.mark.parametrize("fmt", ["model", "ema", "safetensors"])
def test_vq_checkpoint_round_trip(tmp_path, fmt):
    vq = tiny_vq()
    if fmt == "safetensors":
        path = save_bare_safetensors(vq, str(tmp_path / "vq.safetensors"))
        loaded = loaders.load_vq(path)
    elif fmt == "ema":
        # EMA weights are used only when asked for; the plain weights stay the default (as upstream)
        other = tiny_vq(seed=1)
        torch.save({"model": vq.state_dict(), "ema": other.state_dict()}, tmp_path / "vq.pt")
        assert torch.equal(loaders.load_vq(tmp_path / "vq.pt").quantize.embedding.weight, vq.quantize.embedding.weight)
        loaded, vq = loaders.load_vq(tmp_path / "vq.pt", prefer_ema=True), other
    else:
        loaded = loaders.load_vq(save_official_pt(vq, str(tmp_path / "vq.pt")))
    ids = torch.randint(0, 64, (1, 3, 3))
    assert torch.equal(decode_tokens_to_images(loaded, ids), decode_tokens_to_images(vq, ids))


def test_vq_file_without_usage_buffer_loads(tmp_path):
    state = tiny_vq().state_dict()
    del state["quantize.codebook_used"]
    torch.save({"model": state}, tmp_path / "vq.pt")
    assert loaders.load_vq(tmp_path / "vq.pt").quantize.codebook_used.abs().sum() == 0


def test_vq_errors(tmp_path):
    vq = tiny_vq()
    with pytest.raises(ValueError, match="multiple of the tokenizer stride 16"):
        vq.encode(torch.zeros(1, 3, 70, 64))
    with pytest.raises(ValueError, match="out of range"):
        vq.decode(torch.full((1, 2, 2), 64))
    gpt_path = save_official_pt(tiny_gpt(), str(tmp_path / "gpt.pt"))
    with pytest.raises(CheckpointError, match="AR transformer"):
        loaders.load_vq(gpt_path)
    state = vq.state_dict()
    del state["decoder.conv_out.bias"]
    torch.save({"model": state}, tmp_path / "vq_broken.pt")
    with pytest.raises(CheckpointError, match="decoder.conv_out.bias"):
        loaders.load_vq(tmp_path / "vq_broken.pt")


def test_resize_policy():
    img = torch.rand(1, 90, 160, 3)  # IMAGE [B, H, W, C], landscape
    x = comfy_to_model(img, 64, "center_crop", 16)
    assert x.shape == (1, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert comfy_to_model(img, 64, "stretch", 16).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="multiples of 16"):
        comfy_to_model(img, None, "none", 16)
    assert comfy_to_model(torch.rand(2, 32, 48, 4), None, "none", 16).shape == (2, 3, 32, 48)
    # center crop keeps the middle: a vertical stripe in the centre survives
    stripe = torch.zeros(1, 1, 32, 64)
    stripe[..., 30:34] = 1
    assert fit_image(stripe, 32, "center_crop", 16)[0, 0, :, 14:18].mean() > 0.9


def test_mask_grid_conversions():
    mask = torch.zeros(1, 64, 64)
    mask[:, :32, :32] = 1
    grid = mask_to_grid(mask, 4, 4, batch=2)
    assert grid.shape == (2, 4, 4) and grid[:, :2, :2].all() and not grid[:, 2:, :].any()
    back = grid_to_mask(grid, 64, 64)
    assert torch.equal(back[0], mask[0])
    with pytest.raises(ValueError, match="does not match"):
        mask_to_grid(torch.zeros(3, 8, 8), 4, 4, batch=2)
