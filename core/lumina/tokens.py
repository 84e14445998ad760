"""Lumina-mGPT's vocabulary and image token layout (Alpha-VLLM/Lumina-mGPT data/item_processor.py, checked there).

An image of H x W px (multiples of 32) is: <racm3:break> (8197), the size tokens <reserved{8800 + H/32}> and <reserved{8800 + W/32}> (ids
8804 + H/32, 8804 + W/32), then
H/16 rows of W/16 image codes each followed by the row end <reserved08799> (8803), then <eoss> (8196). Image codes
are vocabulary entries named IMGIMG<letters>Z (letters A..J = digits of the VQGAN code): read from the folder's
vocabulary_map, never assumed to be code + 4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

IMAGE_START = "<racm3:break>"
IMAGE_END = "<eoss>"
ROW_END = "<reserved08799>"
END_OF_TURN = "<reserved08706>"
PATCH = 32  # px per size unit
STRIDE = 16  # px per image code (the VQGAN's downsampling)
PROMPT = "Generate an image of {w}x{h} according to the following prompt:\n{caption}"


def _code_of(name: str) -> int | None:
    if not (name.startswith("IMGIMG") and name.endswith("Z")):
        return None
    digits = name[len("IMGIMG"):-1]
    if not digits or any(not "A" <= c <= "J" for c in digits):
        return None
    return int("".join(str(ord(c) - ord("A")) for c in digits))


@dataclass
class LuminaVocab:
    """The ids generation needs, from config.json's vocabulary_map (name -> id)."""

    image_ids: torch.Tensor  # [n_codes] long: id of VQGAN code c at index c
    image_start: int
    image_end: int
    row_end: int
    end_of_turn: int
    bos: int
    size_ids: dict  # n -> id of the size token for n x 32 px (<reserved{8800 + n}>)

    @classmethod
    def from_map(cls, vocab: Mapping[str, int], vocab_size: int, where: str = "config.json") -> "LuminaVocab":
        if not isinstance(vocab, Mapping) or not vocab:
            raise ValueError(f"{where} has no vocabulary_map: it is not a Lumina-mGPT / Chameleon folder")
        codes = {}
        for name, i in vocab.items():
            c = _code_of(name)
            if c is not None:
                codes[c] = int(i)
        n = len(codes)
        if n == 0 or sorted(codes) != list(range(n)):
            raise ValueError(f"{where}: its vocabulary_map's image codes (IMGIMG...Z) are not 0 .. n - 1")
        ids = torch.tensor([codes[c] for c in range(n)], dtype=torch.long)
        need = {IMAGE_START: None, IMAGE_END: None, ROW_END: None, END_OF_TURN: None}
        missing = [k for k in need if k not in vocab]
        if missing:
            raise ValueError(f"{where}: its vocabulary_map lacks {', '.join(missing)}")
        top = max(int(ids.max()), *(int(vocab[k]) for k in need))
        if top >= vocab_size or int(ids.min()) < 0:
            raise ValueError(f"{where}: its vocabulary_map names id {top}, beyond the model's {vocab_size} tokens")
        sizes = {n: int(vocab[f"<reserved{8800 + n:05d}>"]) for n in range(1, 200) if f"<reserved{8800 + n:05d}>" in vocab}
        return cls(ids, int(vocab[IMAGE_START]), int(vocab[IMAGE_END]), int(vocab[ROW_END]),
                   int(vocab[END_OF_TURN]), int(vocab.get("<s>", 0)), sizes)

    @property
    def n_codes(self) -> int:
        return self.image_ids.shape[0]

    def size_token(self, px: int) -> int:
        n = px // PATCH
        if n not in self.size_ids:
            known = sorted(self.size_ids)
            raise ValueError(f"this model's vocabulary has no size token for {px} px (it has "
                             f"{known[0] * PATCH if known else 0} .. {known[-1] * PATCH if known else 0} px)")
        return self.size_ids[n]


def check_size(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of image codes for an H x W picture; sizes must be multiples of 32 px."""
    if height % PATCH or width % PATCH or height <= 0 or width <= 0:
        raise ValueError(f"Lumina-mGPT makes pictures in multiples of {PATCH} px, got {width} x {height}")
    if max(height, width) / min(height, width) > 4:
        raise ValueError(f"{width} x {height}: Lumina-mGPT's sizes keep the aspect ratio within 4")
    return height // STRIDE, width // STRIDE


def image_prefix(vocab: LuminaVocab, height: int, width: int) -> list[int]:
    """<racm3:break>, then the two size tokens (height first)."""
    return [vocab.image_start, vocab.size_token(height), vocab.size_token(width)]


def layout(vocab: LuminaVocab, codes: torch.Tensor, width: int) -> torch.Tensor:
    """VQGAN codes [B, h, w] -> the body ids [B, h (w + 1) + 1]: every row's codes as ids and a row end, then the
    image end."""
    B, h, w = codes.shape
    ids = vocab.image_ids.to(codes.device)[codes]
    rows = torch.cat([ids, ids.new_full((B, h, 1), vocab.row_end)], -1).view(B, -1)
    return torch.cat([rows, rows.new_full((B, 1), vocab.image_end)], -1)


def codes_of(vocab: LuminaVocab, body: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The body ids [B, rows (cols + 1) (+ 1)] -> VQGAN codes [B, rows, cols], checking the row ends."""
    B = body.shape[0]
    grid = body[:, :rows * (cols + 1)].reshape(B, rows, cols + 1)
    if not bool((grid[..., -1] == vocab.row_end).all()):
        raise ValueError("the image tokens lack their row ends: not a Lumina-mGPT image of this size")
    lookup = torch.full((int(vocab.image_ids.max()) + 1,), -1, dtype=torch.long, device=body.device)
    lookup[vocab.image_ids.to(body.device)] = torch.arange(vocab.n_codes, device=body.device)
    ids = grid[..., :-1]
    codes = lookup[ids.clamp(0, lookup.shape[0] - 1)]
    if bool((codes < 0).any()) or bool((ids >= lookup.shape[0]).any()):
        raise ValueError("an image position holds a token that is no image code")
    return codes
