import pytest
import torch

from ar_edit_pack.core.infinity.bsq import bits_to_codes, codes_from_bits, down, quantize_multiscale, up
from ar_edit_pack.core.infinity.generate import teacher_inputs
from ar_edit_pack.core.infinity.scales import (TEMPLATES, image_size_for, nearest_ratio, scale_schedule, total_tokens)


def test_square_schedules_and_token_counts():
    s1024 = scale_schedule(1024)
    assert [h for h, _ in s1024] == [1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64]
    assert total_tokens(s1024) == 10521 and image_size_for(s1024) == (1024, 1024)
    assert scale_schedule(512) == s1024[:10] and image_size_for(scale_schedule(512)) == (512, 512)
    assert scale_schedule(256) == s1024[:7] and image_size_for(scale_schedule(256)) == (256, 256)


def test_the_embedded_48_px_tier_is_three_square_scales():
    s48 = scale_schedule(48)
    assert s48 == [(1, 1), (2, 2), (3, 3)] and image_size_for(s48) == (48, 48)
    s48.append((9, 9))  # callers get their own list
    assert scale_schedule(48) == [(1, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError, match="square only"):
        scale_schedule(48, 1.5)


def test_aspect_templates():
    assert len(TEMPLATES) == 15  # 8 ratios >= 1 and their 7 inverses
    for ratio, grids in TEMPLATES.items():
        h, w = grids[-1]
        assert abs(h / w - ratio) < 0.02 and len(grids) == 13
    tall = scale_schedule(1024, 1.5)
    wide = scale_schedule(1024, 1 / 1.5)
    assert tall[-1] == (78, 52) and wide[-1] == (52, 78)
    assert nearest_ratio(1.3) == 1.333 and nearest_ratio(0.98) == 1.0
    with pytest.raises(ValueError):
        scale_schedule(300)
    with pytest.raises(ValueError):
        nearest_ratio(0)


def test_multiscale_residual_identity_and_bits():
    torch.manual_seed(0)
    schedule = scale_schedule(256)  # up to 16x16
    z = torch.randn(2, 32, 16, 16)
    bits, summed = quantize_multiscale(z, schedule)
    assert [tuple(b.shape) for b in bits] == [(2, h, w, 32) for h, w in schedule] and bits[0].dtype == torch.bool
    # the decoder's input rebuilt from the bits alone equals the quantiser's running sum
    torch.testing.assert_close(codes_from_bits(bits, (16, 16)), summed)
    # codes are +-1/sqrt(d); every scale's bits are the signs of the downsampled residual
    codes = bits_to_codes(bits[3])
    assert torch.allclose(codes.abs(), torch.full_like(codes, 32 ** -0.5))
    residual = z.clone()
    for k, hw in enumerate(schedule):
        assert torch.equal(bits[k], (down(residual, hw) > 0).permute(0, 2, 3, 1))
        residual = residual - up(bits_to_codes(bits[k]), (16, 16))
    # coarse-to-fine coding reduces the error
    assert (z - summed).norm() < (z - codes_from_bits(bits[:3], (16, 16))).norm() < z.norm()


def test_next_scale_inputs_are_the_downsampled_running_sum():
    import torch.nn.functional as F

    torch.manual_seed(1)
    schedule = [(1, 1), (2, 2), (4, 4)]
    bits, _ = quantize_multiscale(torch.randn(1, 8, 4, 4), schedule)
    inputs = teacher_inputs(bits, schedule)  # [1, 4 + 16, 8]: the 2x2 scale's inputs, then the 4x4 scale's
    assert inputs.shape == (1, 20, 8)
    as_grid = lambda x, hw: x.transpose(1, 2).reshape(1, 8, *hw)
    torch.testing.assert_close(as_grid(inputs[:, 4:], (4, 4)), codes_from_bits(bits[:2], (4, 4)))
    torch.testing.assert_close(as_grid(inputs[:, :4], (2, 2)), down(up(bits_to_codes(bits[0]), (4, 4)), (2, 2)))
    # between scales that do not divide, the rule shows: trilinear with one frame (the official trainer's and
    # sampler's), the same rule generation feeds the transformer with, not the quantiser's area rule
    schedule = [(1, 1), (2, 2), (3, 3), (4, 4)]
    bits, _ = quantize_multiscale(torch.randn(1, 8, 4, 4), schedule)
    summed = codes_from_bits(bits[:2], (4, 4))
    tri = F.interpolate(summed[:, :, None], size=(1, 3, 3), mode="trilinear")[:, :, 0]
    torch.testing.assert_close(teacher_inputs(bits, schedule)[:, 4:13], tri.flatten(2).transpose(1, 2))
    assert not torch.allclose(tri, down(summed, (3, 3)))
    from ar_edit_pack.core.infinity.generate import _next_input
    torch.testing.assert_close(_next_input(summed, (3, 3), False), tri.flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match="schedule ends"):
        quantize_multiscale(torch.randn(1, 8, 5, 5), schedule)


def test_bilinear_and_area_match_infinitys_3d_interpolation_with_one_frame():
    import torch.nn.functional as F

    x = torch.randn(2, 4, 6, 6)
    tri = F.interpolate(x[:, :, None], size=(1, 16, 16), mode="trilinear")[:, :, 0]
    torch.testing.assert_close(up(x, (16, 16)), tri)
    area3d = F.interpolate(x[:, :, None], size=(1, 4, 4), mode="area")[:, :, 0]
    torch.testing.assert_close(down(x, (4, 4)), area3d)


def test_aspect_ratio_widget_is_one_format_width_to_height():
    from ar_edit_pack.core.infinity.scales import parse_aspect as _aspect
    from ar_edit_pack.nodes.generate import ASPECTS
    from ar_edit_pack.core.infinity.scales import TEMPLATES, nearest_ratio

    assert ASPECTS[0] == "1:1" and all(a.count(":") == 1 and "." not in a for a in ASPECTS)
    assert sorted(nearest_ratio(_aspect(a)) for a in ASPECTS) == sorted(TEMPLATES)  # every template, once
    assert _aspect("4:3") == 0.75 and _aspect("3:4") == 4 / 3  # wide, then tall (height / width)
    assert _aspect("0.333") == 0.333  # a bare number from an earlier saved graph: height / width, as before
