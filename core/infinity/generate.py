"""Next-scale generation for Infinity: static KV cache across scales, CFG on logits, per-bit sampling.

Per scale k (coarse to fine): the transformer reads scale k's input tokens (scale 0: the start token; then
the running sum of codes resized to scale k), attends to every earlier scale through the cache and to
its own scale, and predicts d bits per token. CFG on logits: cfg * z_c / tau + (1 - cfg) * z_u / tau, with
cfg and tau per scale. A bit whose minority probability is <= 1 - top_p is set to the majority; other
bits are drawn with counter-based noise per row (same seed = same bits on any device, in any batch).

What picks the bits is a parameter: teacher forcing (a real image's labels under a prompt) and AREdit
reuse this exact loop, so their probabilities are the generator's own. All per-scale work is batched
tensor work on the device; nothing syncs with the host inside the loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..condition import Condition
from ..llamagen.generate import compiled, resolve_compile  # one compile rule for every pass
from ..sampling import counter_uniform
from .bsq import bits_to_codes, up
from .model import InfinityTransformer, TextState, rope_table
from .scales import total_tokens

# pick(scale, p1 [B, n, d] fp32 = P(bit = 1) after CFG/tau, sampled [B, n, d] bool) -> bits [B, n, d] bool
BitPicker = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]
# progress(done_scales, total): called after every scale and, with the same count, between layers; may raise
# to cancel
ProgressFn = Callable[[int, int], None]
_STREAM = 11  # noise stream of bit sampling


def _as_list(value, n: int, name: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) == 1:
        return values * n
    if len(values) < n:
        raise ValueError(f"{name} lists {len(values)} values but the schedule has {n} scales")
    return values[:n]


@dataclass(frozen=True)
class InfinitySampling:
    """Infinity's sampler settings. cfg and tau: one value, or one per scale (coarse to fine)."""

    cfg: float | tuple[float, ...] = 3.0
    tau: float | tuple[float, ...] = 0.5
    top_p: float = 0.97  # a bit with minority probability <= 1 - top_p takes the majority value

    def validate(self) -> "InfinitySampling":
        for c in _as_list(self.cfg, 1, "cfg") if isinstance(self.cfg, (int, float)) else self.cfg:
            if not 0 <= c < float("inf"):
                raise ValueError(f"cfg must be a number >= 0 (1 = off), got {c}")
        for t in _as_list(self.tau, 1, "tau") if isinstance(self.tau, (int, float)) else self.tau:
            if not 0 < t < float("inf"):
                raise ValueError(f"tau (temperature) must be a number > 0, got {t}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        return self

    def per_scale(self, n: int) -> tuple[list[float], list[float]]:
        return _as_list(self.cfg, n, "cfg"), _as_list(self.tau, n, "tau")

    def to_dict(self) -> dict:
        return {"cfg": self.cfg, "tau": self.tau, "top_p": self.top_p}


@dataclass
class BitTokens:
    """Infinity token bits (the AR_TOKENS of this backbone): per scale [B, h, w, d] bool on the device,
    d = the transformer's bits per token; with what made them, so an edit can reuse them as a source."""

    bits: list[torch.Tensor]
    schedule: list[tuple[int, int]]
    origin: str  # "generated" | "encoded" | "edited"
    patchify: bool = False
    condition: Condition | None = None
    seeds: torch.Tensor | None = None
    sampling: list[InfinitySampling] | None = None  # per row
    p1: list[torch.Tensor] | None = None  # per scale P(bit = 1) [B, h, w, d] under `condition`

    @property
    def batch(self) -> int:
        return self.bits[0].shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.schedule[-1])

    def index(self, idx: torch.Tensor) -> "BitTokens":
        dev = self.bits[0].device
        i = idx.to(dev)
        return BitTokens([b[i] for b in self.bits], list(self.schedule), self.origin, self.patchify,
                         None if self.condition is None else self.condition.index(idx),
                         None if self.seeds is None else self.seeds[idx.to(self.seeds.device)],
                         None if self.sampling is None else [self.sampling[j] for j in idx.tolist()],
                         None if self.p1 is None else [p[i] for p in self.p1])


# ------------------------------------------------------------------------------ bits <-> VAE latent grid

def tokens_to_vae_bits(bits: torch.Tensor, patchify: bool) -> torch.Tensor:
    """Transformer bits [B, h, w, d] -> VAE-grid bits [B, h', w', d'] (2x2 unpatchify for the 8B model)."""
    if not patchify:
        return bits
    x = F.pixel_shuffle(bits.permute(0, 3, 1, 2).float(), 2)  # [B, d/4, 2h, 2w]
    return x.permute(0, 2, 3, 1) > 0.5


