"""Text encoders behind one interface, producing caption features in LlamaGen's layout.

LlamaGen's layout for a batch of captions: features [B, L, C] (L = 120) where each caption's valid
tokens sit at the END of the L slots (left padding), padded slots are zero vectors, and mask [B, L] is
True on valid slots. Any encoder that fills `TextEmbedding` this way plugs into the same nodes.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch

from .caption_cleaning import clean_caption

log = logging.getLogger("ar_edit")


@dataclass
class TextEmbedding:
    features: torch.Tensor  # [B, L, C], left-padded, pad rows zero
    mask: torch.Tensor  # [B, L] bool, True = valid token
    prompts: list[str] = field(default_factory=list)
    encoder_name: str = ""

    @property
    def batch(self) -> int:
        return self.features.shape[0]

    def repeat_interleave(self, n: int) -> "TextEmbedding":
        """Each prompt n times in a row (prompt-major order, as a batch of seeds per prompt)."""
        return TextEmbedding(self.features.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0),
                             [p for p in self.prompts for _ in range(n)], self.encoder_name)

    def select(self, index: torch.Tensor | Sequence[int]) -> "TextEmbedding":
        idx = torch.as_tensor(index, dtype=torch.long)
        return TextEmbedding(self.features[idx.to(self.features.device)], self.mask[idx.to(self.mask.device)],
                             [self.prompts[i] for i in idx.tolist()], self.encoder_name)

    def to(self, device: torch.device | str) -> "TextEmbedding":
        return TextEmbedding(self.features.to(device), self.mask.to(device), list(self.prompts), self.encoder_name)


class TextEncoder(Protocol):
    name: str
    embed_dim: int  # C
    max_length: int  # L

    def encode(self, prompts: Sequence[str]) -> TextEmbedding: ...

    def encode_infinity(self, prompts: Sequence[str]) -> TextEmbedding: ...


def validate_prompts(prompts: Sequence[str]) -> list[str]:
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise ValueError("no prompt given")
    for i, p in enumerate(prompts):
        if not p.strip():
            raise ValueError(f"prompt {i + 1} is empty: describe the image you want")
        if not any(ch.isalnum() for ch in p):  # emoji or punctuation only: nothing a text encoder can read
            raise ValueError(f"prompt {i + 1} ({p.strip()[:40]!r}) has no words: describe the image in words")
    return prompts


def to_llamagen_layout(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded encoder output -> LlamaGen layout: valid tokens moved to the end, pads zeroed.

    features [B, L, C], mask [B, L] (1 on the first n_b slots). Returns (features, mask) where slot j of
    row b holds token j - (L - n_b), batched as one gather.
    """
    B, L, _ = features.shape
    mask = mask.bool()
    n_valid = mask.sum(1, keepdim=True)  # [B, 1]
    slots = torch.arange(L, device=features.device)[None]  # [1, L]
    src = (slots + n_valid) % L  # cyclic shift right by n_valid: pads first, valid tokens last
    shifted = features.gather(1, src[..., None].expand(-1, -1, features.shape[-1]))
    new_mask = slots >= (L - n_valid)
    return shifted * new_mask[..., None].to(shifted.dtype), new_mask


