"""EditAR pipeline: a picture (or a depth / canny / segmentation map) and an instruction -> the edited picture's
tokens. Nodes, batch jobs, the command line's demo and the benchmark call this."""
from __future__ import annotations

from typing import Sequence

import torch

from ..condition import Condition
from ..defaults import COMPILE, defaults
from ..llamagen.editar import EditARGPT, editar_generate, task_prompt
from ..llamagen.generate import DRAFT_CHUNK, ProgressFn
from ..llamagen.vq import LlamaGenVQ
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from .common import Images, per_row, token_region
from .. import memory
from .llamagen import check_pair, decode_memory, encode

def prepare(editor: EditARGPT, vq: LlamaGenVQ, images: Images, resize: str = "center_crop") -> TokenBatch:
    """Pictures -> the editor's input tokens, fitted as EditAR's training data was (Lanczos, then `resize`)."""
    check_pair(vq, editor)
    return encode(vq, images, editor.cfg.image_size, resize, resample="lanczos")


def instruction_prompts(task: str, instructions: Sequence[str]) -> list[str]:
    """The prompts EditAR was trained with: the instruction as is (edit), or inside the task's template."""
    return [task_prompt(task, text) for text in instructions]


def edit(editor: EditARGPT, vq: LlamaGenVQ, encoder, inputs: TokenBatch, prompts: Sequence[str], seeds,
         text_cfg: float | Sequence[float] | None = None, image_cfg: float | Sequence[float] | None = None,
         sampling: SamplingSettings | None = None, mask=None, progress: ProgressFn | None = None,
         max_chunk: int = DRAFT_CHUNK, region: torch.Tensor | None = None,
         compile: str | bool = COMPILE, memory_budget: int | str | None = "auto") -> TokenBatch:
    """One edit per row of `inputs` (its tokens, from `prepare`) with its prompt (1 for all rows, or one per row,
    already in the task's template: `instruction_prompts`). Guidance (one value, or one per row) and sampling left
    None are the model file's own (core.defaults). `mask`: a MASK on the input picture (or one per row; 1 = may
    change), or `region` already on the token grid; outside it the input's tokens are kept. Rows beyond what
    `memory_budget` holds at once run in micro-batches (see `llamagen.edit`)."""
    check_pair(vq, editor)
    guidance = defaults(editor, "editar")
    text_cfg = guidance.text_cfg if text_cfg is None else text_cfg
    image_cfg = guidance.image_cfg if image_cfg is None else image_cfg
    sampling = (sampling or defaults(editor, "sampling")).validate()
    rows, g = inputs.batch, editor.cfg.grid_size
    prompts = per_row(prompts, rows)
    if len(set(prompts)) == 1:  # one prompt: encoded once, shared by every row
        features = encoder.encode_raw(prompts[:1], editor.cfg.cls_token_num).features.expand(rows, -1, -1)
    else:
        features = encoder.encode_raw(prompts, editor.cfg.cls_token_num).features
    text = Condition(features.to(editor.device), None, prompts)
    if region is None:
        region = token_region(mask, (g, g), vq.downsample, rows)
    keep = None if region is None else ~region
    seeds = seed_tensor(seeds)
    flat = inputs.flat.to(editor.device)
    tokens = torch.cat(memory.in_parts(
        decode_memory(editor), rows, memory.run_budget(memory_budget, editor.device), "this edit", progress,
        lambda idx, part_progress: editar_generate(
            editor, flat[idx.to(flat.device)], text.index(idx), sampling, seeds[idx],
            memory.pick_rows(text_cfg, idx, rows), memory.pick_rows(image_cfg, idx, rows),
            None if keep is None else keep[idx.to(keep.device)], progress=part_progress, max_chunk=max_chunk,
            compile=compile)))
    return TokenBatch(tokens.view(rows, g, g), "edited", None, seeds, sampling, vq.downsample)
