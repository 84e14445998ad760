"""What a batch of generations is conditioned on, shared by both backbones and every editing method."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Condition:
    """What a batch is conditioned on: caption features [B, T, C] + mask [B, T], or labels [B].

    layout "llamagen": cleaned captions, left-padded to the model's caption slots; "infinity": raw T5
    features of the valid tokens, right-padded to the longest prompt of the batch."""

    raw: torch.Tensor
    mask: torch.Tensor | None = None
    prompts: list[str] = field(default_factory=list)
    layout: str = "llamagen"

    @property
    def batch(self) -> int:
        return self.raw.shape[0]

    def _with(self, raw, mask, prompts) -> "Condition":
        return Condition(raw, mask, prompts, self.layout)

    def repeat_interleave(self, n: int) -> "Condition":
        return self._with(self.raw.repeat_interleave(n, 0), None if self.mask is None else self.mask.repeat_interleave(n, 0),
                          [p for p in self.prompts for _ in range(n)])

    def index(self, idx: torch.Tensor) -> "Condition":
        return self._with(self.raw[idx.to(self.raw.device)], None if self.mask is None else self.mask[idx.to(self.mask.device)],
                          [self.prompts[i] for i in idx.tolist()] if self.prompts else [])

    def to(self, device) -> "Condition":
        return self._with(self.raw.to(device), None if self.mask is None else self.mask.to(device), list(self.prompts))
