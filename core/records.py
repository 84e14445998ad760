"""Data that travels between steps (and between ComfyUI nodes): token grids with their provenance."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .condition import Condition
from .sampling import SamplingSettings


@dataclass
class TokenBatch:
    """Token grids [B, h, w] (long, device-resident) plus what a later edit needs to reuse them as a
    source: the condition, per-row seeds and the sampling settings that produced them."""

    tokens: torch.Tensor
    origin: str  # "generated" | "encoded" | "edited"
    condition: Condition | None = None
    seeds: torch.Tensor | None = None  # [B] int64
    settings: SamplingSettings | None = None
    stride: int = 16  # pixels per token side

    @property
    def batch(self) -> int:
        return self.tokens.shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.tokens.shape[1]), int(self.tokens.shape[2])

    @property
    def flat(self) -> torch.Tensor:
        return self.tokens.reshape(self.batch, -1)
