"""What each node accepts: checks that a socket carries the model family the node works with."""
from __future__ import annotations

from ..core.infinity.model import InfinityTransformer
from ..core.infinity.vae import BSQVAE


def infinity_model(model) -> InfinityTransformer:
    if not isinstance(model.module, InfinityTransformer):
        raise ValueError(f"{model.name} is not an Infinity model (LlamaGen models use AR Generate / ATM edit)")
    return model.load()


def bsq_vae(tokenizer) -> BSQVAE:
    if not isinstance(tokenizer.module, BSQVAE):
        raise ValueError(f"{tokenizer.name} is not Infinity's BSQ VAE")
    return tokenizer.load()