def vae_bits_to_tokens(bits: torch.Tensor, patchify: bool) -> torch.Tensor:
    """VAE-grid bits [B, h', w', d'] -> transformer bits [B, h, w, d] (2x2 patchify for the 8B model)."""
    if not patchify:
        return bits
    x = F.pixel_unshuffle(bits.permute(0, 3, 1, 2).float(), 2)
    return x.permute(0, 2, 3, 1) > 0.5


def vae_schedule(schedule: Sequence[tuple[int, int]], patchify: bool) -> list[tuple[int, int]]:
    return [(2 * h, 2 * w) for h, w in schedule] if patchify else [tuple(s) for s in schedule]


def summed_codes(bits: Sequence[torch.Tensor], patchify: bool) -> torch.Tensor:
    """What the VAE decoder receives: the sum of every scale's codes upsampled to the VAE grid."""
    vae_bits = [tokens_to_vae_bits(b, patchify) for b in bits]
    final = tuple(vae_bits[-1].shape[1:3])
    return sum(up(bits_to_codes(b), final) for b in vae_bits)


def _next_input(summed: torch.Tensor, hw: tuple[int, int], patchify: bool) -> torch.Tensor:
    """Running sum [B, d', H', W'] -> the next scale's input codes [B, h*w, d]. Bilinear down: the one-frame
    case of the trilinear interpolation the official trainer and sampler both use."""
    vh, vw = (2 * hw[0], 2 * hw[1]) if patchify else hw
    x = F.interpolate(summed, size=(vh, vw), mode="bilinear", align_corners=False)
    if patchify:
        x = F.pixel_unshuffle(x, 2)
    return x.flatten(2).transpose(1, 2)


def _scale_codes(bits: torch.Tensor, final: tuple[int, int], patchify: bool) -> torch.Tensor:
    """One scale's bits [B, h, w, d] -> its codes upsampled to the VAE grid [B, d', H', W'] (what is summed)."""
    return up(bits_to_codes(tokens_to_vae_bits(bits, patchify)), final)


def teacher_inputs(bits: Sequence[torch.Tensor], schedule: Sequence[tuple[int, int]], patchify: bool = False) -> torch.Tensor:
    """The transformer's inputs for scales 1..K-1 when it reads `bits` (per scale [B, h, w, d]): what the sampler
    feeds it, for teacher-forced training. -> [B, tokens of scales 1..K-1, d]."""
    final = vae_schedule(schedule, patchify)[-1]
    summed, out = None, []
    for k in range(1, len(schedule)):
        codes = _scale_codes(bits[k - 1], final, patchify)
        summed = codes if summed is None else summed + codes
        out.append(_next_input(summed, tuple(schedule[k]), patchify))
    return torch.cat(out, 1)


def sample_bits(p1: torch.Tensor, top_p: torch.Tensor, seeds: torch.Tensor, scale: int) -> torch.Tensor:
    """p1 [B, n, d] -> bits [B, n, d] bool; top_p [B]."""
    B, n, d = p1.shape
    u = counter_uniform(seeds.to(p1.device), scale, n * d, _STREAM).view(B, n, d)
    minority = torch.minimum(p1, 1 - p1)
    certain = minority <= (1 - top_p.to(p1.device))[:, None, None]
    return torch.where(certain, p1 > 0.5, u < p1)


def per_row(sampling: InfinitySampling | Sequence[InfinitySampling], rows: int) -> list[InfinitySampling]:
    """One setting for every row, or the given list (one per row)."""
    return [sampling] * rows if isinstance(sampling, InfinitySampling) else list(sampling)


