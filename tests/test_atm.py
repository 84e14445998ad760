import math

import pytest
import torch

from ar_edit_pack.core.llamagen.atm import (AnchorPicker, ATMParams, ATMSettings, ATMTrace, SourceCache, atm_edit,
                                   build_source_cache, naive_edit)
from ar_edit_pack.core.condition import Condition
from ar_edit_pack.core.llamagen.generate import generate, teacher_forced_logits
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings, counter_uniform, filter_logits, gumbel_noise
from ar_edit_pack.core.sweeps import expand, parse_values, run_sweep

from tiny_models import tiny_gpt, tiny_vq

N = 16  # 4x4 grid


def caption(batch, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, 40, dtype=torch.bool)
    mask[:, -6:] = True
    return Condition(torch.randn(batch, 40, 32, generator=g) * mask[..., None], mask)


@pytest.fixture(scope="module")
def setup():
    model, vq = tiny_gpt(), tiny_vq()
    src_cond = caption(2, 0)
    sampling = SamplingSettings(cfg_scale=3.0, top_k=0)
    src_tokens = generate(model, src_cond, sampling, [3, 4])
    source = TokenBatch(src_tokens.view(2, 4, 4), "generated", src_cond, torch.tensor([3, 4]), sampling)
    cache = build_source_cache(source, vq.quantize.codebook())
    return model, vq, cache, caption(2, 1), sampling


def test_max_tau_with_every_token_a_candidate_returns_the_anchors(setup):
    model, vq, cache, edit, sampling = setup
    out = atm_edit(model, cache, edit, SamplingSettings(cfg_scale=3.0, top_k=0), ATMSettings(K=64, alpha=0.0, tau=4.0, candidates="distinct"),
                   [7, 8])
    assert torch.equal(out.tokens, cache.anchors)
    assert out.locked_fraction.tolist() == [1.0, 1.0] and not out.changed.any()


def test_negative_tau_equals_the_naive_edit(setup):
    model, vq, cache, edit, sampling = setup
    naive = naive_edit(model, cache, edit, sampling, [7, 8])
    atm = atm_edit(model, cache, edit, sampling, ATMSettings(K=20, tau=-1.0, fallback="sample", candidates="distinct"), [7, 8])
    assert torch.equal(atm.tokens, naive.tokens)
    # and naive editing is plain generation under the edit prompt with the same seeds
    assert torch.equal(naive.tokens, generate(model, edit, sampling, [7, 8]))
    greedy = atm_edit(model, cache, edit, sampling, ATMSettings(K=20, tau=-1.0, fallback="greedy", candidates="distinct"), [7, 8])
    assert torch.equal(greedy.tokens, generate(model, edit, SamplingSettings(cfg_scale=3.0, temperature=0.0), [0, 0]))


@pytest.mark.parametrize("K, alpha", [(150, 0.6), (37, 1.0), (5, 0.25)])
def test_window_sizes_follow_the_formula_at_every_step(setup, K, alpha):
    model, vq, cache, edit, sampling = setup
    trace = ATMTrace()
    atm_edit(model, cache, edit, sampling, ATMSettings(K=K, alpha=alpha, candidates="distinct"), [1, 2], trace=trace)
    assert len(trace.windows) == N
    for i, w in enumerate(trace.windows):
        assert w.tolist() == [max(1, math.floor(K * (1 - alpha * i / N)))] * 2


def reference_edit(model, cache, edit, sampling, s: ATMSettings, seeds):
    """Slow, explicit ATM: Python loops over rows, candidates and window, teacher-forced logits."""
    B = cache.batch
    tokens = torch.zeros(B, N, dtype=torch.long)
    cb = cache.codebook
    for i in range(N):
        logits = teacher_forced_logits(model, edit, torch.cat([tokens[:, :i], torch.zeros(B, 1, dtype=torch.long)], 1)
                                       if i < N else tokens, sampling.cfg_scale)[:, i]
        filt = filter_logits(logits, sampling)
        noise = gumbel_noise(torch.tensor(seeds), i, filt.shape[-1])
        k_max = min(s.K, filt.shape[-1])
        uniform = counter_uniform(torch.tensor(seeds), i, k_max, stream=1)
        for b in range(B):
            support = int(torch.isfinite(filt[b]).sum())
            order = sorted(range(filt.shape[-1]), key=lambda t: -float(filt[b, t] + noise[b, t]))
            if s.candidates == "distinct":
                cands = order[:min(s.K, support)]
            else:  # K draws with replacement by inverse CDF, the first being the plain sample; repeats merged
                cdf = filt[b].softmax(-1).cumsum(-1)
                draws = [order[0]] + [min(int(torch.searchsorted(cdf, uniform[b, j] * cdf[-1], right=True)),
                                          filt.shape[-1] - 1) for j in range(1, k_max)]
                cands = sorted(set(draws))
            window = sorted(cands, key=lambda t: -float(filt[b, t]))[:max(1, math.floor(s.K * (1 - s.alpha * i / N)))]
            anchor = cb[cache.anchors[b, i]]
            dists = [float(((cb[t] - anchor) ** 2).sum()) for t in window]
            j = min(range(len(window)), key=lambda k: dists[k])
            if dists[j] <= s.tau:
                tokens[b, i] = window[j]
            else:
                tokens[b, i] = order[0] if s.fallback == "sample" else int(filt[b].argmax())
    return tokens


