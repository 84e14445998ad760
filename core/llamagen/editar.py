"""EditAR: LlamaGen GPT-XL fine-tuned for instruction editing and image-conditioned generation
(CVPR 2025). Checkpoint-compatible with `editar_release.pt`.

Sequence: [condition image N | text T | output N] under a plain causal mask (no caption mask). RoPE is
LlamaGen's 2D RoPE on a doubled 2g x 2g grid: condition tokens at rows/cols [0, g), output tokens at
rows/cols [g, 2g), the T text positions zero (cos = sin = 0). Text features are T5's right-padded
last_hidden_state as is (EditAR neither cleans captions nor moves or zeroes pad rows).

Guidance: the released code guides on text only, [text + image ; null text + image]; the paper also
guides on the image, with the learned `img_uncond_embedding` in place of the condition tokens. With
image_cfg = 1 the two coincide: logits = n_i + s_t (full - n_i) where n_i = null text + image; with
image_cfg != 1 a third branch (null text + null image) n is added:
logits = n + s_i (n_i - n) + s_t (full - n_i).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..condition import Condition
from ..sampling import SamplingSettings, seed_tensor
from .generate import DRAFT_CHUNK, DecodeStats, Guidance, ProgressFn, SamplePicker, as_scale_tensor, decode_from_prefix
from .gpt import GPTConfig, LlamaGenGPT, grid_cells, prefix_causal_mask, rope_for_cells

# Prompt templates EditAR was trained with, per task.
TASK_TEMPLATES = {
    "edit": "{}",
    "depth": "Given the depth image, generate an image following the description: {}",
    "canny": "Given the canny edge image, generate an image following the description: {}",
    "segmentation": "Given the segmentation mask, generate an image following the description: {}",
}
# The released code's guidance: text 3.0, no extra image guidance.
DEFAULT_TEXT_CFG = 3.0
DEFAULT_IMAGE_CFG = 1.0


@dataclass(frozen=True)
class EditARGuidance:
    text_cfg: float = DEFAULT_TEXT_CFG
    image_cfg: float = DEFAULT_IMAGE_CFG

    def validate(self) -> "EditARGuidance":
        for name, v in (("text_cfg", self.text_cfg), ("image_cfg", self.image_cfg)):
            if not 0.0 <= v < float("inf"):
                raise ValueError(f"{name} must be a number >= 0 (1 = off), got {v}")
        return self

# Keys in released checkpoints that belong to training only (a feature-distillation head).
TRAINING_ONLY_PREFIXES = ("alignment.",)


def task_prompt(task: str, text: str) -> str:
    if task not in TASK_TEMPLATES:
        raise ValueError(f"task must be one of {', '.join(TASK_TEMPLATES)}, got {task!r}")
    if not text.strip():
        raise ValueError("the instruction is empty: say what to change (or describe the image to generate)")
    if not any(ch.isalnum() for ch in text):
        raise ValueError(f"the instruction ({text.strip()[:40]!r}) has no words: say what to change in words")
    return TASK_TEMPLATES[task].format(text)


def rope_table_edit(grid: int, head_dim: int, base: float, text_len: int, start_rope: bool = False) -> torch.Tensor:
    """[N + T + N, Hd/2, 2]: condition cells at offset 0, zero text rows, output cells at offset g.
    start_rope (GPTConfig.edit_start_rope): the last text slot at (g - 1, 2g - 1), the end of the row before the
    output grid: from there source cell (0, 0) lies at the offset from which every row end sees its next row's
    first source cell."""
    cond = rope_for_cells(*grid_cells(grid, 0), head_dim, base)
    out = rope_for_cells(*grid_cells(grid, grid), head_dim, base)
    text = torch.zeros(text_len, head_dim // 2, 2, device=cond.device)
    if start_rope:
        cpu = torch.device("cpu")  # explicit, as grid_cells: models may be built under meta
        text[-1] = rope_for_cells(torch.tensor([grid - 1], device=cpu), torch.tensor([2 * grid - 1], device=cpu),
                                  head_dim, base)[0]
    return torch.cat([cond, text, out])


class EditARGPT(LlamaGenGPT):
    """LlamaGen t2i GPT + the learned null image `img_uncond_embedding` [N, D] and the edit RoPE."""

    layout = "editar"

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg)
        n, d = cfg.num_image_tokens, cfg.dim
        self.register_buffer("img_uncond_embedding", torch.randn(n, d) / d ** 0.5)
        self._rope_cpu = rope_table_edit(cfg.grid_size, cfg.head_dim, cfg.rope_base, cfg.cls_token_num,
                                         cfg.edit_start_rope)

    @property
    def prefix_len(self) -> int:
        return self.cfg.num_image_tokens + self.cfg.cls_token_num

    def image_prefix(self, cond_tokens: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Condition tokens [B, N] -> embeddings [B, N, D]; None -> the learned null image."""
        if cond_tokens is None:
            return self.img_uncond_embedding[None].expand(batch, -1, -1).to(self.dtype)
        return self.tok_embeddings(cond_tokens)

    def text_prefix(self, text: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Raw T5 features [B, T, C] -> [B, T, D]; None -> the learned null caption."""
        return self.embed_condition(self.null_condition(batch) if text is None else text)

    def forward(self, cond_tokens: torch.Tensor | None, text: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced pass -> logits [B, n, V] (row k predicts output token k)."""
        B = tokens.shape[0]
        x = torch.cat([self.image_prefix(cond_tokens, B), self.text_prefix(text, B), self.tok_embeddings(tokens[:, :-1])], 1)
        L = x.shape[1]
        logits = self.forward_embeddings(x, torch.arange(L, device=x.device), prefix_causal_mask(None, L, L, B, x.device))
        return logits[:, self.prefix_len - 1:]


def check_inputs(model: EditARGPT, cond_tokens: torch.Tensor, text: Condition) -> None:
    cfg = model.cfg
    if cond_tokens.reshape(cond_tokens.shape[0], -1).shape[1] != cfg.num_image_tokens:
        g = cfg.grid_size
        raise ValueError(f"the condition image has {cond_tokens[0].numel()} tokens; this model needs {g}x{g} "
                         f"({g * cfg.downsample} px): encode the image at {g * cfg.downsample} px")
    if text.raw.dim() != 3 or text.raw.shape[1:] != (cfg.cls_token_num, cfg.caption_dim):
        raise ValueError(f"EditAR needs text features [B, {cfg.cls_token_num}, {cfg.caption_dim}] (right-padded, "
                         f"raw), got {list(text.raw.shape)}: the text encoder does not match the model")
    if text.batch != cond_tokens.shape[0]:
        raise ValueError(f"{text.batch} prompts for {cond_tokens.shape[0]} condition images")


@torch.inference_mode()
def editar_logits(model: EditARGPT, cond_tokens: torch.Tensor, text: Condition, tokens: torch.Tensor,
                  text_cfg: float = 1.0, image_cfg: float = 1.0) -> torch.Tensor:
    """Guided logits [B, N, V] of given output tokens in full forward passes (reference for the cache)."""
    check_inputs(model, cond_tokens, text)
    dev = model.device
    c, t, x = cond_tokens.reshape(tokens.shape[0], -1).to(dev), text.raw.to(dev), tokens.to(dev)
    full = model(c, t, x)
    if text_cfg == 1.0 and image_cfg == 1.0:
        return full
    img_only = model(c, None, x)
    if image_cfg == 1.0:
        return img_only + text_cfg * (full - img_only)
    none = model(None, None, x)
    return none + image_cfg * (img_only - none) + text_cfg * (full - img_only)


def editar_generate(model: EditARGPT, cond_tokens: torch.Tensor, text: Condition, sampling: SamplingSettings,
                    seeds: Sequence[int] | torch.Tensor, text_cfg: float | Sequence[float] = DEFAULT_TEXT_CFG,
                    image_cfg: float | Sequence[float] = DEFAULT_IMAGE_CFG, keep: torch.Tensor | None = None,
                    progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
                    stats: DecodeStats | None = None, compile: str | bool = "off") -> torch.Tensor:
    """Sample output tokens [B, N]. `keep` (optional bool [B, N] or [B, g, g]): positions that keep the
    condition image's token (the region outside a user mask). Per-row text/image scales allow sweeps.
    The input image's tokens serve as a draft, verified up to `max_chunk` per pass (1 = off; same tokens)."""
    sampling.validate()
    check_inputs(model, cond_tokens, text)
    dev = model.device
    B = cond_tokens.shape[0]
    c = cond_tokens.reshape(B, -1).to(dev)
    t = text.raw.to(dev)
    s_t = as_scale_tensor(text_cfg, B, dev)
    img_host = torch.as_tensor(image_cfg, dtype=torch.float32)
    txt_host = torch.as_tensor(text_cfg, dtype=torch.float32)
    s_i = as_scale_tensor(img_host, B, dev)
    branches = [torch.cat([model.image_prefix(c, B), model.text_prefix(t, B)], 1)]
    guidance = Guidance("none")
    if not bool((img_host == 1.0).all()):  # decided on the host, before the loop
        branches.append(torch.cat([model.image_prefix(c, B), model.text_prefix(None, B)], 1))
        branches.append(torch.cat([model.image_prefix(None, B), model.text_prefix(None, B)], 1))
        guidance = Guidance("editar3", s_t, s_i)
    elif not bool((txt_host == 1.0).all()):
        branches.append(torch.cat([model.image_prefix(c, B), model.text_prefix(None, B)], 1))
        guidance = Guidance("cfg", s_t)  # n_i + s_t (full - n_i)
    seeds_d = seed_tensor(seeds).to(dev)
    if seeds_d.shape != (B,):
        raise ValueError(f"need one seed per row ({B}), got {list(seeds_d.shape)}")
    pick = SamplePicker(sampling, seeds_d, None if keep is None else keep.reshape(B, -1).to(dev), c)
    prefix = torch.cat(branches)  # [nb*B, N + T, D], plain causal mask
    return decode_from_prefix(model, prefix, None, guidance, pick, progress, draft=c, max_chunk=max_chunk,
                              stats=stats, forced=None if keep is None else keep.reshape(B, -1), compile=compile)
