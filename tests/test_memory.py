"""Memory budgets: a run whose rows do not fit at once runs in micro-batches with exactly the one-batch result; a
budget below one row is a clear error; the estimate covers what a decode allocates."""
import pytest
import torch

from ar_edit_pack.core import memory
from ar_edit_pack.core.llamagen.atm import ATMSettings, build_source_cache
from ar_edit_pack.core.llamagen.gpt import GPT_PRESETS, GPTConfig, KVCache
from ar_edit_pack.core.pipelines import editar, llamagen
from ar_edit_pack.core.records import TokenBatch
from ar_edit_pack.core.sampling import SamplingSettings

from test_editar import tiny_editar
from test_llamagen_gpt import caption_condition
from tiny_models import tiny_gpt, tiny_vq

SAMPLING = SamplingSettings(cfg_scale=3.0, temperature=1.0, top_k=0, top_p=1.0)


def budget_for(model, rows: int) -> int:
    return rows * llamagen.decode_memory(model).per_row


def test_generation_in_micro_batches_equals_one_batch():
    model = tiny_gpt(image_size=64)
    cond = caption_condition(model.cfg, 5)
    whole = llamagen.generate(model, cond, SAMPLING, [1, 2, 3, 4, 5], memory_budget=None)
    seen = []
    parts = llamagen.generate(model, cond, SAMPLING, [1, 2, 3, 4, 5], memory_budget=budget_for(model, 2),
                              progress=lambda done, total: seen.append((done, total)))
    assert torch.equal(parts.tokens, whole.tokens)
    n = model.cfg.num_image_tokens
    assert seen[-1] == (3 * n, 3 * n) and all(t == 3 * n for _, t in seen)  # three parts on one bar, in order
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_sweep_in_micro_batches_equals_one_batch():
    model, vq = tiny_gpt(image_size=64), tiny_vq()
    src = llamagen.generate(model, caption_condition(model.cfg, 1), SAMPLING, [7], memory_budget=None)
    cache = build_source_cache(TokenBatch(src.tokens.repeat(6, 1, 1), "generated"), vq.quantize.codebook())
    settings = [ATMSettings(K=k, tau=t) for k in (4, 16) for t in (0.5, 1.0, 2.0)]
    region = torch.zeros(6, 4, 4, dtype=torch.bool)
    region[:, 1:] = True
    args = (model, cache, caption_condition(model.cfg, 1, seed=3), SAMPLING, settings, list(range(6)))
    kw = dict(region=region, cfg_scale=[1.5, 2.0, 3.0, 4.0, 5.0, 6.0])
    whole = llamagen.edit(*args, **kw, memory_budget=None)
    for rows in (1, 4):
        part = llamagen.edit(*args, **kw, memory_budget=budget_for(model, rows))
        assert torch.equal(part.tokens.tokens, whole.tokens.tokens)
        assert torch.equal(part.locked_fraction, whole.locked_fraction)
    assert not torch.equal(whole.tokens.tokens[0], whole.tokens.tokens[5])  # the rows' settings really differ


def test_editar_in_micro_batches_equals_one_batch():
    model, vq = tiny_editar(), tiny_vq()

    class Encoder:  # fixed features per prompt: what the editor reads
        def encode_raw(self, prompts, length):
            g = [torch.Generator().manual_seed(sum(map(ord, p))) for p in prompts]
            return type("E", (), {"features": torch.stack([torch.randn(length, model.cfg.caption_dim, generator=x)
                                                           for x in g])})()

    n = model.cfg.num_image_tokens
    g = model.cfg.grid_size
    inputs = TokenBatch(torch.randint(0, model.cfg.vocab_size, (3, g, g), generator=torch.Generator().manual_seed(0)),
                        "encoded", stride=16)
    args = (model, vq, Encoder(), inputs, ["a", "b", "c"], [1, 2, 3], [2.0, 3.0, 4.0], 1.0, SAMPLING)
    whole = editar.edit(*args, memory_budget=None)
    part = editar.edit(*args, memory_budget=budget_for(model, 1))
    assert torch.equal(part.tokens, whole.tokens) and whole.tokens.shape == (3, g, g) and n == g * g


