import pytest
import torch

from ar_edit_pack.core import T5TextEncoder, condition_from_text, generate
from ar_edit_pack.core.text.caption_cleaning import clean_caption
from ar_edit_pack.core.sampling import SamplingSettings
from ar_edit_pack.core.text.encoders import to_llamagen_layout

from tiny_models import tiny_gpt


def test_layout_moves_valid_tokens_to_the_end_and_zeroes_pads():
    feats = torch.arange(2 * 5 * 1, dtype=torch.float32).view(2, 5, 1) + 1
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    out, new_mask = to_llamagen_layout(feats, mask)
    assert new_mask.tolist() == [[False, False, False, True, True], [True] * 5]
    assert out[0, :, 0].tolist() == [0, 0, 0, 1, 2]
    assert torch.equal(out[1], feats[1])


def test_t5_encoder_features_follow_llamagen_layout(t5_dir):
    enc = T5TextEncoder(t5_dir, max_length=16)
    emb = enc.encode(["a red circle", "a small blue square at the bottom right"])
    assert emb.features.shape == (2, 16, 32) and emb.mask.shape == (2, 16)
    # reference: run the tokenizer/model directly, then move valid tokens to the end by hand
    batch = enc.tokenizer([enc.preprocess(p) for p in emb.prompts], max_length=16, padding="max_length",
                          truncation=True, return_tensors="pt")
    hidden = enc.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    for b in range(2):
        n = int(batch["attention_mask"][b].sum())
        assert emb.mask[b].sum() == n and emb.mask[b, -n:].all()
        torch.testing.assert_close(emb.features[b, -n:], hidden[b, :n])
        assert emb.features[b, :-n].abs().sum() == 0


def test_t5_drives_a_matching_model_and_rejects_a_mismatched_one(t5_dir):
    enc = T5TextEncoder(t5_dir, max_length=8)
    cond = condition_from_text(enc.encode(["a green star"]))
    tokens = generate(tiny_gpt(), cond, SamplingSettings(cfg_scale=3.0, top_k=0), [0])
    assert tokens.shape == (1, 16)
    # a longer max_length only adds masked pad slots on the left: identical result on the same model
    long = condition_from_text(T5TextEncoder(t5_dir, max_length=20).encode(["a green star"]))
    assert long.raw.shape[1] == 20
    assert torch.equal(generate(tiny_gpt(), long, SamplingSettings(cfg_scale=3.0, top_k=0), [0]), tokens)
    with pytest.raises(ValueError, match="shorten"):
        generate(tiny_gpt(cls_token_num=2), long, SamplingSettings(), [0])
    with pytest.raises(ValueError, match="text encoder does not match"):
        generate(tiny_gpt(caption_dim=48), cond, SamplingSettings(), [0])


def test_empty_prompt_is_refused(t5_dir):
    enc = T5TextEncoder(t5_dir, max_length=8)
    with pytest.raises(ValueError, match="empty"):
        enc.encode(["  "])
    with pytest.raises(FileNotFoundError, match="T5 folder not found"):
        T5TextEncoder(t5_dir + "-missing")


@pytest.mark.parametrize("raw, clean", [
    ("A Photo of a CAT, sitting on a sofa.", "a photo of a cat, sitting on a sofa."),
    ("Visit https://example.com now <b>bold</b> &amp; more", "visit now bold more"),
    ("this-is-my-cute-cat", "this is my cute cat"),
    ('"a red circle at the top left"', "a red circle at the top left"),
    ("A 1920x1080 wallpaper #123 of mountains...", "a wallpaper of mountains"),
    ("a dog   on\\nthe   beach @someone", "a dog on the beach"),
    ("Free shipping! IMG_1234.jpg a cat", "! a cat"),
])
def test_caption_cleaning(raw, clean):
    assert clean_caption(raw) == clean


def test_a_prompt_longer_than_t5_reads_is_cut_as_the_official_code_does_and_said(t5_dir, caplog):
    """Every official code the pack follows cuts T5 prompts (LlamaGen / EditAR at their length, Infinity / VAREdit
    at 512): the pack does the same, and warns naming the prompt, its length and what is read."""
    import logging

    enc = T5TextEncoder(t5_dir)
    long = " ".join(["a green star at the top left"] * 40)
    longer = long + " and a purple circle in the center on a pink background"
    with caplog.at_level(logging.WARNING, logger="ar_edit"):
        a, b = enc.encode([long]), enc.encode([longer])
    assert torch.equal(a.features, b.features)  # only the first 120 tokens are read
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("prompt 1 has" in m and "LlamaGen reads the first 120" in m for m in messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ar_edit"):
        enc.encode(["a green star"])
        raw = enc.encode_raw([long], 40)
        inf = enc.encode_infinity([" ".join([long] * 3)])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "EditAR reads the first 40" in messages[0]
    assert "Infinity / VAREdit reads the first 512" in messages[1]
    assert raw.features.shape[1] == 40 and inf.features.shape[1] == 512