def trim_right_padded(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded features cut to the longest prompt, pad rows zeroed (Infinity's text layout)."""
    mask = mask.bool()
    L = max(int(mask.sum(1).max()), 1)
    features, mask = features[:, :L], mask[:, :L]
    return features * mask[..., None].to(features.dtype), mask


def _dtype_kwarg(dtype: torch.dtype) -> dict:
    """transformers renamed `torch_dtype` to `dtype` in 4.56; ComfyUI installs may have either."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


TIED_T5_KEYS = {"encoder.embed_tokens.weight"}  # the same tensor as `shared.weight`
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")


def t5_encoder_parameters(cfg: dict) -> int:
    """The parameter count a T5 config.json declares for its encoder (embeddings, attention, feed-forward, norms)."""
    d, layers, heads, dkv = (int(cfg.get(k, 0)) for k in ("d_model", "num_layers", "num_heads", "d_kv"))
    ff, vocab = int(cfg.get("d_ff", 0)), int(cfg.get("vocab_size", 0))
    gated = str(cfg.get("feed_forward_proj", "relu")).startswith("gated")
    per_layer = 4 * d * heads * dkv + (3 if gated else 2) * d * ff + 2 * d
    return vocab * d + layers * per_layer + d


def check_t5_folder(path: str) -> None:
    """What config.json declares must fit the weights the folder holds (at 2 bytes a parameter at the least): a
    config asking for far more would make transformers allocate it all as random weights first."""
    import json

    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: config.json cannot be read ({e})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: config.json is not a T5 config")
    try:
        declared = t5_encoder_parameters(cfg)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: config.json's sizes are not numbers") from None
    stored = sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path) if n.endswith(WEIGHT_SUFFIXES))
    if declared * 2 > stored * 1.05 + 1_000_000:
        raise ValueError(f"{path}: config.json declares a T5 encoder of {declared / 1e9:.2f} billion parameters "
                         f"({declared * 2 / 1e9:.1f} GB at 2 bytes each), but the folder's weights are "
                         f"{stored / 1e9:.2f} GB: the config does not belong to these weights")


class T5TextEncoder:
    """A T5 encoder (LlamaGen: google/flan-t5-xl, 2048-d) loaded with `transformers` from a folder."""

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 max_length: int = 120, clean: bool = True):
        from transformers import AutoTokenizer, T5EncoderModel

        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"T5 folder not found: {path} (it needs config.json, the tokenizer files "
                                    f"and the weights, as in the google/flan-t5-xl repository)")
        check_t5_folder(path)  # before transformers allocates what config.json declares
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            model, info = T5EncoderModel.from_pretrained(path, output_loading_info=True, **_dtype_kwarg(dtype))
        except Exception as e:
            raise ValueError(f"{path} is not a loadable T5 folder: {e}") from e
        missing = [k for k in info.get("missing_keys", []) if k not in TIED_T5_KEYS]
        if missing:  # transformers would leave them random
            raise ValueError(f"{path}: the weights lack {len(missing)} of the encoder's tensors "
                             f"({', '.join(sorted(missing)[:5])}{', ...' if len(missing) > 5 else ''}): the download is "
                             f"incomplete or the files belong to another model")
        self.model = model.eval().requires_grad_(False)
        self.model.to(device)
        self.name = os.path.basename(path.rstrip("/\\")) or "t5"
        self.embed_dim = int(self.model.config.d_model)
        self.max_length = max_length
        self.clean = clean

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check(self, prompts: Sequence[str]) -> None:
        """Raises for prompts T5 cannot take (empty, no words); any words are fine."""
        validate_prompts(prompts)

    def preprocess(self, prompt: str) -> str:
        return clean_caption(prompt) if self.clean else prompt.lower().strip()

    def cut(self, texts: Sequence[str], limit: int, reader: str) -> list[int]:
        """Token counts of the prompts longer than `limit` (0 for the others). Every official code this pack
        follows cuts them to `limit` (T5 truncation), so the pack does too, and says so: one warning per prompt,
        naming its length and what is read."""
        counts = [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
        for i, n in enumerate(counts):
            if n > limit:
                log.warning("prompt %d has %d tokens; %s reads the first %d (as its official code does): the rest "
                            "is ignored", i + 1, n, reader, limit)
        return [n if n > limit else 0 for n in counts]

    @torch.inference_mode()
    def encode_raw(self, prompts: Sequence[str], length: int) -> TextEmbedding:
        """T5's right-padded last_hidden_state as is, `length` slots, no caption cleaning (EditAR's text
        path). The mask marks the valid tokens but EditAR attends to every slot."""
        prompts = validate_prompts(prompts)
        self.cut(prompts, length, "EditAR")
        batch = self.tokenizer(list(prompts), max_length=length, padding="max_length", truncation=True,
                               add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        ids, attn = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=attn).last_hidden_state
        return TextEmbedding(hidden, attn.bool(), list(prompts), self.name)

    @torch.inference_mode()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding:
        prompts = validate_prompts(prompts)
        texts = [self.preprocess(p) for p in prompts]
        self.cut(texts, self.max_length, "LlamaGen")
        batch = self.tokenizer(texts, max_length=self.max_length, padding="max_length", truncation=True,
                               add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        ids = batch["input_ids"].to(self.device)
        attn = batch["attention_mask"].to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=attn).last_hidden_state
        features, mask = to_llamagen_layout(hidden, attn)
        return TextEmbedding(features, mask, list(prompts), self.name)

    @torch.inference_mode()
    def encode_infinity(self, prompts: Sequence[str], max_length: int = 512) -> TextEmbedding:
        """Infinity's text path: the raw prompt (no cleaning), up to 512 tokens, only valid tokens kept
        (right-padded to the batch's longest prompt). T5 masks pads, so padding to the longest prompt
        gives the same features as the reference's padding to 512."""
        prompts = validate_prompts(prompts)
        self.cut(prompts, max_length, "Infinity / VAREdit")
        batch = self.tokenizer(list(prompts), max_length=max_length, padding="longest", truncation=True,
                               return_attention_mask=True, return_tensors="pt")
        ids, attn = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=attn).last_hidden_state.float()
        features, mask = trim_right_padded(hidden, attn)
        return TextEmbedding(features, mask, list(prompts), self.name)
