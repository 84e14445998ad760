"""The compiled decode pass (torch.compile, inductor on this CPU) gives exactly the eager path's tokens, for plain
generation, Anchor Token Matching with and without drafts and masks, the naive masked edit and EditAR; and a second
run with new seeds, settings objects and caches reuses the compiled graphs instead of compiling again."""
import shutil

import pytest
import torch
from torch._dynamo.utils import counters

from ar_edit_pack.core.llamagen.atm import ATMSettings, atm_edit, build_source_cache, naive_edit
from ar_edit_pack.core.llamagen.editar import editar_generate
from ar_edit_pack.core.llamagen.generate import chunk_length, generate, resolve_compile
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings

from test_editar import T, tiny_editar
from test_llamagen_gpt import caption_condition
from tiny_models import tiny_gpt, tiny_vq

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("cc") is None,
                                reason="inductor on the CPU needs a C++ compiler")
G = 4  # 16 tokens; drafts in chunks of 1 and 2 (each new chunk length is one more graph to compile: ~30 s here)
SAMPLING = SamplingSettings(cfg_scale=3.0, temperature=1.0, top_k=0, top_p=1.0)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model, vq = tiny_gpt(image_size=G * 16), tiny_vq()
    cond = caption_condition(model.cfg, 2)
    src = generate(model, cond, SAMPLING, [1, 2])
    cache = build_source_cache(TokenBatch(src.view(2, G, G), "generated"), vq.quantize.codebook())
    return model, cond, cache, caption_condition(model.cfg, 2, seed=5)


def graphs() -> int:
    return counters["stats"]["unique_graphs"]


def test_compile_option():
    assert resolve_compile("auto", torch.device("cpu")) is False  # eager where launches cost little
    assert resolve_compile("on", torch.device("cpu")) and not resolve_compile("off", torch.device("cpu"))
    with pytest.raises(ValueError, match="compile"):
        resolve_compile("fast", torch.device("cpu"))
    assert [chunk_length(n) for n in (1, 2, 3, 7, 8, 31, 32)] == [1, 2, 2, 4, 8, 16, 32]


def test_generation_compiled_equals_eager(setup):
    model, cond, _, _ = setup
    eager = generate(model, cond, SAMPLING, [3, 4])
    assert torch.equal(generate(model, cond, SAMPLING, [3, 4], compile="on"), eager)
    before = graphs()
    again = generate(model, cond, SamplingSettings(cfg_scale=3.0, top_k=0), [7, 8], compile="on")
    assert graphs() == before  # new seeds, picker and cache: the graph is reused
    assert torch.equal(again, generate(model, cond, SAMPLING, [7, 8]))


@pytest.mark.parametrize("chunk,masked", [(2, True), (1, False)])
def test_atm_compiled_equals_eager(setup, chunk, masked):
    model, _, cache, edit = setup
    region = None
    if masked:
        region = torch.zeros(2, G, G, dtype=torch.bool)
        region[:, 1:3, 1:3] = True
    atm = ATMSettings(K=8, alpha=0.6, tau=0.5, candidates="sampled")
    eager = atm_edit(model, cache, edit, SAMPLING, atm, [5, 6], region, max_chunk=1)
    compiled = atm_edit(model, cache, edit, SAMPLING, atm, [5, 6], region, max_chunk=chunk, compile="on")
    assert torch.equal(compiled.tokens, eager.tokens)
    assert not torch.equal(eager.tokens, cache.anchors)  # an edit took place, so the picks were exercised


def test_naive_masked_compiled_equals_eager(setup):
    model, _, cache, edit = setup
    region = torch.zeros(2, G, G, dtype=torch.bool)
    region[:, :2] = True
    eager = naive_edit(model, cache, edit, SAMPLING, [9, 10], region, max_chunk=1)
    compiled = naive_edit(model, cache, edit, SAMPLING, [9, 10], region, max_chunk=2, compile="on")
    assert torch.equal(compiled.tokens, eager.tokens)


def test_editar_compiled_equals_eager():
    torch.manual_seed(1)
    model = tiny_editar()
    n = model.cfg.num_image_tokens
    cond_tokens = torch.randint(0, model.cfg.vocab_size, (2, n))
    from ar_edit_pack.core.condition import Condition
    text = Condition(torch.randn(2, T, model.cfg.caption_dim), None)
    keep = torch.zeros(2, n, dtype=torch.bool)
    keep[:, : n // 2] = True
    args = (model, cond_tokens, text, SAMPLING, [1, 2], 3.0, 1.5, keep)
    eager = editar_generate(*args, max_chunk=1)
    assert torch.equal(editar_generate(*args, max_chunk=2, compile="on"), eager)
