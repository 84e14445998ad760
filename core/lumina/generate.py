"""Lumina-mGPT image generation with both CFG branches in one batched pass, and the pickers editing reuses.

The semantics are the official inference solver's (Alpha-VLLM/Lumina-mGPT inference_solver.py):
- The prompt is BOS + "Generate an image of {W}x{H} according to the following prompt:\\n{caption}<reserved08706>";
  the image starts with <racm3:break> and the two size tokens. We feed those three (the official samples them,
  and a fine-tuned model puts them there; feeding them is what makes the size the one asked for).
- CFG: the unconditional branch is the image start and size tokens alone, with positions from 0 (no prompt);
  logits are combined in fp32 as u + s (c - u), and a scale of exactly 1 leaves the conditional logits as they are.
- Structure: at a code position only image codes may be drawn (then top-k and temperature, as there); the row end
  after each row and the image end are forced.
Per-token work is tensor work on the device. A picker (SamplePicker, ATM's AnchorPicker) sees logits over the
image codes only, indexed by VQGAN code, with the step = the code's index in the grid (row ends not counted),
so the editing rules written for LlamaGen apply unchanged.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..llamagen.generate import DRAFT_CHUNK, DecodeStats, draft_loop
from ..llamagen.generate import SamplePicker  # noqa: F401 - re-exported: one sampling rule for every next-token family
from ..shapes.world import without_unsaid
from .chameleon import ChameleonLM
from .tokens import END_OF_TURN, PROMPT, STRIDE, LuminaVocab, check_size, image_prefix

TokenPicker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[int, int], None]
__all__ = ["SamplePicker", "decode_codes", "prompt_ids"]

MAX_PROMPT_TOKENS = 1024


def prompt_text(caption: str, height: int, width: int) -> str:
    return PROMPT.format(w=width, h=height, caption=caption) + END_OF_TURN


def prompt_ids(tokenizer, vocab: LuminaVocab, caption: str, height: int, width: int) -> list[int]:
    """BOS + the prompt's ids (a `tokenizers.Tokenizer` from the folder's tokenizer.json)."""
    unk = tokenizer.token_to_id("<unk>")
    if unk is not None and tokenizer.token_to_id("large") is None:  # the embedded one: "large" goes unsaid
        caption = without_unsaid(caption)
    if unk is not None:  # a word the tokenizer cannot read (the embedded word-level one knows only its world)
        enc = tokenizer.encode(caption, add_special_tokens=False)
        unknown = [caption[a:b] for (a, b), t in zip(enc.offsets, enc.ids) if t == unk]
        if unknown:
            words = sorted(w for w in tokenizer.get_vocab() if not w.startswith("<"))
            hint = f"; it knows only: {' '.join(words)}" if len(words) <= 200 else ""
            raise ValueError(f"the model's tokenizer does not know {', '.join(map(repr, unknown))}{hint}")
    ids = tokenizer.encode(prompt_text(caption, height, width), add_special_tokens=False).ids
    if len(ids) + 1 > MAX_PROMPT_TOKENS:
        raise ValueError(f"the prompt is {len(ids)} tokens; at most {MAX_PROMPT_TOKENS - 1}: shorten it")
    return [vocab.bos] + list(ids)


class Guidance:
    """[cond; uncond] logits [2B, L, V] -> guided [B, L, V]; rows with scale exactly 1 keep their cond logits."""

    def __init__(self, scale: torch.Tensor):
        self.scale = scale  # [B] fp32 on the device

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        B = self.scale.shape[0]
        c, u = logits[:B], logits[B:]
        if u.shape[0] == 0:
            return c
        s = self.scale[:, None, None]
        return torch.where(s == 1, c, u + s * (c - u))


def left_pad(prefixes: Sequence[Sequence[int]], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> ids [R, P], real [R, P] bool, positions [R, P] (each row's own, from 0 at its first real token)."""
    P = max(len(p) for p in prefixes)
    ids = torch.zeros(len(prefixes), P, dtype=torch.long)
    real = torch.zeros(len(prefixes), P, dtype=torch.bool)
    for r, p in enumerate(prefixes):  # host-side set-up, once per call
        ids[r, P - len(p):] = torch.tensor(list(p), dtype=torch.long)
        real[r, P - len(p):] = True
    pos = (real.long().cumsum(1) - 1).clamp(min=0)
    return ids.to(device), real.to(device), pos.to(device)


