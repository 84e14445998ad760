"""Next-token generation for LlamaGen with a static KV cache and classifier-free guidance.

The loop is the upstream one: prefill the T prefix positions, take token 0 from the last prefix logits,
then N - 1 single-token steps. The CFG batch is [cond ; uncond] (uncond = the learned null caption, with
the same caption mask as its conditional row) and both halves receive the same sampled token. What picks
a token from the guided logits is a parameter, so editing methods (anchor token matching) reuse this
exact loop. Everything per step is tensor work on the device: no host synchronisation per step. Edits may
verify their source as a draft, many tokens per pass (`draft_loop`), with one synchronisation per pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..condition import Condition
from ..sampling import SamplingSettings, combine_cfg, filter_logits, per_row, sample_tokens, seed_tensor
from .gpt import KVCache, LlamaGenGPT, prefix_causal_mask

# pick(steps [L] long on the device, guided logits [B, L, V] fp32) -> tokens [B, L] long. A pick at step i may
# depend on that step's logits only (never on call order), so a draft chunk is picked in one call.
TokenPicker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# progress(done_steps, total_steps); may raise to cancel
ProgressFn = Callable[[int, int], None]
# A progress callback may carry `preview(done, total, codes)`: the loops call it after each pass with `codes()`
# giving the tokens so far ([B, >= done], on the device); it decides when a picture is worth drawing, so nothing is
# read back from the device unless it draws one.
COMPILE_OPTIONS = ("auto", "on", "off")


def as_scale_tensor(value: float | Sequence[float] | torch.Tensor, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).to(device)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"expected one value or {batch} values, got shape {list(t.shape)}")
    return t.contiguous()


class SamplePicker:
    """Plain sampling. With `fixed` (bool [B, N]) those positions take `fixed_tokens` [B, N] instead (the
    source outside an edit region)."""

    def __init__(self, settings: SamplingSettings, seeds: torch.Tensor, fixed: torch.Tensor | None = None,
                 fixed_tokens: torch.Tensor | None = None):
        self.settings, self.seeds, self.fixed, self.fixed_tokens = settings, seeds, fixed, fixed_tokens

    def __call__(self, steps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        token = sample_tokens(filter_logits(logits, self.settings), self.seeds, steps, self.settings.greedy)
        if self.fixed is None:
            return token
        return torch.where(self.fixed.index_select(1, steps), self.fixed_tokens.index_select(1, steps), token)



class Guidance:
    """Combines the branches' logits [nb, B, L, V] into guided logits [B, L, V].
    kind "none": one branch; "cfg": u + s (c - u) over [cond; uncond]; "editar3": EditAR's text + image guidance
    over [full; null text; null text and image]: n + s_i (n_i - n) + s_t (full - n_i)."""

    def __init__(self, kind: str, scale: torch.Tensor | None = None, image_scale: torch.Tensor | None = None):
        self.kind, self.scale, self.image_scale = kind, scale, image_scale
        self.n_branches = {"none": 1, "cfg": 2, "editar3": 3}[kind]

    def __call__(self, l: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return l[0]
        if self.kind == "cfg":
            return combine_cfg(l[0], l[1], self.scale)
        return l[2] + per_row(self.image_scale, l[1]) * (l[1] - l[2]) + per_row(self.scale, l[0]) * (l[0] - l[1])


def fit_caption_length(cond: Condition, length: int) -> Condition:
    """Bring left-padded caption features to the model's prefix length. Adding pad slots on the left is
    exact (T5 masks pads, so valid features do not depend on how many there are); removing slots is
    allowed only where they are padding."""
    L = cond.raw.shape[1]
    if L == length or cond.mask is None:
        return cond
    if L < length:
        pad = length - L
        raw = torch.cat([cond.raw.new_zeros(cond.batch, pad, cond.raw.shape[2]), cond.raw], 1)
        mask = torch.cat([cond.mask.new_zeros(cond.batch, pad), cond.mask], 1)
        return cond._with(raw, mask, cond.prompts)
    n_valid = int(cond.mask.sum(1).max())
    if n_valid > length:
        raise ValueError(f"the prompt is {n_valid} tokens long; this model reads at most {length}: shorten it")
    return cond._with(cond.raw[:, -length:], cond.mask[:, -length:], cond.prompts)


def check_condition(model: LlamaGenGPT, cond: Condition) -> Condition:
    """Validate a condition for `model` and return it in the model's layout."""
    if not isinstance(model, LlamaGenGPT):
        raise ValueError(f"this is not a LlamaGen model ({type(model).__name__}); Infinity models generate with "
                         f"AR Infinity Generate and edit with AREdit")
    if model.layout != "llamagen":
        raise ValueError(f"this is an {model.layout} model: it needs an input image (use the AR EditAR node), "
                         f"not plain generation or anchor matching")
    cfg = model.cfg
    if cond.layout != "llamagen":
        raise ValueError(f"this conditioning was encoded for {cond.layout}; encode the prompt for LlamaGen (AR Text "
                         f"Encode (LlamaGen), or core.pipelines.llamagen.text_condition)")
    if cfg.model_type == "t2i":
        if cond.raw.dim() != 3 or cond.raw.shape[2] != cfg.caption_dim:
            raise ValueError(f"this model expects caption features [B, L, {cfg.caption_dim}], got "
                             f"{list(cond.raw.shape)}: the text encoder does not match the model")
        cond = fit_caption_length(cond, cfg.cls_token_num)
        if cond.raw.shape[1] != cfg.cls_token_num:
            raise ValueError(f"caption features have {cond.raw.shape[1]} slots and no mask; the model needs "
                             f"{cfg.cls_token_num}")
    else:
        if cond.raw.dim() != 1:
            raise ValueError(f"a class-conditional model expects class labels [B], got {list(cond.raw.shape)}")
        if int(cond.raw.min()) < 0 or int(cond.raw.max()) >= cfg.num_classes:
            raise ValueError(f"class labels must be in 0..{cfg.num_classes - 1}")
    return cond


