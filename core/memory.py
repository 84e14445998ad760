"""What a run needs in device memory, and how many rows of it fit at once.

A decode holds, per batch row and guidance branch, a static KV cache (2 x layers x kv heads x S x head width), its
attention mask (S x S bools), the prefill's activations and the logits a pick reads; the weights are held once. A
batch whose rows do not fit runs in micro-batches: each row's tokens depend on its own seed and inputs only, so the
result is the one-batch result. Estimates err on the large side (x1.25) because running out costs a whole run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .llamagen.gpt import GPTConfig

HEADROOM = 1.25  # estimates are multiplied by this: allocator fragmentation, kernels' workspaces


@dataclass(frozen=True)
class RunMemory:
    """Bytes: `weights` held once, `per_row` for each batch row (all its guidance branches)."""

    weights: int
    per_row: int


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def llamagen_decode(cfg: GPTConfig, n_branches: int, prefix_len: int, dtype: torch.dtype, vocab_chunk: int = 32,
                    weights: int = 0) -> RunMemory:
    """One row of a LlamaGen / EditAR decode: KV cache, mask, prefill activations, a draft chunk's logits and picks."""
    item = torch.empty((), dtype=dtype).element_size()
    S = -(-(prefix_len + cfg.num_image_tokens) // 8) * 8
    kv = 2 * cfg.n_layer * cfg.kv_heads * S * cfg.head_dim * item
    mask = S * S  # bool
    # the prefill: residual stream, q/k/v, the FFN's hidden and fp32 attention scores of one layer at a time
    prefill = prefix_len * (4 * cfg.dim + 3 * cfg.hidden_dim) * item + cfg.n_head * prefix_len * S * 4
    logits = vocab_chunk * cfg.vocab_size * 4 * 8  # fp32 logits and the pick's [L, V] temporaries
    per_branch = kv + mask + prefill
    return RunMemory(weights, int(HEADROOM * (n_branches * per_branch + logits)))


def infinity_run(cfg, schedule, dtype: torch.dtype, n_branches: int = 2, prefix_tokens: int = 0,
                 weights: int = 0) -> RunMemory:
    """One row of an Infinity / AREdit / VAREdit run: the static K/V cache over every scale (and VAREdit's source
    prefix), the finest scale's activations and its attention scores."""
    from .infinity.scales import total_tokens

    item = torch.empty((), dtype=dtype).element_size()
    S = prefix_tokens + total_tokens(schedule)
    n = max(h * w for h, w in schedule)
    kv = 2 * cfg.depth * cfg.embed_dim * S * item
    acts = n * cfg.embed_dim * (8 + 2 * cfg.mlp_ratio) * 4 + cfg.num_heads * n * S * item
    return RunMemory(weights, int(HEADROOM * n_branches * (kv + acts)))


def janus_decode(cfg, prompt_len: int, dtype: torch.dtype, chunk: int = 32, weights: int = 0) -> RunMemory:
    """One row of a Janus-Pro decode, both CFG branches: KV cache over the prompt and the 576 codes, the attention
    mask, the prefill's activations (one layer at a time, fp32 scores) and a draft chunk's logits over the codes."""
    from .janus.model import kv_bytes_per_row

    item = torch.empty((), dtype=dtype).element_size()
    S = prompt_len + cfg.num_image_tokens
    kv = kv_bytes_per_row(cfg, S, item)
    prefill = prompt_len * (4 * cfg.dim + 3 * cfg.ffn_hidden) * item + cfg.n_head * prompt_len * S * 4
    logits = chunk * cfg.image_codes * 4 * 8  # fp32 guided logits and the pick's [L, C] temporaries
    return RunMemory(weights, int(HEADROOM * (2 * (kv + S * S + prefill) + logits)))


class NotEnoughMemory(RuntimeError):
    pass


def rows_that_fit(memory: RunMemory, rows: int, budget: int | None, what: str = "this run") -> int:
    """How many rows to run at once within `budget` bytes (None: all of them). `budget` is what is free for the
    run's buffers once its models are loaded; too little for even one row is a clear error."""
    if budget is None or memory.per_row * rows <= budget:
        return rows
    fit = budget // memory.per_row
    if fit < 1:
        raise NotEnoughMemory(f"{what} needs {gib(memory.per_row)} per image beyond the models, and {gib(budget)} is "
                              f"free: close other programs or unload models (ComfyUI: Unload Models), or use a smaller "
                              f"resolution")
    return int(fit)


def gib(n: int) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (what the caching allocator holds unused counts as free); None elsewhere: the CPU
    runs whole batches (its memory is the machine's, which the operating system manages)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def run_budget(memory_budget: int | str | None, device: torch.device) -> int | None:
    """Bytes a run may use beyond its loaded weights: "auto" = what the device has free now (None on the CPU: whole
    batches), None = no limit, else the bytes given."""
    return free_device_memory(device) if memory_budget == "auto" else memory_budget


def in_parts(need: RunMemory, rows: int, budget: int | None, what: str, progress, run: Callable) -> list:
    """run(row indices, progress) for each micro-batch of `rows` that fits `budget` (one part when all fit), with
    the parts' progress on one bar -> their results, in row order."""
    parts = micro_batches(rows, rows_that_fit(need, rows, budget, what))
    return [run(idx, scaled_progress(progress, k, len(parts))) for k, idx in enumerate(parts)]


def micro_batches(rows: int, at_once: int) -> list[torch.Tensor]:
    """Row indices in runs of at most `at_once`, in order."""
    return [torch.arange(i, min(i + at_once, rows)) for i in range(0, rows, at_once)]


def scaled_progress(progress: Callable[[int, int], None] | None, part: int, parts: int):
    """One micro-batch's progress(done, total) as a share of the whole run's bar."""
    if progress is None or parts == 1:
        return progress
    scaled = lambda done, total: progress(part * total + done, parts * total)  # noqa: E731
    if part == 0 and getattr(progress, "preview", None) is not None:
        scaled.preview = progress.preview  # the first part's rows are the ones previewed
    return scaled


def pick_rows(values, index: torch.Tensor, rows: int):
    """A per-row argument (one value for all, or a sequence / tensor with one per row) restricted to `index`."""
    if values is None or isinstance(values, (int, float, str)) or (isinstance(values, torch.Tensor) and values.dim() == 0):
        return values
    if isinstance(values, torch.Tensor):
        return values[index.to(values.device)] if values.shape[0] == rows else values
    if isinstance(values, Sequence) and len(values) == rows:
        return [values[i] for i in index.tolist()]
    return values