@torch.no_grad()
def decode_codes(model: ChameleonLM, prompts: Sequence[Sequence[int]], rows: int, cols: int,
                 scale: torch.Tensor | Sequence[float] | float, pick: TokenPicker,
                 progress: ProgressFn | None = None, draft: torch.Tensor | None = None,
                 forced: torch.Tensor | None = None, max_chunk: int = DRAFT_CHUNK,
                 stats: DecodeStats | None = None) -> torch.Tensor:
    """Prompts (ids, BOS first; one per row) -> VQGAN codes [B, rows, cols] picked by `pick`. The size tokens
    say rows x 16 by cols x 16 px (what the official layout ties them to, whatever the VQGAN's own stride).

    With a `draft` [B, rows * cols] (an edit's source codes) up to `max_chunk` body tokens (codes and row ends)
    are verified per pass by LlamaGen's draft loop, with exactly the codes of one-token-per-pass decoding;
    `forced` [B, rows * cols] marks codes whose pick is the draft's whatever the logits (outside a mask)."""
    vocab = model.vocab
    if vocab is None:
        raise ValueError("this model has no vocabulary (load it from its folder: load_lumina)")
    if model.cfg.mask_image_logits:
        raise ValueError("this config masks image tokens out of the logits (mask_image_logits): it is a Chameleon "
                         "model that cannot draw, not Lumina-mGPT")
    height, width = rows * STRIDE, cols * STRIDE
    check_size(height, width)
    B, dev = len(prompts), model.device
    scale = torch.as_tensor(scale, dtype=torch.float32).expand(B).to(dev) if not isinstance(scale, torch.Tensor) \
        else scale.to(dev, torch.float32).expand(B)
    start = image_prefix(vocab, height, width)
    guided = bool((scale != 1).any())  # host read once: with no guidance the unconditional branch is not run
    prefixes = [list(p) + start for p in prompts] + ([start] * B if guided else [])
    ids, real, pos = left_pad(prefixes, dev)
    R, P = ids.shape
    body = rows * (cols + 1)  # codes and row ends; the image end that follows is forced
    cache = model.new_cache(R, P + body)
    guidance = Guidance(scale)
    image_ids = vocab.image_ids.to(dev)
    code_of = torch.full((int(image_ids.max()) + 1,), -1, dtype=torch.long, device=dev)
    code_of[image_ids] = torch.arange(image_ids.numel(), device=dev)  # token id -> VQGAN code
    slots = torch.arange(P + body, device=dev)
    j = torch.arange(body, device=dev)
    is_code = j % (cols + 1) < cols  # [body]
    step_of = (j - j // (cols + 1)).clamp(max=rows * cols - 1)  # body position -> code index (a row end: the next)
    code_host = [(k % (cols + 1)) < cols for k in range(body)]  # the layout, known on the host: no sync
    row_end = torch.tensor(vocab.row_end, dtype=torch.long, device=dev)
    stats = stats if stats is not None else DecodeStats()
    base_pos = pos[:, -1:] + 1  # [R, 1]: each row's position of the first body token

    def pick_tokens(logits: torch.Tensor, first: int) -> torch.Tensor:
        """Guided logits of body positions first.. -> their tokens (image ids; row ends where the layout has them)."""
        L = logits.shape[1]
        if L == 1 and not code_host[first]:
            return row_end.expand(B, 1)
        at = j[first:first + L]
        codes = pick(step_of[at], guidance(logits.index_select(-1, image_ids)))  # [B, L]
        return torch.where(is_code[at], image_ids[codes], row_end)

    def run(x: torch.Tensor, at: int) -> torch.Tensor:
        """Body tokens x [B, L] at body positions at.. -> the tokens of the L positions after them."""
        L = x.shape[1]
        stats.passes, stats.positions = stats.passes + 1, stats.positions + L * R
        logits = model.forward_tokens(x.repeat(R // B, 1), base_pos + at + j[:L], slots[P + at:P + at + L], cache)
        return pick_tokens(logits, at + 1)

    logits = model.forward_tokens(ids, pos, slots[:P], cache, real)[:, -1:]  # [R, 1, V]
    stats.passes, stats.positions = stats.passes + 1, stats.positions + P * R
    tokens = torch.empty(B, body, dtype=torch.long, device=dev)
    tokens[:, :1] = pick_tokens(logits, 0)
    report = None if progress is None else (lambda n, _: progress(n - n // (cols + 1), rows * cols))
    preview = getattr(progress, "preview", None)
    if report is not None and preview is not None:  # codes so far, in grid order (row ends dropped)
        report.preview = lambda n, _, get: preview(n - n // (cols + 1), rows * cols,
                                                  lambda: code_of[get()[:, :n][:, is_code[:n]]])
    if report is not None:
        report(1, body)
    if draft is not None and max_chunk > 1:
        draft_body = torch.where(is_code, image_ids[draft.to(dev).index_select(1, step_of)], row_end)
        fixed = ~is_code.expand(B, body)
        if forced is not None:
            fixed = fixed | forced.to(dev).index_select(1, step_of)
        tokens = draft_loop(run, report, tokens, draft_body, max_chunk, fixed)
    else:
        for n in range(1, body):
            tokens[:, n:n + 1] = run(tokens[:, n - 1:n], n - 1)
            if report is not None and code_host[n]:
                report(n + 1, body)
                if preview is not None:
                    report.preview(n + 1, body, lambda: tokens)
    return code_of[tokens[:, is_code]].view(B, rows, cols)
