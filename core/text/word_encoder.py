"""A small word-level text encoder (trained with the embedded ShapesWorld model), behind the same
interface as T5: prompts -> TextEmbedding in LlamaGen's layout (left padding, pad rows zeroed).

Words outside its vocabulary are refused with the list of words it knows: the embedded model only
understands its own world, and a silent fallback would give meaningless images.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config_io import ConfigIO
from ..shapes.world import UNSAID_WORDS
from .encoders import TextEmbedding, to_llamagen_layout, trim_right_padded, validate_prompts

PAD, FIRST_WORD = 0, 1


@dataclass(frozen=True)
class WordEncoderConfig(ConfigIO):
    vocab: tuple[str, ...] = ()
    dim: int = 64
    n_layer: int = 2
    n_head: int = 4
    max_length: int = 32



class EncoderLayer(nn.Module):
    def __init__(self, dim: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])  # [B, H, L, Hd]
        x = x + self.proj(attn.transpose(1, 2).reshape(B, L, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class WordEncoderNet(nn.Module):
    def __init__(self, cfg: WordEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(len(cfg.vocab) + FIRST_WORD, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(cfg.max_length, cfg.dim))
        self.layers = nn.ModuleList(EncoderLayer(cfg.dim, cfg.n_head) for _ in range(cfg.n_layer))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids [B, L] right-padded, mask [B, L] bool -> features [B, L, dim]."""
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class WordTokenizer:
    def __init__(self, vocab: Sequence[str], max_length: int):
        self.vocab = list(vocab)
        self.index = {w: i + FIRST_WORD for i, w in enumerate(self.vocab)}
        self.max_length = max_length

    def words(self, prompt: str) -> list[str]:
        # "large" is the default size the captions never say: a caption encoder without the word reads it as unsaid
        return [w for w in re.findall(r"[a-z]+", prompt.lower()) if w in self.index or w not in UNSAID_WORDS]

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((len(prompts), self.max_length), PAD, dtype=torch.long)
        for b, p in enumerate(prompts):
            words = self.words(p)
            unknown = sorted({w for w in words if w not in self.index})
            if unknown:
                raise ValueError(f"the embedded text encoder does not know {', '.join(repr(w) for w in unknown)}; "
                                 f"it knows only: {' '.join(self.vocab)}")
            if len(words) > self.max_length:
                raise ValueError(f"prompt has {len(words)} words; the embedded text encoder reads at most {self.max_length}")
            ids[b, : len(words)] = torch.tensor([self.index[w] for w in words], dtype=torch.long)
        return ids, ids != PAD


class WordTextEncoder:
    """TextEncoder for the embedded model."""

    def __init__(self, net: WordEncoderNet, name: str = "shapes-words", grammar: Callable[[str], object] | None = None,
                 reads: str = "captions"):
        self.model = net
        self.grammar = grammar  # raises ValueError for a prompt the encoder's world cannot describe
        self.reads = reads  # "captions" (the generators, ATM, AREdit) or "instructions" (the embedded editors)
        self.tokenizer = WordTokenizer(net.cfg.vocab, net.cfg.max_length)
        self.name = name
        self.embed_dim = net.cfg.dim
        self.max_length = net.cfg.max_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _ids(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(validate_prompts(prompts))  # unknown words first: the clearer error
        if self.grammar is not None:
            for p in prompts:
                self.grammar(p)
        return ids, mask

    def check(self, prompts: Sequence[str]) -> None:
        """Raises the error encoding `prompts` would raise (unknown words, too long, outside the grammar), at no
        model cost."""
        self._ids(prompts)

    def features(self, prompts: Sequence[str]) -> TextEmbedding:
        """Differentiable encoding (used in training)."""
        ids, mask = self._ids(prompts)
        hidden = self.model(ids.to(self.device), mask.to(self.device))
        features, new_mask = to_llamagen_layout(hidden, mask.to(self.device))
        return TextEmbedding(features, new_mask, list(prompts), self.name)

    @torch.inference_mode()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding:
        return self.features(prompts)

    def raw_features(self, prompts: Sequence[str], length: int) -> TextEmbedding:
        """Differentiable right-padded features, `length` slots, pad rows as the encoder computes them (EditAR's
        layout, as T5's last_hidden_state). Slots beyond the encoder's own length are zero."""
        ids, mask = self._ids(prompts)
        hidden = self.model(ids.to(self.device), mask.to(self.device))[:, :length]
        mask = mask.to(self.device)[:, :length]
        if hidden.shape[1] < length:
            hidden = torch.nn.functional.pad(hidden, (0, 0, 0, length - hidden.shape[1]))
            mask = torch.nn.functional.pad(mask, (0, length - mask.shape[1]))
        return TextEmbedding(hidden, mask, list(prompts), self.name)

    @torch.inference_mode()
    def encode_raw(self, prompts: Sequence[str], length: int) -> TextEmbedding:
        return self.raw_features(prompts, length)

    @torch.inference_mode()
    def encode_infinity(self, prompts: Sequence[str]) -> TextEmbedding:
        """Valid tokens right-padded to the longest prompt (the layout Infinity-architecture models read)."""
        ids, mask = self._ids(prompts)
        hidden = self.model(ids.to(self.device), mask.to(self.device))
        features, mask = trim_right_padded(hidden, mask.to(self.device))
        return TextEmbedding(features, mask, list(prompts), self.name)
