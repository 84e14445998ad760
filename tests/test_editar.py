import pytest
import torch

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.llamagen.editar import (EditARGPT, editar_generate, editar_logits, rope_table_edit, task_prompt)
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.llamagen.gpt import GPTConfig, LlamaGenGPT, rope_for_cells
from ar_edit_pack.core.sampling import SamplingSettings

from tiny_models import TINY_HEADS, TINY_T2I, save_official_pt

N, T = 16, 12


def tiny_editar(seed=0, start_rope=False):
    torch.manual_seed(seed)
    model = EditARGPT(GPTConfig(**{**TINY_T2I, "cls_token_num": T, "edit_start_rope": start_rope})).eval().requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.cls_embedding.uncond_embedding.normal_()
        model.img_uncond_embedding.normal_()
    return model


def inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 64, (batch, 4, 4), generator=g), Condition(torch.randn(batch, T, 32, generator=g))


def test_rope_layout_condition_text_output():
    table = rope_table_edit(4, 16, 10000.0, T)
    assert table.shape == (N + T + N, 8, 2)
    assert table[N:N + T].abs().sum() == 0  # text positions: cos = sin = 0
    rows = torch.arange(16) // 4
    cols = torch.arange(16) % 4
    torch.testing.assert_close(table[:N], rope_for_cells(rows, cols, 16, 10000.0))
    torch.testing.assert_close(table[N + T:], rope_for_cells(rows + 4, cols + 4, 16, 10000.0))
    # cell (0, 0) of the condition has angle 0; the output's first cell sits at (4, 4) of the doubled grid
    assert torch.equal(table[0, :, 0], torch.ones(8)) and not torch.equal(table[N + T, :, 0], torch.ones(8))


def test_start_rope_puts_the_first_prediction_where_a_row_end_sits():
    official, ours = rope_table_edit(4, 16, 10000.0, T), rope_table_edit(4, 16, 10000.0, T, start_rope=True)
    assert torch.equal(official[:N + T - 1], ours[:N + T - 1]) and torch.equal(official[N + T:], ours[N + T:])
    assert ours[N:N + T - 1].abs().sum() == 0  # the other text slots keep the official zero
    angle = lambda row: torch.atan2(row[:, 1], row[:, 0])
    # from the last text slot, source cell (0, 0) lies where source (1, 0) lies from output cell (0, 3), the
    # row end before output row 1: the same relative rotation (angles mod 2 pi)
    d_start = angle(ours[N + T - 1]) - angle(ours[0])
    d_row_end = angle(ours[N + T + 3]) - angle(ours[4])
    torch.testing.assert_close(torch.remainder(d_start - d_row_end + 3.14159265, 2 * 3.14159265), torch.full((8,), 3.14159265))


def test_start_rope_is_kept_by_the_file_and_changes_only_flagged_models(tmp_path):
    model = tiny_editar(start_rope=True)
    loaders.save_model(model, tmp_path / "e.safetensors")
    back = loaders.load_gpt(tmp_path / "e.safetensors", precision="fp32")
    assert back.cfg.edit_start_rope and torch.equal(back._rope_cpu, model._rope_cpu)
    cond, text = inputs()
    tokens = torch.randint(0, 64, (2, N))
    c = cond.reshape(2, -1)
    torch.testing.assert_close(back(c, text.raw, tokens), model(c, text.raw, tokens))
    plain = tiny_editar(start_rope=False)  # the same weights under the official layout
    assert not torch.allclose(plain(c, text.raw, tokens)[:, 0], model(c, text.raw, tokens)[:, 0], atol=1e-4)
    torch.testing.assert_close(plain(c, text.raw, tokens)[:, 1:], model(c, text.raw, tokens)[:, 1:], atol=0.5, rtol=0)


def test_strict_loading_with_both_null_buffers(tmp_path):
    model = tiny_editar()
    state = dict(model.state_dict())
    state["alignment.weight"] = torch.zeros(768, 64, 2, 2)  # EditAR's training-only head: ignored by name
    state["alignment.bias"] = torch.zeros(768)
    torch.save({"model": state}, tmp_path / "editar_release.pt")
    loaded = loaders.load_gpt(tmp_path / "editar_release.pt", n_head=TINY_HEADS)
    assert isinstance(loaded, EditARGPT) and loaded.cfg.grid_size == 4 and loaded.cfg.cls_token_num == T
    cond, text = inputs()
    tokens = torch.randint(0, 64, (2, N))
    assert torch.equal(editar_logits(loaded, cond, text, tokens, 3.0, 1.5), editar_logits(model, cond, text, tokens, 3.0, 1.5))
    assert torch.equal(loaded.img_uncond_embedding, model.img_uncond_embedding)
    for missing in ("img_uncond_embedding", "cls_embedding.uncond_embedding"):
        broken = {k: v for k, v in state.items() if k != missing}
        torch.save({"model": broken}, tmp_path / "broken.pt")
        with pytest.raises(CheckpointError, match=f"missing keys.*{missing}"):
            loaders.load_gpt(tmp_path / "broken.pt", image_size=64, n_head=TINY_HEADS)


