"""Anchor-draft decoding: the source tokens are verified many per forward pass, and the result is exactly what
one-token-per-pass decoding gives (ATM, naive masked edits, sweeps, EditAR), in fewer passes."""
import itertools

import pytest
import torch

from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.defaults import defaults
from ar_edit_pack.core.llamagen.atm import ATMSettings, atm_edit, build_source_cache, naive_edit
from ar_edit_pack.core.llamagen.editar import editar_generate
from ar_edit_pack.core.llamagen.generate import DecodeStats, generate
from ar_edit_pack.core.llamagen.gpt import KVCache, prefix_causal_mask
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings
from ar_edit_pack.core.sweeps import expand, run_sweep

from test_editar import T, tiny_editar
from test_llamagen_gpt import caption_condition
from tiny_models import tiny_gpt, tiny_vq

SAMPLING = SamplingSettings(cfg_scale=3.0, temperature=1.0, top_k=0, top_p=1.0)
G = 8  # an 8x8 token grid: long enough for chunks of several tokens


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(2)
    model, vq = tiny_gpt(image_size=G * 16), tiny_vq()
    cond = caption_condition(model.cfg, 3)
    src = generate(model, cond, SAMPLING, [1, 2, 3])
    cache = build_source_cache(TokenBatch(src.view(3, G, G), "generated"), vq.quantize.codebook())
    return model, cache, caption_condition(model.cfg, 3, seed=5)


