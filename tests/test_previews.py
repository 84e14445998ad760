"""Live previews: the picture so far shown in the progress bar while a next-token loop samples. They change no
token, see only what is final, keep to their time budget, skip the last step, and stay off unless asked for."""
from __future__ import annotations

import os

import pytest
import torch

from ar_edit_pack.nodes import comfy_bridge as bridge


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_the_previewer_keeps_to_its_share_of_the_time_and_skips_the_last_step():
    clock, sent = FakeClock(), []

    def render(codes, done):
        clock.t += 1.0  # every picture costs a second
        return torch.zeros(1, 48, 48, 3)

    preview = bridge.Previewer(render, lambda done, total, image: sent.append((done, image.size)), clock)
    for done in range(1, 101):  # a loop of 100 steps, a second each
        clock.t += 1.0
        preview(done, 100, lambda: torch.zeros(1, 100, dtype=torch.long))
    drawn = [d for d, _ in sent]
    assert drawn and 100 not in drawn and min(drawn) >= 1  # not before half a second, not at the end
    assert preview.spent <= bridge.PREVIEW_SHARE * clock.t  # the next picture's cost counted in advance
    assert all(size == (288, 288) for _, size in sent)  # 48 px enlarged by a whole factor past 256


def test_grid_preview_shows_complete_rows_only():
    decoded = []

    def decode(codes):
        decoded.append(codes.clone())
        return torch.ones(1, codes.shape[1] * 8, codes.shape[2] * 8, 3)

    render = bridge.grid_preview(decode, (3, 4), 8)
    codes = torch.arange(12)[None]
    assert render(lambda: codes, 3) is None  # not one row yet
    picture = render(lambda: codes, 9)  # two rows done
    assert torch.equal(decoded[-1], torch.arange(8).view(1, 2, 4))
    assert picture.shape == (1, 24, 32, 3) and bool((picture[:, :16] == 1).all()) and bool((picture[:, 16:] < 1).all())


@pytest.mark.parametrize("draft", [False, True])
def test_previews_change_no_token_and_see_the_final_prefix(draft):
    from ar_edit_pack.core.pipelines import llamagen
    from ar_edit_pack.core.shapes import embedded

    gpt, text, vq = embedded.load_embedded()
    cond = llamagen.text_condition(text, ["a red circle at the top left on a white background"] * 2)
    sampling = embedded.embedded_defaults("llamagen", "sampling")
    generated = llamagen.generate(gpt, cond, sampling, [1, 2])
    plain = generated.tokens
    seen = []
    progress = lambda done, total: None  # noqa: E731
    progress.preview = lambda done, total, codes: seen.append((done, codes()[:, :done].clone()))
    again = llamagen.generate(gpt, cond, sampling, [1, 2], progress=progress).tokens
    assert torch.equal(again, plain) and seen
    flat = plain.view(2, -1)
    assert all(torch.equal(c, flat[:, :d]) for d, c in seen)
    if draft:  # an ATM edit verifying its source in chunks: the previews see whole accepted runs
        cache = llamagen.source_cache(generated, vq)
        seen.clear()
        edited = llamagen.edit(gpt, cache, cond, sampling, embedded.embedded_defaults("llamagen", "atm"), [1, 2],
                               progress=progress)
        reference = llamagen.edit(gpt, cache, cond, sampling, embedded.embedded_defaults("llamagen", "atm"), [1, 2])
        assert torch.equal(edited.tokens.tokens, reference.tokens.tokens)
        out = edited.tokens.tokens.view(2, -1)
        assert seen and all(torch.equal(c, out[:, :d]) for d, c in seen)


def test_lumina_previews_see_codes_in_grid_order_without_row_ends():
    from ar_edit_pack.core.pipelines import lumina
    from ar_edit_pack.core.shapes.embedded import EMBEDDED_DIR, LUMINA_CHOICES

    model = lumina.load_lumina(os.path.join(EMBEDDED_DIR, LUMINA_CHOICES["autoregressive"][1]))
    caption = ["a red circle at the top left on a white background"]
    plain = lumina.generate(model, caption, 48, 48, [4]).tokens.view(1, -1)
    seen = []
    progress = lambda done, total: None  # noqa: E731
    progress.preview = lambda done, total, codes: seen.append((done, total, codes()[:, :done].clone()))
    again = lumina.generate(model, caption, 48, 48, [4], progress=progress).tokens.view(1, -1)
    assert torch.equal(again, plain) and seen and all(t == 36 for _, t, _ in seen)
    assert all(c.shape[1] == d and torch.equal(c, plain[:, :d]) for d, _, c in seen)