DRAFT_CHUNK = 32  # longest run of draft tokens verified in one forward pass


@dataclass
class DecodeStats:
    """What a decode cost: forward passes (the prefill included) and positions run through the model."""

    passes: int = 0
    positions: int = 0


def decode_pass(model: LlamaGenGPT, pick: TokenPicker, guidance: Guidance, x: torch.Tensor, start: torch.Tensor,
                prefix_len: int, attn_mask: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """One decoding pass, pure but for the cache writes: image tokens x [B, L] (the same for every branch) at image
    positions start .. start + L - 1 (start: a 0-d device tensor) -> the picks of steps start + 1 .. start + L [B, L].
    No Python number in here changes from step to step, so `torch.compile` captures it once per chunk length."""
    nb, (B, L) = guidance.n_branches, x.shape
    steps = start + 1 + torch.arange(L, device=x.device)  # the steps these logits are for
    pos = steps + (prefix_len - 1)  # the token at image position i sits at sequence position T + i
    h = model.tok_embeddings(x.repeat(nb, 1))
    logits = model.forward_embeddings(h, pos, attn_mask.index_select(2, pos), cache)  # [nb*B, L, V]
    return pick(steps, guidance(logits.view(nb, B, L, -1)))


_COMPILED: dict[tuple[Callable, str], Callable] = {}


def resolve_compile(option: str | bool, device: torch.device) -> bool:
    """"auto": compiled on CUDA (where launches dominate), eager elsewhere; "on" / "off" as said."""
    if isinstance(option, bool):
        return option
    if option not in COMPILE_OPTIONS:
        raise ValueError(f"compile must be one of {list(COMPILE_OPTIONS)}, got {option!r}")
    if option == "auto":
        return torch.device(device).type == "cuda" and _has_triton()
    if option == "on" and torch.device(device).type == "cuda" and not _has_triton():
        raise ValueError("compile 'on' needs Triton on CUDA (pip install triton); use 'off' or 'auto'")
    return option == "on"


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
        return has_triton()
    except Exception:
        return False


def compiled(fn: Callable, device: torch.device) -> Callable:
    """A pass function compiled whole (fullgraph, static shapes); on CUDA with CUDA graphs, which replay the pass's
    hundreds of kernels as one launch. Shapes come from a fixed set (chunk lengths, an Infinity schedule's scales),
    so graphs repeat; new pickers, settings and caches of the same shapes reuse them (dynamo guards on types and
    tensor shapes, not identities)."""
    mode = "reduce-overhead" if torch.device(device).type == "cuda" else "default"
    if (fn, mode) not in _COMPILED:
        import torch._dynamo.config as dynamo_config
        # one graph per (shape, picker kind, guidance, settings): more than dynamo's default limit of 8
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo_config, name):
                setattr(dynamo_config, name, max(getattr(dynamo_config, name), 64))
        _COMPILED[fn, mode] = torch.compile(fn, fullgraph=True, dynamic=False, mode=mode)
    return _COMPILED[fn, mode]


def compiled_pass(device: torch.device) -> Callable:
    """`decode_pass` compiled (see `compiled`); chunk lengths are powers of two, so its graphs repeat."""
    return compiled(decode_pass, device)


def chunk_length(wanted: int) -> int:
    """The largest power of two <= wanted: chunk shapes repeat (1, 2, 4, .. 32), so compiled graphs are reused."""
    return 1 << (wanted.bit_length() - 1)


