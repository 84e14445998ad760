"""Test setup: the pack as installed (`pip install -e .`: `ar_edit_pack`, this checkout), tiny real models."""
from __future__ import annotations

import os

import pytest
import torch

import ar_edit_pack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.samefile(os.path.dirname(ar_edit_pack.__file__), ROOT):
    raise RuntimeError(f"ar_edit_pack is imported from {os.path.dirname(ar_edit_pack.__file__)}, not this checkout "
                       f"({ROOT}): run pip install -e . here")
torch.set_num_threads(2)

CAPTIONS = ["a red circle at the top left on a white background", "a small blue square", "a green star",
            "a photo of a cat sitting on a sofa", "two yellow triangles and a purple circle"]


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory):
    """A real flan-t5-layout encoder folder: tiny SentencePiece tokenizer + random T5EncoderModel."""
    import sentencepiece as spm
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    d = tmp_path_factory.mktemp("t5")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(CAPTIONS * 20))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(d / "spiece"), vocab_size=32, pad_id=0,
                                   eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2)
    out = d / "tiny-t5"
    T5Tokenizer(vocab_file=str(d / "spiece.model"), extra_ids=0, legacy=True).save_pretrained(out)
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=32, d_model=32, num_layers=2, num_heads=4, d_kv=8, d_ff=64,
                   feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5EncoderModel(cfg).save_pretrained(out)
    return str(out)