def test_the_generate_node_previews_only_with_a_tokenizer_and_previews_on(monkeypatch):
    from ar_edit_pack.nodes.conditioning import TextEncode
    from ar_edit_pack.nodes.generate import Generate
    from ar_edit_pack.nodes.loaders import LlamaGenLoader, TextEncoderLoader, VQLoader

    (model,) = LlamaGenLoader().load("(embedded) shapes-t2i", "fp32")
    (text,) = TextEncoderLoader().load("(embedded) shapes-words", "auto", "default")
    (vq,) = VQLoader().load("(embedded) shapes-vq", "fp32")
    (cond,) = TextEncode().encode(text, "a red circle at the top left on a white background", True)
    args = (model, cond, 0, 1, -1, 1.0, -1, 1.0)
    (plain,) = Generate().generate(*args)
    sent = []
    monkeypatch.setattr(bridge, "PREVIEW_AFTER_S", 0.0)  # the embedded run lasts milliseconds
    monkeypatch.setattr(bridge, "PREVIEW_SHARE", 1e9)
    monkeypatch.setattr(bridge, "preview_sender", lambda bar, total: lambda d, t, image: sent.append((d, image)))
    (watched,) = Generate().generate(*args, preview_tokenizer=vq)
    assert torch.equal(watched.tokens, plain.tokens) and sent and all(d < 9 for d, _ in sent)
    assert sent[0][1].size == (288, 288)  # the 48 px picture so far, enlarged
    sent.clear()
    Generate().generate(*args)  # no tokenizer: nothing to draw with
    assert not sent
    monkeypatch.setattr(bridge, "preview_sender", lambda bar, total: None)  # ComfyUI's previews off
    Generate().generate(*args, preview_tokenizer=vq)
    assert not sent


def test_infinity_previews_show_the_scales_so_far_and_change_no_bit(monkeypatch):
    from ar_edit_pack.nodes.conditioning import InfinityTextEncode
    from ar_edit_pack.nodes.generate import InfinityGenerate
    from ar_edit_pack.nodes.loaders import BSQVAELoader, InfinityLoader, TextEncoderLoader

    (model,) = InfinityLoader().load("(embedded) shapes-infinity", "fp32")
    (vae,) = BSQVAELoader().load("(embedded) shapes-infinity-vae", "fp32")
    (text,) = TextEncoderLoader().load("(embedded) shapes-words", "auto", "default")
    (cond,) = InfinityTextEncode().encode(text, "a red circle at the top left on a white background", True)
    args = (model, cond, 0, 1, "auto", "1:1", -1, 0.5, 0.97, "", "")
    (plain,) = InfinityGenerate().generate(*args)
    sent = []
    monkeypatch.setattr(bridge, "PREVIEW_AFTER_S", 0.0)
    monkeypatch.setattr(bridge, "PREVIEW_SHARE", 1e9)
    monkeypatch.setattr(bridge, "preview_sender", lambda bar, total: lambda d, t, image: sent.append((d, image)))
    (watched,) = InfinityGenerate().generate(*args, preview_vae=vae)
    assert all(torch.equal(a, b) for a, b in zip(plain.bits, watched.bits))
    scales = len(plain.schedule)
    assert [d for d, _ in sent] == list(range(1, scales))  # after every scale but the last
    assert all(image.size == (288, 288) for _, image in sent)  # each enlarged to the final 48 px, then x6


@pytest.mark.parametrize("method", ["editar", "varedit"])
def test_the_instruction_editors_preview_through_their_own_tokenizer(monkeypatch, method):
    from ar_edit_pack.core.shapes import world
    from ar_edit_pack.nodes.editar import EditAR
    from ar_edit_pack.nodes.loaders import BSQVAELoader, EditARLoader, TextEncoderLoader, VAREditLoader, VQLoader
    from ar_edit_pack.nodes.varedit import VAREdit

    image = torch.from_numpy(world.render(world.parse_caption(world.EXAMPLE_CAPTION))).float()[None] / 255
    (text,) = TextEncoderLoader().load("(embedded) shapes-instructions", "auto", "default")
    if method == "editar":
        (model,) = EditARLoader().load("(embedded) shapes-editar", "fp32")
        (tok,) = VQLoader().load("(embedded) shapes-vq", "fp32")
        run = lambda: EditAR().edit(model, tok, text, image, "replace the blue square with a yellow star",  # noqa: E731
                                    "edit", 0, -1, 1.0, 1.0, 0, 1.0)[0].tokens
    else:
        (model,) = VAREditLoader().load("(embedded) shapes-varedit", "fp32")
        (tok,) = BSQVAELoader().load("(embedded) shapes-infinity-vae", "fp32")
        run = lambda: VAREdit().edit(model, tok, text, image, "replace the blue square with a yellow star",  # noqa: E731
                                     "auto", 0, -1, 0.5, 0.97)[1].bits
    plain = run()
    sent = []
    monkeypatch.setattr(bridge, "PREVIEW_AFTER_S", 0.0)
    monkeypatch.setattr(bridge, "PREVIEW_SHARE", 1e9)
    monkeypatch.setattr(bridge, "preview_sender", lambda bar, total: lambda d, t, image: sent.append((d, t, image)))
    watched = run()
    same = torch.equal(plain, watched) if method == "editar" else all(torch.equal(a, b) for a, b in zip(plain, watched))
    assert same and sent and all(image.size == (288, 288) for _, _, image in sent)
    assert all(d < t for d, t, _ in sent)  # never the last step: the result follows