@pytest.mark.parametrize("s", [ATMSettings(K=10, alpha=0.6, tau=0.5, candidates="distinct"), ATMSettings(K=40, alpha=0.3, tau=1.5, fallback="sample", candidates="distinct"),
                               ATMSettings(K=200, alpha=0.9, tau=1.0, candidates="distinct"),
                               ATMSettings(K=12, alpha=0.6, tau=0.5, candidates="sampled"),
                               ATMSettings(K=200, alpha=0.2, tau=1.0, fallback="sample", candidates="sampled")])
def test_batched_rule_equals_an_explicit_reference(setup, s):
    model, vq, cache, edit, _ = setup
    sampling = SamplingSettings(cfg_scale=2.0, top_k=30, top_p=0.95)
    out = atm_edit(model, cache, edit, sampling, s, [5, 6])
    assert torch.equal(out.tokens, reference_edit(model, cache, edit, sampling, s, [5, 6]))


def test_region_mask_keeps_every_token_outside(setup):
    model, vq, cache, edit, sampling = setup
    region = torch.zeros(2, 4, 4, dtype=torch.bool)
    region[0, 1:3, 1:3] = True
    region[1, :, 2:] = True
    for out in (atm_edit(model, cache, edit, sampling, ATMSettings(tau=-1.0, fallback="sample", candidates="distinct"), [1, 2], region=region),
                naive_edit(model, cache, edit, sampling, [1, 2], region=region)):
        outside = ~region.view(2, -1)
        assert torch.equal(out.tokens[outside], cache.anchors[outside])
        assert out.changed[region.view(2, -1)].any()  # and the inside is really edited
    with pytest.raises(ValueError, match="region mask"):
        atm_edit(model, cache, edit, sampling, ATMSettings(candidates="distinct"), [1, 2], region=torch.ones(2, 3, 3, dtype=torch.bool))


def test_sweep_item_equals_the_single_edit(setup):
    model, vq, cache, edit, sampling = setup
    settings, varying = expand(K=[10, 64], alpha=[0.6], tau=[0.2, 1.0, 4.0], seeds=[9, 10], cfg=[3.0, 5.0],
                               fallback="greedy")
    assert len(settings) == 24 and varying == {"K", "tau", "seed", "cfg"}
    one = SourceCache(cache.anchors[:1], cache.anchor_vectors[:1], cache.codebook, cache.grid, cache.stride, cache.origin)
    edit1 = edit.index(torch.tensor([0]))
    swept = run_sweep(model, one, edit1, sampling, settings)
    assert swept.tokens.shape == (24, N)
    for j in (0, 5, 13, 23):
        s = settings[j]
        single = atm_edit(model, one, edit1, sampling, s.atm, [s.seed], cfg_scale=s.cfg_scale)
        assert torch.equal(swept.tokens[j], single.tokens[0]), j
    # larger tau locks more to the anchors (monotone on average over the sweep)
    locked = swept.locked_fraction.view(2, 2, 2, 3)  # seed, cfg, K, tau
    assert (locked[..., 2].mean() >= locked[..., 0].mean())


def test_cache_from_a_real_image_holds_the_encoder_tokens(setup):
    model, vq, *_ = setup
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    ids = vq.encode(image)
    cache = build_source_cache(TokenBatch(ids, "encoded"), vq.quantize.codebook())
    assert torch.equal(cache.anchors, ids.view(1, -1))
    torch.testing.assert_close(cache.anchor_vectors, vq.quantize.codebook()[ids.view(1, -1)])
    assert cache.condition is None and cache.origin == "encoded"


