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


def test_infinity_aredit_and_varedit_compiled_equal_eager():
    """Each scale's pass compiled (inductor) gives the eager bits: generation with CFG, AREdit inside a mask, and
    VAREdit with its source prefix; a second generation with new seeds reuses the graphs."""
    from ar_edit_pack.core.infinity.aredit import AREditSettings, aredit_edit, build_source
    from ar_edit_pack.core.infinity.generate import InfinitySampling, generate as infinity_generate
    from ar_edit_pack.core.infinity.varedit import varedit_edit
    from tiny_models import infinity_condition, tiny_infinity, tiny_infinity_vae

    sched = [(1, 1), (2, 2), (4, 4)]
    model = tiny_infinity()
    cond = infinity_condition(2, lengths=[5, 3])
    s = InfinitySampling(cfg=2.0, tau=0.7, top_p=0.9)
    eager = infinity_generate(model, cond, sched, s, torch.tensor([3, 4]))
    fast = infinity_generate(model, cond, sched, s, torch.tensor([3, 4]), compile="on")
    assert all(torch.equal(a, b) for a, b in zip(eager.bits, fast.bits))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eager.p1, fast.p1))
    before = graphs()
    again = infinity_generate(model, cond, sched, InfinitySampling(cfg=2.0, tau=0.7, top_p=0.9), torch.tensor([8, 9]),
                              compile="on")
    assert graphs() == before  # new seeds and settings objects: the scales' graphs are reused
    assert all(torch.equal(a, b) for a, b in zip(again.bits, infinity_generate(
        model, cond, sched, s, torch.tensor([8, 9])).bits))
    source = build_source(model, eager, None, None)
    region = torch.zeros(2, 64, 64)
    region[:, :, 32:] = 1
    target = infinity_condition(2, lengths=[4, 6], seed=5)
    settings = [AREditSettings(gamma=0, threshold=0.1), AREditSettings(gamma=1, threshold=0.0)]
    a = aredit_edit(model, source, target, settings, torch.tensor([1, 2]), region)
    b = aredit_edit(model, source, target, settings, torch.tensor([1, 2]), region, compile="on")
    assert all(torch.equal(x, y) for x, y in zip(a.tokens.bits, b.tokens.bits))
    assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))
    vae = tiny_infinity_vae()
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    x = varedit_edit(model, vae, cond, img, sched, s, torch.tensor([5, 6]))
    y = varedit_edit(model, vae, cond, img, sched, s, torch.tensor([5, 6]), compile="on")
    assert all(torch.equal(p, q) for p, q in zip(x.bits, y.bits))