def test_too_little_memory_is_a_clear_error():
    model = tiny_gpt(image_size=64)
    need = llamagen.decode_memory(model).per_row
    with pytest.raises(memory.NotEnoughMemory, match=r"per image beyond the models.*free"):
        llamagen.generate(model, caption_condition(model.cfg, 2), SAMPLING, [1, 2], memory_budget=need // 2)


def test_estimate_covers_the_kv_cache():
    # GPT-XL at 512 px, bf16: the static cache is 2 x 36 layers x 20 heads x 1144 x 64 x 2 bytes = 0.21 GB per branch
    xl = GPTConfig(**GPT_PRESETS["GPT-XL"], image_size=512, model_type="t2i", caption_dim=2048, cls_token_num=120)
    est = memory.llamagen_decode(xl, 2, 120, torch.bfloat16)
    kv = 2 * 36 * 20 * 1144 * 64 * 2
    assert 2 * kv < est.per_row < 4 * kv
    model = tiny_gpt(image_size=64)
    cache = KVCache(model.cfg, 2, -(-(model.cfg.cls_token_num + 16) // 8) * 8, model.dtype, "cpu")
    allocated = (cache.k.numel() + cache.v.numel()) * cache.k.element_size()
    assert llamagen.decode_memory(model).per_row > allocated / 2 * 2  # both branches of one row, with room to spare
    assert memory.rows_that_fit(est, 64, 27 * 2 ** 30) < 64  # the 64-row sweep does not fit 27 GiB at once


def test_janus_generation_and_sweep_in_micro_batches_equal_one_batch(tmp_path):
    """Janus-Pro rows of different prompt lengths, and a sweep of per-row ATM settings, cfg scales and a mask: split
    to fit a small budget, the codes are the one batch's; the 7B's estimate holds its KV cache."""
    from ar_edit_pack.core.janus.files import load_janus
    from ar_edit_pack.core.janus.model import JanusConfig, kv_bytes_per_row
    from ar_edit_pack.core.pipelines import janus
    from ar_edit_pack.core.sweeps import SweepSetting
    from tiny_models import JANUS_CAPTIONS, save_tiny_janus

    model, vq = load_janus(save_tiny_janus(tmp_path / "janus"), torch.float32)
    per_row = janus.decode_memory(model, janus.encode_prompts(model, JANUS_CAPTIONS)).per_row
    whole = janus.generate(model, JANUS_CAPTIONS, [1, 2, 3], SAMPLING, memory_budget=None)
    seen = []
    parts = janus.generate(model, JANUS_CAPTIONS, [1, 2, 3], SAMPLING, memory_budget=per_row,
                           progress=lambda done, total: seen.append((done, total)))
    assert torch.equal(parts.tokens, whole.tokens) and seen[-1][0] == seen[-1][1] == 3 * model.cfg.num_image_tokens
    cache = janus.source_cache(whole, vq)
    settings = [SweepSetting(ATMSettings(K=k, tau=t, candidates="sampled"), seed, cfg)
                for k, t, seed, cfg in ((4, 0.5, 0, 1.0), (64, 1.0, 1, 3.0), (16, 2.0, 2, 5.0))]
    mask = torch.zeros(1, 64, 64)
    mask[:, 32:] = 1
    one = janus.sweep(model, cache, JANUS_CAPTIONS[2], settings, "atm", SAMPLING, mask, memory_budget=None)
    for rows in (1, 4):
        split = janus.sweep(model, cache, JANUS_CAPTIONS[2], settings, "atm", SAMPLING, mask,
                            memory_budget=rows * per_row)
        assert torch.equal(split.tokens, one.tokens)
    with pytest.raises(memory.NotEnoughMemory, match="per image"):
        janus.generate(model, JANUS_CAPTIONS, [1, 2, 3], SAMPLING, memory_budget=per_row // 2)
    # Janus-Pro-7B in bf16, a 30-token prompt: 2 branches x 30 layers x 32 heads x 606 x 128 x 2 x 2 bytes of cache
    seven = JanusConfig(dim=4096, n_layer=30, n_head=32, n_kv_head=32, ffn_hidden=11008, vocab_size=102400)
    kv = 2 * kv_bytes_per_row(seven, 30 + 576, 2)
    assert kv < memory.janus_decode(seven, 30, torch.bfloat16).per_row < 2 * kv


def test_infinity_aredit_and_varedit_in_micro_batches_equal_one_batch():
    """The next-scale runs split to fit a small budget: generation (per-row sampling), AREdit (per-row settings, a
    mask) and VAREdit (per-row instructions) give the one batch's bits and masks (probabilities to float rounding)."""
    from ar_edit_pack.core.infinity.aredit import AREditSettings
    from ar_edit_pack.core.infinity.generate import InfinitySampling
    from ar_edit_pack.core.pipelines import infinity, varedit
    from ar_edit_pack.core.shapes import bench, embedded, world

    torch.set_num_threads(2)
    net, text, vae = embedded.load_embedded_infinity()
    schedule = bench.EMBEDDED_INFINITY_SCHEDULE
    per_row = infinity.run_memory(net, schedule).per_row
    scenes = [world.random_scene(__import__("random").Random(i)) for i in range(3)]
    cond = bench.infinity_condition(text, [s.caption() for s in scenes])
    sampling = [InfinitySampling(cfg=c, tau=0.5, top_p=0.97) for c in (1.0, 3.0, 2.0)]
    whole = infinity.generate(net, cond, schedule, sampling, [4, 5, 6], memory_budget=None)
    split = infinity.generate(net, cond, schedule, sampling, [4, 5, 6], memory_budget=per_row)
    assert all(torch.equal(a, b) for a, b in zip(whole.bits, split.bits))
    # the probabilities to float rounding (matmuls of another batch size round differently; measured 3.9e-7)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=0) for a, b in zip(whole.p1, split.p1))
    assert torch.equal(whole.seeds, split.seeds)
    assert split.condition.prompts == whole.condition.prompts and split.sampling == whole.sampling
    source = infinity.aredit_source(net, whole)
    target = bench.infinity_condition(text, ["a green star at the bottom right on a gray background"])
    settings = [AREditSettings(gamma=g, threshold=t) for g, t in ((0, 0.1), (1, 0.8), (2, 0.5))]
    mask = torch.zeros(1, 48, 48)
    mask[:, :, 24:] = 1
    one = infinity.aredit(net, source, target, settings, [7, 8, 9], mask, memory_budget=None)
    parts = infinity.aredit(net, source, target, settings, [7, 8, 9], mask, memory_budget=2 * per_row)
    assert all(torch.equal(a, b) for a, b in zip(one.tokens.bits, parts.tokens.bits))
    assert all(torch.equal(a, b) for a, b in zip(one.masks, parts.masks))
    assert all(torch.equal(a, b) for a, b in zip(one.changed, parts.changed))
    with pytest.raises(memory.NotEnoughMemory, match="per image"):
        infinity.generate(net, cond, schedule, sampling, [4, 5, 6], memory_budget=per_row // 2)

    editor, words = embedded.load_embedded_editor("varedit")
    images = bench.to_image(__import__("numpy").stack([world.render(s) for s in scenes]))
    instructions = ["make the background gray", "change the background to sky blue", "make the background pink"]
    need = infinity.run_memory(editor, schedule, prefix_tokens=sum(h * w for h, w in schedule)).per_row
    a = varedit.edit(editor, vae, words, images, instructions, world.SIZE, InfinitySampling(cfg=1.0, tau=0.5),
                     [1, 2, 3], memory_budget=None)
    b = varedit.edit(editor, vae, words, images, instructions, world.SIZE, InfinitySampling(cfg=1.0, tau=0.5),
                     [1, 2, 3], memory_budget=need)
    assert all(torch.equal(x, y) for x, y in zip(a.tokens.bits, b.tokens.bits))