def centre_region(batch=3, g=G):
    region = torch.zeros(batch, g, g, dtype=torch.bool)
    region[:, g // 4: 3 * g // 4, g // 4: 3 * g // 4] = True  # a quarter of the area, centred
    return region


SETTINGS = [ATMSettings(K, alpha, tau, fallback, candidates) for K, alpha, tau, fallback, candidates in [
    (1, 0.0, 1.0, "greedy", "distinct"), (8, 0.6, 0.25, "greedy", "distinct"), (8, 0.6, 1.0, "sample", "sampled"),
    (64, 0.0, 4.0, "greedy", "distinct"), (64, 0.6, 1.0, "greedy", "sampled"), (150, 0.6, -1.0, "sample", "distinct")]]


@pytest.mark.parametrize("setting,masked", list(itertools.product(SETTINGS, [False, True])))
def test_atm_draft_equals_sequential(setup, setting, masked):
    model, cache, edit = setup
    region = centre_region() if masked else None
    seq, draft = DecodeStats(), DecodeStats()
    a = atm_edit(model, cache, edit, SAMPLING, setting, [4, 5, 6], region, max_chunk=1, stats=seq)
    b = atm_edit(model, cache, edit, SAMPLING, setting, [4, 5, 6], region, stats=draft)
    assert torch.equal(a.tokens, b.tokens)
    assert seq.passes == G * G  # the prefill and one pass per later token
    assert draft.passes <= seq.passes


def test_draft_skips_what_the_source_keeps(setup):
    model, cache, edit = setup
    every = ATMSettings(K=64, alpha=0.0, tau=4.0, candidates="distinct")  # every token a candidate, any distance matches: the source
    stats = DecodeStats()
    out = atm_edit(model, cache, edit, SamplingSettings(cfg_scale=3.0, top_k=0), every, [4, 5, 6], stats=stats)
    assert torch.equal(out.tokens, cache.anchors)
    assert stats.passes <= 8  # 64 tokens in chunks of 2, 4, 8, 16, 32 (+ the prefill)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_naive_masked_edit_draft_equals_sequential(setup, cfg):
    model, cache, edit = setup
    sampling = SamplingSettings(cfg_scale=cfg, temperature=1.0, top_k=0, top_p=1.0)
    seq, draft = DecodeStats(), DecodeStats()
    a = naive_edit(model, cache, edit, sampling, [7, 8, 9], centre_region(), max_chunk=1, stats=seq)
    b = naive_edit(model, cache, edit, sampling, [7, 8, 9], centre_region(), stats=draft)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(b.tokens[~centre_region().view(3, -1)], cache.anchors[~centre_region().view(3, -1)])
    assert draft.passes < 0.6 * seq.passes  # the forced three quarters go by in long chunks


def test_sweep_draft_equals_sequential(setup):
    model, cache, edit = setup
    settings, _ = expand([8, 64], [0.6], [0.25, 1.0, 2.0], [0, 1], [2.0, 3.0], "greedy", "sampled")
    one = cache.select(torch.tensor([0]))
    cond = edit.index(torch.tensor([0]))
    for method, region in (("atm", None), ("atm", centre_region(1)), ("naive", centre_region(1))):
        a = run_sweep(model, one, cond, SAMPLING, settings, method, region, max_chunk=1)
        b = run_sweep(model, one, cond, SAMPLING, settings, method, region)
        assert torch.equal(a.tokens, b.tokens), method


@pytest.mark.parametrize("image_cfg,masked", [(1.0, False), (1.5, True)])
def test_editar_draft_equals_sequential(image_cfg, masked):
    model = tiny_editar()
    g = torch.Generator().manual_seed(3)
    cond_tokens = torch.randint(0, 64, (2, 4, 4), generator=g)
    text = Condition(torch.randn(2, T, 32, generator=g))
    keep = None
    if masked:
        keep = torch.ones(2, 4, 4, dtype=torch.bool)
        keep[:, 1:3, 1:3] = False
    seq, draft = DecodeStats(), DecodeStats()
    a = editar_generate(model, cond_tokens, text, SAMPLING, [0, 1], 3.0, image_cfg, keep, max_chunk=1, stats=seq)
    b = editar_generate(model, cond_tokens, text, SAMPLING, [0, 1], 3.0, image_cfg, keep, stats=draft)
    assert torch.equal(a, b)
    assert draft.passes <= seq.passes


def test_kv_cache_after_a_rollback_equals_a_fresh_prefill():
    """Feed a chunk whose second half is a wrong draft, roll back by writing the right tokens from the first
    wrong position on: every cache entry the next query may read equals a prefill of the accepted tokens."""
    model = tiny_gpt(image_size=G * 16)
    cond = caption_condition(model.cfg, 1)
    prefix = model.embed_condition(cond.raw)
    T, S = prefix.shape[1], prefix.shape[1] + 16
    mask = prefix_causal_mask(cond.mask, S, T, 1, "cpu")
    pos = torch.arange(S)
    right = torch.randint(0, 64, (1, 8))
    wrong = right.clone()
    wrong[:, 4:] = (wrong[:, 4:] + 1) % 64

    def feed(cache, tokens, start):
        L = tokens.shape[1]
        return model.forward_embeddings(model.tok_embeddings(tokens), pos[start:start + L],
                                        mask[:, :, start:start + L], cache)

    with torch.inference_mode():
        rolled, fresh = KVCache(model.cfg, 1, S, model.dtype, "cpu"), KVCache(model.cfg, 1, S, model.dtype, "cpu")
        for cache in (rolled, fresh):
            model.forward_embeddings(prefix, pos[:T], mask[:, :, :T], cache)
        feed(rolled, wrong, T)  # positions T .. T+7, the last four wrong
        out_rolled = feed(rolled, right[:, 4:6], T + 4)  # roll back to 4 accepted, continue with two right tokens
        out_fresh = feed(fresh, right[:, :6], T)
    n = T + 6  # what a query at the next position may read
    torch.testing.assert_close(rolled.k[:, :, :, :n], fresh.k[:, :, :, :n])
    torch.testing.assert_close(rolled.v[:, :, :, :n], fresh.v[:, :, :, :n])
    torch.testing.assert_close(out_rolled, out_fresh[:, 4:6])


def test_embedded_atm_draft_is_exact_on_shapesedit_cases():
    """One edit at a time (batch 1, as an artist runs it): the same tokens, fewer passes in all."""
    from ar_edit_pack.core.shapes import bench, embedded, world

    gpt, text, vq = embedded.load_embedded()
    seq, draft = DecodeStats(), DecodeStats()
    for i, case in enumerate(world.edit_cases(15, seed=3)):
        src = bench.to_model(world.render(case.source)[None])
        cache = build_source_cache(TokenBatch(vq.encode(src), "encoded"), vq.quantize.codebook())
        emb = text.encode([case.prompt])
        cond = Condition(emb.features, emb.mask, emb.prompts)
        a = atm_edit(gpt, cache, cond, defaults(gpt, "sampling"), defaults(gpt, "atm"), [i], max_chunk=1,
                     stats=seq)
        b = atm_edit(gpt, cache, cond, defaults(gpt, "sampling"), defaults(gpt, "atm"), [i], stats=draft)
        assert torch.equal(a.tokens, b.tokens), case.detail
    assert draft.passes < seq.passes