def test_bad_inputs(setup):
    model, vq, cache, edit, sampling = setup
    with pytest.raises(ValueError, match="K"):
        atm_edit(model, cache, edit, sampling, ATMSettings(K=0, candidates="distinct"), [1, 2])
    with pytest.raises(ValueError, match="alpha"):
        atm_edit(model, cache, edit, sampling, ATMSettings(alpha=1.5, candidates="distinct"), [1, 2])
    with pytest.raises(ValueError, match="fallback"):
        atm_edit(model, cache, edit, sampling, ATMSettings(fallback="maybe", candidates="distinct"), [1, 2])
    big = build_source_cache(TokenBatch(torch.zeros(2, 8, 8, dtype=torch.long), "encoded"), cache.codebook)
    with pytest.raises(ValueError, match="encode the image at 64 px"):
        atm_edit(model, big, edit, sampling, ATMSettings(candidates="distinct"), [1, 2])
    with pytest.raises(ValueError, match="tokenizer and"):
        build_source_cache(TokenBatch(torch.full((1, 4, 4), 64), "encoded"), cache.codebook)
    other_vq = build_source_cache(TokenBatch(torch.zeros(2, 4, 4, dtype=torch.long), "encoded"), torch.randn(32, 4))
    with pytest.raises(ValueError, match="tokenizer and model do not match"):
        atm_edit(model, other_vq, edit, sampling, ATMSettings(candidates="distinct"), [1, 2])


def test_parse_values():
    assert parse_values("0.5, 1.0,2", float, "tau") == [0.5, 1.0, 2.0]
    assert parse_values("0.5:2.0:0.5", float, "tau") == [0.5, 1.0, 1.5, 2.0]
    assert parse_values("1, 2; 3", int, "seed") == [1, 2, 3]
    for bad, kind in (("", float), ("a, b", float), ("1.5", int), ("2:1:1", float)):
        with pytest.raises(ValueError):
            parse_values(bad, kind, "x")
    with pytest.raises(ValueError, match="at most"):
        expand(list(range(1, 20)), [0.6], [0.1 * k for k in range(20)], [0], [7.5], "greedy")


def test_sampled_candidates_leave_out_improbable_anchors():
    # A peaked target (token 0 at ~99.9%) and a source token the target finds improbable (token 5): K
    # distinct candidates covering the codebook always include the anchor and lock back to it; K draws
    # with replacement almost never draw it, so the edit goes through. A plausible anchor locks in both.
    V, rows = 16, 64
    codebook = torch.nn.functional.normalize(torch.randn(V, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    logits = torch.full((rows, V), -12.0)
    logits[:, 0] = 0.0
    logits[:, 3] = -1.0  # a plausible alternative (~27%)
    seeds = torch.arange(rows)
    sampling = SamplingSettings(cfg_scale=1.0, temperature=1.0, top_k=0, top_p=1.0)

    def pick(anchor: int, mode: str) -> torch.Tensor:
        anchors = torch.full((rows, 1), anchor)
        cache = SourceCache(anchors, codebook[anchors], codebook, (1, 1), 16, "encoded")
        params = ATMParams.from_settings(ATMSettings(K=V, alpha=0.0, tau=0.01, candidates=mode), rows, V)
        return AnchorPicker(cache, params, sampling, seeds, None)(torch.tensor([0]), logits[:, None])[:, 0]

    assert (pick(5, "distinct") == 5).all()
    assert (pick(5, "sampled") == 5).float().mean() < 0.1
    assert (pick(3, "sampled") == 3).float().mean() > 0.9 and (pick(3, "distinct") == 3).all()
    with pytest.raises(ValueError, match="candidates"):
        ATMSettings(candidates="all").validate()


def test_auto_candidates_follow_the_share_of_the_codebook():
    """auto = sampled once K is 10% of the codes or more (the embedded 256-code model with K 150), the paper's
    distinct draws below (LlamaGen's 16,384 codes with K 150)."""
    assert ATMSettings(K=150, candidates="auto").resolved(256).candidates == "sampled"
    assert ATMSettings(K=150, candidates="auto").resolved(16384).candidates == "distinct"
    assert ATMSettings(K=150, candidates="distinct").resolved(256).candidates == "distinct"
    params = ATMParams.from_settings([ATMSettings(K=20, candidates="auto"), ATMSettings(K=2, candidates="auto")], 2, 64)
    assert params.with_replacement.tolist() == [True, False]
