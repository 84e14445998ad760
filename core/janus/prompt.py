"""Janus-Pro's text side for drawing: the folder's tokenizer and the official prompt of its generate().

The README's Janus-Pro example (deepseek-ai/Janus, processing_vlm.py and conversation.py's "deepseek" template,
system prompt empty) builds "<|User|>: {caption}\\n\\n<|Assistant|>:" and appends "<begin_of_image>"; the tokenizer
adds BOS. The unconditional CFG row is the same ids with everything between BOS and <begin_of_image> replaced by
the pad token, at the same positions (generation_inference.py).
"""
from __future__ import annotations

import json
import os

USER, ASSISTANT = "<|User|>", "<|Assistant|>"
IMAGE_START = "<begin_of_image>"
PAD = "<｜▁pad▁｜>"
BOS = "<｜begin▁of▁sentence｜>"
MAX_PROMPT_TOKENS = 1024


def prompt_text(caption: str) -> str:
    """The official generation prompt (the SFT template strips the caption and the whole prompt)."""
    return f"{USER}: {caption.strip()}\n\n{ASSISTANT}:{IMAGE_START}"


class JanusTokenizer:
    """tokenizer.json (the `tokenizers` library, no transformers) + the ids generation needs, read by name."""

    def __init__(self, tokenizer, bos: str = BOS):
        self.tokenizer = tokenizer
        missing = [t for t in (bos, PAD, IMAGE_START) if tokenizer.token_to_id(t) is None]
        if missing:
            raise ValueError(f"the tokenizer has no {', '.join(map(repr, missing))}: it is not Janus-Pro's")
        self.bos_id = tokenizer.token_to_id(bos)
        self.pad_id = tokenizer.token_to_id(PAD)
        self.image_start_id = tokenizer.token_to_id(IMAGE_START)

    @classmethod
    def from_folder(cls, folder: str) -> "JanusTokenizer":
        from tokenizers import Tokenizer

        path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder} has no tokenizer.json: the folder is incomplete (download it again)")
        try:
            tok = Tokenizer.from_file(path)
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises its own exception type
            raise ValueError(f"{path} is not a readable tokenizer.json: {e}") from None
        bos = BOS
        cfg_path = os.path.join(folder, "tokenizer_config.json")
        if os.path.isfile(cfg_path):  # the folder may name its own BOS
            try:
                with open(cfg_path, encoding="utf-8") as f:
                    named = json.load(f).get("bos_token")
                bos = named.get("content", bos) if isinstance(named, dict) else (named or bos)
            except (OSError, ValueError, AttributeError):
                pass
        return cls(tok, bos)

    def check_vocab(self, vocab_size: int, where: str) -> None:
        if self.tokenizer.get_vocab_size() > vocab_size:
            raise ValueError(f"{where}: the tokenizer has {self.tokenizer.get_vocab_size()} tokens, the model's "
                             f"embedding {vocab_size}: they do not belong together")

    def prompt_ids(self, caption: str) -> list[int]:
        """BOS + the official prompt's ids; a caption with no words is an error."""
        if not any(ch.isalnum() for ch in caption):
            raise ValueError("the prompt is empty: describe the picture to draw")
        ids = [self.bos_id] + self.tokenizer.encode(prompt_text(caption), add_special_tokens=False).ids
        if len(ids) > MAX_PROMPT_TOKENS:
            raise ValueError(f"the prompt is {len(ids)} tokens; at most {MAX_PROMPT_TOKENS}: shorten it")
        if ids[-1] != self.image_start_id:
            raise ValueError(f"the tokenizer split {IMAGE_START!r}: it is not Janus-Pro's")
        return ids

    def unconditional(self, ids: list[int]) -> list[int]:
        """The CFG row of a prompt: BOS and <begin_of_image> kept, every token between them the pad token."""
        return [ids[0]] + [self.pad_id] * (len(ids) - 2) + [ids[-1]]
