"""ComfyUI AR Edit core: a plain PyTorch library (no ComfyUI imports) for AR image generation and editing.

Public API (see README "Python API"):
    load_gpt, load_vq, load_text_encoder_t5, save_model, convert_to_safetensors
    Condition, SamplingSettings, generate, teacher_forced_logits
    encode_images, decode_tokens_to_images
    condition_for_infinity; Infinity / AREdit / VAREdit in core.infinity.generate, core.infinity.aredit,
    core.infinity.varedit. The folders group by family: llamagen/, infinity/, text/, files/, shapes/.
    One pipeline per method over them (what the nodes, batch jobs and command line call): core.pipelines;
    where every default comes from: core.defaults.
"""
if __name__ == "core":  # the folder imported as a top-level package: a name any other package can take
    raise ImportError("the pack's core is not a top-level package: install the pack (pip install -e . in its folder) "
                      "and run python -m ar_edit_pack ...")

from .condition import Condition  # noqa: E402
from .files.checkpoints import CheckpointError
from .files.loaders import convert_to_safetensors, load_gpt, load_model, load_vq, save_model
from .images import comfy_to_model, model_to_comfy
from .llamagen.generate import decode_tokens, generate, teacher_forced_logits
from .llamagen.gpt import GPT_PRESETS, GPTConfig, LlamaGenGPT
from .llamagen.vq import VQ_PRESETS, LlamaGenVQ, VQConfig, to_unit_range
from .sampling import SamplingSettings
from .text.encoders import T5TextEncoder, TextEmbedding

import torch as _torch


def load_text_encoder_t5(path, device="cpu", precision="fp32") -> T5TextEncoder:
    from .files.loaders import resolve_dtype

    return T5TextEncoder(path, device=device, dtype=resolve_dtype(precision, device))


def condition_from_text(embedding: TextEmbedding) -> Condition:
    return Condition(embedding.features, embedding.mask, list(embedding.prompts))


def condition_for_infinity(embedding: TextEmbedding) -> Condition:
    """From `T5TextEncoder.encode_infinity` (raw prompts, valid tokens, right-padded)."""
    return Condition(embedding.features, embedding.mask, list(embedding.prompts), "infinity")


@_torch.inference_mode()
def encode_images(vq: LlamaGenVQ, images: _torch.Tensor) -> _torch.Tensor:
    """images [B, 3, H, W] in [-1, 1] -> token ids [B, h, w]."""
    return vq.encode(images.to(vq.quant_conv.weight.device))


@_torch.inference_mode()
def decode_tokens_to_images(vq: LlamaGenVQ, tokens: _torch.Tensor, grid: tuple[int, int] | None = None) -> _torch.Tensor:
    """token ids [B, h, w] (or [B, N] with grid) -> images [B, 3, H, W] in [0, 1]."""
    if tokens.dim() == 2:
        side = grid or (int(tokens.shape[1] ** 0.5),) * 2
        if side[0] * side[1] != tokens.shape[1]:
            raise ValueError(f"{tokens.shape[1]} tokens do not form a {side[0]}x{side[1]} grid")
        tokens = tokens.reshape(tokens.shape[0], *side)
    return to_unit_range(vq.decode(tokens.to(vq.quant_conv.weight.device)))