@pytest.mark.parametrize("text_cfg, image_cfg, start_rope", [(1.0, 1.0, False), (3.0, 1.0, False), (3.0, 1.5, False),
                                                             (3.0, 1.5, True)])
def test_kv_cached_decoding_equals_full_forward(text_cfg, image_cfg, start_rope):
    model = tiny_editar(start_rope=start_rope)
    cond, text = inputs(3)
    tokens = editar_generate(model, cond, Condition(text.raw.repeat(2, 1, 1)[:3]), SamplingSettings(temperature=0.0),
                             [0, 0, 0], text_cfg, image_cfg)
    full = editar_logits(model, cond, Condition(text.raw.repeat(2, 1, 1)[:3]), tokens, text_cfg, image_cfg)
    assert torch.equal(full.argmax(-1), tokens)  # greedy: every cached step picked the full pass's argmax
    sampled = editar_generate(model, cond, Condition(text.raw.repeat(2, 1, 1)[:3]), SamplingSettings(top_k=2),
                              [1, 2, 3], text_cfg, image_cfg)
    full = editar_logits(model, cond, Condition(text.raw.repeat(2, 1, 1)[:3]), sampled, text_cfg, image_cfg)
    assert (full.topk(2, -1).indices == sampled[..., None]).any(-1).all()


def test_guidance_branches_follow_the_formula():
    model = tiny_editar()
    cond, text = inputs()
    tokens = torch.randint(0, 64, (2, N))
    c = cond.reshape(2, -1)
    full, img_only, none = model(c, text.raw, tokens), model(c, None, tokens), model(None, None, tokens)
    torch.testing.assert_close(editar_logits(model, cond, text, tokens, 3.0, 1.0), img_only + 3.0 * (full - img_only))
    torch.testing.assert_close(editar_logits(model, cond, text, tokens, 3.0, 2.0),
                               none + 2.0 * (img_only - none) + 3.0 * (full - img_only))
    assert not torch.allclose(img_only, none, atol=1e-3)  # the null image really changes the prediction


def test_mask_keeps_the_condition_tokens_outside_and_seeds_are_per_row():
    model = tiny_editar()
    cond, text = inputs()
    keep = torch.zeros(2, 4, 4, dtype=torch.bool)
    keep[:, :2] = True
    out = editar_generate(model, cond, text, SamplingSettings(top_k=0), [5, 6], keep=keep)
    assert torch.equal(out.view(2, 4, 4)[keep], cond[keep])
    single = editar_generate(model, cond[1:], Condition(text.raw[1:]), SamplingSettings(top_k=0), [6], keep=keep[1:])
    assert torch.equal(single[0], out[1])


def test_bad_inputs():
    model = tiny_editar()
    cond, text = inputs()
    with pytest.raises(ValueError, match="encode the image at 64 px"):
        editar_generate(model, torch.zeros(2, 8, 8, dtype=torch.long), text, SamplingSettings(), [0, 1])
    with pytest.raises(ValueError, match="text encoder does not match"):
        editar_generate(model, cond, Condition(torch.randn(2, 120, 32)), SamplingSettings(), [0, 1])
    assert task_prompt("canny", "a cat") == ("Given the canny edge image, generate an image following the "
                                             "description: a cat")
    assert task_prompt("edit", "make it snow") == "make it snow"
    with pytest.raises(ValueError, match="empty"):
        task_prompt("edit", " ")
    with pytest.raises(ValueError, match="task"):
        task_prompt("sketch", "a cat")


def test_editar_model_refuses_plain_generation():
    from ar_edit_pack.core.llamagen.generate import generate

    with pytest.raises(ValueError, match="AR EditAR node"):
        generate(tiny_editar(), Condition(torch.randn(1, T, 32), torch.ones(1, T, dtype=torch.bool)),
                 SamplingSettings(), [0])


def test_editar_file_is_not_mistaken_for_plain_llamagen(tmp_path):
    save_official_pt(tiny_editar(), str(tmp_path / "e.pt"))
    assert isinstance(loaders.load_gpt(tmp_path / "e.pt", n_head=TINY_HEADS), EditARGPT)
    plain = LlamaGenGPT(GPTConfig(**{**TINY_T2I, "cls_token_num": T}))
    save_official_pt(plain, str(tmp_path / "t2i_64.pt"))
    assert type(loaders.load_gpt(tmp_path / "t2i_64.pt", n_head=TINY_HEADS)) is LlamaGenGPT