@torch.inference_mode()
def decode_from_prefix(model: LlamaGenGPT, prefix: torch.Tensor, prefix_mask: torch.Tensor | None,
                       guidance: Guidance, pick: TokenPicker,
                       progress: ProgressFn | None = None, num_tokens: int | None = None,
                       draft: torch.Tensor | None = None, max_chunk: int = DRAFT_CHUNK,
                       stats: DecodeStats | None = None, forced: torch.Tensor | None = None,
                       compile: str | bool = "off") -> torch.Tensor:
    """The AR loop over a prebuilt prefix. prefix [nb*B, T, D] stacks the guidance branches (branch-major);
    `guidance` combines them; every branch receives the picked token. -> tokens [B, N].

    With a `draft` [B, N] (an edit's source tokens) the loop verifies up to `max_chunk` draft tokens per
    forward pass and keeps exactly what one-token-per-pass decoding picks (see `draft_loop`); `forced` [B, N]
    marks positions whose pick is the draft token whatever the logits (outside an edit region). `compile`:
    run each pass through `torch.compile` ("auto": on CUDA); the tokens are the eager path's."""
    device = prefix.device
    nb = guidance.n_branches
    B2, T = prefix.shape[:2]
    B = B2 // nb
    N = num_tokens or model.cfg.num_image_tokens
    S = -(-(T + N) // 8) * 8  # static cache length, rounded up as upstream
    cache = KVCache(model.cfg, B2, S, model.dtype, device)
    attn_mask = prefix_causal_mask(prefix_mask, S, T, B2, device)  # [nb*B, 1, S, S]
    stats = stats if stats is not None else DecodeStats()
    step = compiled_pass(device) if resolve_compile(compile, device) else decode_pass
    starts = torch.arange(N, device=device)  # image positions as device scalars: nothing per step is a Python int

    def run(x: torch.Tensor, start: int) -> torch.Tensor:
        """Draft or picked tokens x [B, L] at image positions start.. -> the picks of the L steps after them."""
        stats.passes, stats.positions = stats.passes + 1, stats.positions + x.shape[1] * B2
        return step(model, pick, guidance, x, starts[start], T, attn_mask, cache)

    tokens = torch.empty(B, N, dtype=torch.long, device=device)
    logits = model.forward_embeddings(prefix, torch.arange(T, device=device), attn_mask[:, :, :T], cache,
                                      last_only=True)  # the prefill, eager: [nb*B, 1, V]
    stats.passes, stats.positions = stats.passes + 1, stats.positions + T * B2
    tokens[:, :1] = pick(starts[:1], guidance(logits.view(nb, B, 1, -1)))
    if progress is not None:
        progress(1, N)
    if draft is not None and max_chunk > 1:
        return draft_loop(run, progress, tokens, draft.to(device), max_chunk, forced)
    preview = getattr(progress, "preview", None)
    for i in range(1, N):
        tokens[:, i : i + 1] = run(tokens[:, i - 1 : i], i - 1)
        if progress is not None:
            progress(i + 1, N)
        if preview is not None:
            preview(i + 1, N, lambda: tokens)
    return tokens


def draft_loop(run, progress: ProgressFn | None, tokens: torch.Tensor, draft: torch.Tensor, max_chunk: int,
                forced: torch.Tensor | None) -> torch.Tensor:
    """Draft verification, exact by construction. A pick at step i is a function of that step's logits only
    (the noise is keyed by (seed, step), not by call order), and those logits depend only on the tokens
    before i. So with tokens[:, :n] final, one pass feeds [token n-1, draft n .. n+L-2] and yields the picks
    of steps n .. n+L-1 (one vectorised pick over the chunk); the pick at step j is what sequential decoding
    picks whenever the draft equals the picks at every step before j (that pick is valid even where it then
    differs from the draft).

    Forced positions (`forced` [B, N]: outside an edit region, where the pick is the draft token) always hold
    and ride along in every chunk; a chunk ends at its `free`-th position that needs a pick (then cut to a power
    of two, so its shape repeats), and `free` doubles while drafts hold and halves when they fail. Rows run in
    lockstep: the batch advances by the shortest valid run, and each row's valid picks become its draft, so the
    next pass re-verifies them at once. KV entries past the accepted length are left stale: causal masking
    hides them, and the next pass overwrites them before any query can reach them."""
    B, N = tokens.shape
    preview = getattr(progress, "preview", None)
    draft = draft.clone()
    draft[:, 0] = tokens[:, 0]
    fixed = [False] * N if forced is None else forced.to(tokens.device).all(0).tolist()  # forced in every row
    n, free = 1, 2
    while n < N:
        L = need = 0
        while n + L < N and L < max_chunk:
            L += 1
            if not fixed[n + L - 1]:
                need += 1
                if need >= free:
                    break
        L = chunk_length(L)
        picks = run(torch.cat([tokens[:, n - 1 : n], draft[:, n : n + L - 1]], 1), n - 1)  # steps n .. n+L-1
        # valid[b, j]: the picks at steps before n+j equal the draft that was fed there
        ok = picks[:, : L - 1] == draft[:, n : n + L - 1]
        valid = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=ok.device), ok.long().cumprod(1).bool()], 1)
        draft[:, n : n + L] = torch.where(valid, picks, draft[:, n : n + L])
        advance = int(valid.sum(1).min())  # the one host sync per pass: how far every row is exact
        tokens[:, n : n + advance] = picks[:, :advance]
        n += advance
        free = min(2 * free, max_chunk) if advance == L else max(1, free // 2)
        if progress is not None:
            progress(n, N)
        if preview is not None:
            preview(n, N, lambda: tokens)
    return tokens


@torch.inference_mode()
def decode_tokens(model: LlamaGenGPT, cond: Condition, cfg_scale: float | Sequence[float] | torch.Tensor,
                  pick: TokenPicker, progress: ProgressFn | None = None, num_tokens: int | None = None,
                  draft: torch.Tensor | None = None, max_chunk: int = DRAFT_CHUNK,
                  stats: DecodeStats | None = None, forced: torch.Tensor | None = None,
                  compile: str | bool = "off") -> torch.Tensor:
    """Run the LlamaGen AR loop; returns tokens [B, N] (long, on the model's device). `draft` [B, N]: tokens
    to verify in chunks of up to `max_chunk` per pass (same result, fewer passes where they hold)."""
    cond = check_condition(model, cond)
    device, B = model.device, cond.batch
    scales_host = torch.as_tensor(cfg_scale, dtype=torch.float32)
    use_cfg = not bool((scales_host == 1.0).all())  # decided on the host, before the loop
    scale = as_scale_tensor(scales_host, B, device)

    raw = cond.raw.to(device)
    mask = None if cond.mask is None else cond.mask.to(device)
    prefix = model.embed_condition(raw)  # [B, T, D]
    extra = dict(draft=draft, max_chunk=max_chunk, stats=stats, forced=forced, compile=compile)
    if not use_cfg:
        return decode_from_prefix(model, prefix, mask, Guidance("none"), pick, progress, num_tokens, **extra)
    prefix = torch.cat([prefix, model.embed_condition(model.null_condition(B))])  # [cond; uncond]
    mask = None if mask is None else torch.cat([mask, mask])  # uncond keeps its row's caption mask
    return decode_from_prefix(model, prefix, mask, Guidance("cfg", scale), pick, progress, num_tokens, **extra)


def generate(model: LlamaGenGPT, cond: Condition, settings: SamplingSettings, seeds: Sequence[int] | torch.Tensor,
             progress: ProgressFn | None = None, cfg_scale: float | Sequence[float] | None = None,
             compile: str | bool = "off") -> torch.Tensor:
    """Sample image tokens [B, N]. `seeds` has one seed per batch row; `cfg_scale` optionally overrides
    settings.cfg_scale with one value per row (sweeps)."""
    settings.validate()
    seeds_t = seed_tensor(seeds)
    if seeds_t.shape != (cond.batch,):
        raise ValueError(f"need one seed per batch row ({cond.batch}), got {list(seeds_t.shape)}")
    pick = SamplePicker(settings, seeds_t.to(model.device))
    return decode_tokens(model, cond, settings.cfg_scale if cfg_scale is None else cfg_scale, pick, progress,
                         compile=compile)


@torch.inference_mode()
def teacher_forced_logits(model: LlamaGenGPT, cond: Condition, tokens: torch.Tensor,
                          cfg_scale: float | None = None) -> torch.Tensor:
    """Logits [B, N, V] (fp32) for given tokens [B, N] in one full forward pass. Without cfg_scale: the
    conditional logits; with it: the CFG-guided logits, exactly what the sampler sees at each step."""
    cond = check_condition(model, cond)
    device = model.device
    tokens = tokens.to(device).reshape(tokens.shape[0], -1)
    mask = None if cond.mask is None else cond.mask.to(device)
    logits = model(model.embed_condition(cond.raw.to(device)), mask, tokens)
    if cfg_scale is None or cfg_scale == 1.0:
        return logits
    uncond = model(model.embed_condition(model.null_condition(cond.batch)), mask, tokens)
    return uncond + cfg_scale * (logits - uncond)