def _per_row(settings: Sequence[InfinitySampling], n_scales: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg, tau = zip(*(s.validate().per_scale(n_scales) for s in settings))
    return (torch.tensor(cfg, dtype=torch.float32, device=device), torch.tensor(tau, dtype=torch.float32, device=device),
            torch.tensor([s.top_p for s in settings], dtype=torch.float32, device=device))


def check_text(model: InfinityTransformer, cond: Condition) -> None:
    if cond.mask is None or cond.raw.dim() != 3:
        raise ValueError("Infinity needs text conditioning (T5 features); class labels are for LlamaGen c2i models")
    if cond.layout != "infinity":
        raise ValueError("this conditioning was encoded for LlamaGen (120 cleaned caption tokens); encode the prompt "
                         "the Infinity way (AR Infinity Text Encode, or core.pipelines.infinity.text_condition)")
    if cond.raw.shape[-1] != model.cfg.text_channels:
        raise ValueError(f"text features are {cond.raw.shape[-1]}-d but the Infinity model expects "
                         f"{model.cfg.text_channels}-d: use the text encoder it was trained with (flan-t5-xl)")


def _negative_rows(model: InfinityTransformer, negative: Condition, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    check_text(model, negative)
    if negative.batch not in (1, batch):
        raise ValueError(f"{negative.batch} negative prompts for {batch} rows: give 1 or one per row")
    raw, mask = negative.raw.to(model.device), negative.mask.to(model.device).bool()
    return raw.expand(batch, -1, -1), mask.expand(batch, -1)


def _stack_text(text, mask, other) -> tuple[torch.Tensor, torch.Tensor]:
    """[text ; other] as one batch, right-padded to the longer of the two (pads masked)."""
    o_text, o_mask = other
    L = max(text.shape[1], o_text.shape[1])
    pad = lambda t, m: (F.pad(t, (0, 0, 0, L - t.shape[1])), F.pad(m, (0, L - m.shape[1])))  # noqa: E731
    (a, am), (b, bm) = pad(text, mask), pad(o_text.to(text.dtype), o_mask)
    return torch.cat([a, b]), torch.cat([am, bm])


def check_schedule(model: InfinityTransformer, schedule: Sequence[tuple[int, int]]) -> None:
    if not schedule:
        raise ValueError("empty scale schedule")
    if len(schedule) > model.cfg.num_levels:
        raise ValueError(f"{len(schedule)} scales but the model has level embeddings for {model.cfg.num_levels}")


@dataclass
class Prefix:
    """Tokens that sit in the KV cache before the first scale (VAREdit's source image), and how the scales
    attend to them. prefill(ts, cache) writes the first `length` cache slots of every layer; rope holds
    the scales' positions [2, S, Hd/2]; layer_attn(k) gives per-layer self-attention arguments at scale k."""

    length: int
    rope: torch.Tensor
    prefill: Callable
    layer_attn: Callable[[int], dict]


def scale_pass(model: InfinityTransformer, x: torch.Tensor, levels: torch.Tensor, ts: TextState, rope: torch.Tensor,
               cache, start: int, tau: torch.Tensor, cfg: torch.Tensor | None, batch: int,
               layer_attn: dict | None = None, after_layer=None) -> torch.Tensor:
    """One scale: its input tokens x [rows, n, C] at sequence slots start.. (rows = batch, twice with guidance),
    tau [batch], cfg [batch] (None: no unconditional rows) -> P(bit = 1) [batch, n, d] fp32. Pure but for the cache
    writes, so `torch.compile` captures it once per scale of a schedule; the picks stay outside."""
    hidden = model.forward_tokens(x, levels, ts, rope, cache, start, layer_attn=layer_attn, after_layer=after_layer)
    logits = model.bit_logits(hidden, ts.cond) / tau.repeat(x.shape[0] // batch)[:, None, None, None]
    if cfg is not None:
        c = cfg[:, None, None, None]
        logits = c * logits[:batch] + (1 - c) * logits[batch:]
    return logits.float().softmax(-1)[..., 1]


@torch.inference_mode()
def run_scales(model: InfinityTransformer, cond: Condition, schedule: Sequence[tuple[int, int]],
               settings: Sequence[InfinitySampling], seeds: torch.Tensor, pick: BitPicker | None = None,
               progress: ProgressFn | None = None, prefix_for: Callable | None = None,
               negative: Condition | None = None, compile: str | bool = "off") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The scale loop. Returns (bits, p1): per scale [B, h, w, d] bool and [B, h, w, d] fp32.
    prefix_for(rows) -> Prefix: tokens before the scales (rows = batch incl. CFG rows). negative: a prompt
    for CFG's unconditional branch instead of the learned null text (1 row or one per row). `compile`: each scale's
    pass through torch.compile ("auto": on CUDA); the bits are the same (cancel is then checked per scale, not
    per layer)."""
    check_text(model, cond)
    check_schedule(model, schedule)
    schedule = [tuple(s) for s in schedule]
    B, K, dev = cond.batch, len(schedule), model.device
    if len(settings) != B or seeds.shape != (B,):
        raise ValueError(f"need one sampling setting and one seed per row ({B}), got {len(settings)} / {tuple(seeds.shape)}")
    cfg, tau, top_p = _per_row(settings, K, dev)
    use_cfg = bool((cfg != 1).any())  # one host read, before the loop
    text, mask = cond.raw.to(dev), cond.mask.to(dev).bool()
    if use_cfg:
        if negative is None:
            text, mask = torch.cat([text, model.null_text(mask).to(text.dtype)]), torch.cat([mask, mask])
        else:
            text, mask = _stack_text(text, mask, _negative_rows(model, negative, B))
    rows = text.shape[0]
    ts = model.prepare_text(text, mask)
    prefix = prefix_for(rows) if prefix_for is not None else None
    rope = prefix.rope if prefix is not None else rope_table(schedule, model.cfg, dev)
    offset = prefix.length if prefix is not None else 0
    cache = model.new_cache(rows, offset + total_tokens(schedule))
    if prefix is not None:
        prefix.prefill(ts, cache)
    seeds = seeds.to(dev)
    x = model.start_tokens(ts)  # [rows, 1, C]
    final = vae_schedule(schedule, model.cfg.patchify)[-1]  # the VAE grid the codes are summed on
    summed, start = None, 0
    out_bits, out_p1 = [], []
    preview = getattr(progress, "preview", None)  # see core.llamagen.generate: here codes() = the scales so far
    compiled_pass = resolve_compile(compile, dev)
    step = compiled(scale_pass, dev) if compiled_pass else scale_pass
    for k, (h, w) in enumerate(schedule):
        n = h * w
        levels = torch.full((n,), k, dtype=torch.long, device=dev)
        check = None if progress is None or compiled_pass else (lambda: progress(k, K))  # a callback breaks a graph
        p1 = step(model, x, levels, ts, rope[:, start:start + n], cache, offset + start, tau[:, k],
                  cfg[:, k] if use_cfg else None, B, prefix.layer_attn(k) if prefix is not None else None, check)
        sampled = sample_bits(p1, top_p, seeds, k)
        bits = sampled if pick is None else pick(k, p1, sampled)
        out_bits.append(bits.view(B, h, w, -1))
        out_p1.append(p1.view(B, h, w, -1))
        start += n
        if k + 1 < K:
            codes = _scale_codes(out_bits[-1], final, model.cfg.patchify)
            summed = codes if summed is None else summed + codes
            x = model.embed_bits_input(_next_input(summed, schedule[k + 1], model.cfg.patchify))
            if use_cfg:
                x = torch.cat([x, x])
        if progress is not None:
            progress(k + 1, K)
        if preview is not None:
            preview(k + 1, K, lambda: out_bits)
    return out_bits, out_p1


def generate(model: InfinityTransformer, cond: Condition, schedule: Sequence[tuple[int, int]],
             sampling: InfinitySampling | Sequence[InfinitySampling], seeds: torch.Tensor,
             progress: ProgressFn | None = None, negative: Condition | None = None,
             compile: str | bool = "off") -> BitTokens:
    """Sample a batch (one row per prompt/seed). The result keeps the per-bit probabilities, so it can
    serve as an AREdit source without another pass. negative: a negative prompt for CFG."""
    settings = per_row(sampling, cond.batch)
    bits, p1 = run_scales(model, cond, schedule, settings, seeds, progress=progress, negative=negative,
                          compile=compile)
    return BitTokens(bits, [tuple(s) for s in schedule], "generated", model.cfg.patchify, cond, seeds.cpu(), settings, p1)


def teacher_forced(model: InfinityTransformer, cond: Condition, tokens: BitTokens,
                   sampling: InfinitySampling | Sequence[InfinitySampling], progress: ProgressFn | None = None) -> list[torch.Tensor]:
    """P(bit = 1) of every bit of `tokens` under `cond` when the model reads the tokens' own earlier scales."""
    settings = per_row(sampling, cond.batch)
    forced = [b.reshape(b.shape[0], -1, b.shape[-1]).to(model.device) for b in tokens.bits]
    seeds = torch.zeros(cond.batch, dtype=torch.int64)
    _, p1 = run_scales(model, cond, tokens.schedule, settings, seeds, pick=lambda k, p, s: forced[k], progress=progress)
    return p1


def check_tokens_fit(model: InfinityTransformer, tokens: BitTokens) -> None:
    d = tokens.bits[0].shape[-1]
    if d != model.cfg.token_bits or tokens.patchify != model.cfg.patchify:
        made = f"{d}-bit tokens" + (" (2x2 patchified)" if tokens.patchify else "")
        reads = f"{model.cfg.token_bits}-bit tokens" + (" (2x2 patchified)" if model.cfg.patchify else "")
        raise ValueError(f"these bits are {made} but {getattr(model, 'file_name', None) or 'the Infinity model'} "
                         f"reads {reads}: the VAE that made them and the transformer do not belong together (2B: "
                         f"infinity_vae_d32reg.pth; 8B: infinity_vae_d56_f8_14_patchify.pth)")

