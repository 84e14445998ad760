"""What each node accepts, checked before any work.

Each model family and kind of data has a socket type of its own (types.py), so the graph editor refuses a crossed
wire. These checks hold the node classes called from Python (and hand-edited graphs) to the same: each names what
arrived and the node that takes it instead.
"""
from __future__ import annotations

import torch

from ..core.infinity.aredit import AREditSource
from ..core.infinity.generate import BitTokens
from ..core.infinity.model import InfinityTransformer
from ..core.infinity.vae import BSQVAE
from ..core.llamagen.atm import SourceCache
from ..core.llamagen.editar import EditARGPT
from ..core.llamagen.gpt import LlamaGenGPT
from ..core.llamagen.vq import LlamaGenVQ
from ..core.records import TokenBatch
from ..core.files.loaders import model_family
from ..core.sweeps import MAX_SWEEP_ROWS

# each model family: what it is called, and the nodes a crossed input of that family belongs to
_FAMILIES = {"llamagen": ("a LlamaGen model", "AR Generate / AR Anchor Token Matching Edit"),
             "editar": ("an EditAR model", "AR EditAR"),
             "infinity": ("an Infinity text-to-image model", "AR Infinity Generate / AR AREdit Edit"),
             "varedit": ("a VAREdit editor", "AR VAREdit")}


def _model(model, family: str, node: str, what: str, load: bool = True):
    got = model_family(getattr(model, "module", model))
    if got != family:
        called, use = _FAMILIES.get(got, (f"a {got}", "a node of its own family"))
        raise ValueError(f"{node} needs {what}, but '{getattr(model, 'name', model)}' is {called}: use it with {use}")
    return model.load() if load else model


def llamagen_model(model, node: str, load: bool = True) -> LlamaGenGPT:
    return _model(model, "llamagen", node, "a LlamaGen model (t2i / c2i)", load)


def editar_model(model, node: str = "AR EditAR") -> EditARGPT:
    return _model(model, "editar", node, "an EditAR model (editar_release.pt)")


def infinity_model(model, node: str, load: bool = True) -> InfinityTransformer:
    return _model(model, "infinity", node, "an Infinity text-to-image model", load)


def varedit_model(model, node: str = "AR VAREdit", load: bool = True) -> InfinityTransformer:
    return _model(model, "varedit", node, "a VAREdit editor (2B-512.pth / 8B-512.pth / 8B-1024.pth)", load)


def caption_encoder(text_encoder, node: str):
    """The encoder behind a text-encoder socket, which must read captions (not the editors' instructions)."""
    encoder = text_encoder.encoder
    if getattr(encoder, "reads", "captions") != "captions":
        raise ValueError(f"{node}: '{text_encoder.name}' is the embedded editors' instruction encoder; prompts that "
                         f"describe an image need the caption encoder: load (embedded) shapes-words")
    return encoder


def instruction_encoder(text_encoder, node: str, method: str, layout: str):
    """The encoder for an instruction editor: T5, or the embedded instruction encoder (not the caption one).
    `layout`: the method the encoder must offer (encode_raw for EditAR, encode_infinity for VAREdit)."""
    encoder = text_encoder.encoder
    if getattr(encoder, "reads", None) == "captions":
        raise ValueError(f"{node}: '{text_encoder.name}' reads captions; the embedded {method} editor reads "
                         f"instructions: load (embedded) shapes-instructions")
    if not hasattr(encoder, layout):
        raise ValueError(f"{text_encoder.name} cannot drive {method}: load the T5 encoder (flan-t5-xl)")
    return encoder


def vq_tokenizer(tokenizer, node: str) -> LlamaGenVQ:
    if not isinstance(tokenizer.module, LlamaGenVQ):
        raise ValueError(f"{node} needs a LlamaGen VQ tokenizer, but '{tokenizer.name}' is Infinity's BSQ VAE: "
                         f"load the VQ that belongs to the model (vq_ds16_t2i.pt, or (embedded) shapes-vq)")
    return tokenizer.load()


def bsq_vae(tokenizer, node: str, load: bool = True) -> BSQVAE:
    if not isinstance(tokenizer.module, BSQVAE):
        raise ValueError(f"{node} needs Infinity's BSQ VAE, but '{tokenizer.name}' is a LlamaGen VQ tokenizer: load "
                         f"the VAE that belongs to the model (infinity_vae_d32reg.pth, or (embedded) shapes-infinity-vae)")
    return tokenizer.load() if load else tokenizer.module


def _socket(value, node: str, want: type, want_what: str, crossed: type, crossed_advice: str):
    """`value` must be a `want`; the other family's object (`crossed`) gets advice on where it belongs."""
    if isinstance(value, crossed):
        raise ValueError(f"{node} needs {want_what}, but {crossed_advice}")
    if not isinstance(value, want):
        raise ValueError(f"{node} needs {want_what}, got {type(value).__name__}")
    return value


def atm_source(source, node: str) -> SourceCache:
    return _socket(source, node, SourceCache, "an ATM source (from AR Edit Source Cache)", AREditSource,
                   "got an AREdit source: connect it to AR AREdit Edit, or cache LlamaGen tokens with AR Edit "
                   "Source Cache")


def aredit_source(source, node: str) -> AREditSource:
    return _socket(source, node, AREditSource, "an AREdit source (from AR AREdit Source Cache)", SourceCache,
                   "got an ATM source: connect it to AR Anchor Token Matching Edit, or cache Infinity tokens with "
                   "AR AREdit Source Cache")


def llamagen_tokens(tokens, node: str) -> TokenBatch:
    return _socket(tokens, node, TokenBatch, "LlamaGen tokens", BitTokens,
                   "these are Infinity's multi-scale bits: use the Infinity nodes (AR AREdit Source Cache, AR Tokens "
                   "to Image with the BSQ VAE)")


def bit_tokens(tokens, node: str) -> BitTokens:
    return _socket(tokens, node, BitTokens, "Infinity tokens (multi-scale bits)", TokenBatch,
                   "these are LlamaGen tokens: use the LlamaGen nodes (AR Edit Source Cache, AR Tokens to Image "
                   "with the VQ)")


def image(x: torch.Tensor, node: str, name: str = "image") -> torch.Tensor:
    """A ComfyUI IMAGE: [B, H, W, 3] (or 4: alpha is dropped later), B >= 1, finite."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[-1] not in (3, 4):
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{node}: {name} must be an IMAGE [batch, height, width, 3], got {shape}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"{node}: {name} is empty ({list(x.shape)}): connect an image batch with at least one image")
    if not torch.isfinite(x).all():
        raise ValueError(f"{node}: {name} has NaN or infinite pixels: fix the node that made it")
    return x


def mask(m: torch.Tensor | None, node: str, name: str = "mask") -> torch.Tensor | None:
    """A ComfyUI MASK: [B, H, W] or [H, W], finite, with something painted (an empty mask is a mistake: it
    would silently keep everything)."""
    if m is None:
        return None
    if not isinstance(m, torch.Tensor) or m.dim() not in (2, 3) or m.numel() == 0:
        shape = list(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
        raise ValueError(f"{node}: {name} must be a MASK [batch, height, width], got {shape}")
    if not torch.isfinite(m).all():
        raise ValueError(f"{node}: {name} has NaN or infinite values: fix the node that made it")
    if not (m > 0).any():
        raise ValueError(f"{node}: the {name} is empty, so nothing may change: paint the region to edit (in Load "
                         f"Image, right-click > Open in MaskEditor) or disconnect the mask")
    return m


def load_for_run(models, rows: int = 0, decoder=None, schedule=None, prefix_tokens: int = 0) -> int:
    """Load every model of a node's run in one call, with room for `rows` rows of `decoder`'s run (a LlamaGen /
    EditAR module, or an Infinity one with its scale `schedule`; or their ManagedModel): see
    comfy_bridge.load_models. -> the bytes asked for."""
    from ..core.pipelines.infinity import run_memory
    from ..core.pipelines.llamagen import decode_memory
    from . import comfy_bridge as bridge

    module = getattr(decoder, "module", decoder)
    need = 0
    if isinstance(module, LlamaGenGPT):
        need = decode_memory(module).per_row * rows
    elif isinstance(module, InfinityTransformer) and schedule:
        need = run_memory(module, schedule, prefix_tokens).per_row * rows  # the estimate the run splits by
    bridge.load_models(models, need)
    return need


MAX_BATCH = 64  # the batch_size widgets' range


def batch_rows(images: int, combinations: int) -> int:
    """Rows of a batched run (every combination for every input image), within what one batch may hold."""
    rows = images * combinations
    if rows > MAX_SWEEP_ROWS:
        raise ValueError(f"{rows} rows ({images} images x {combinations} combinations); at most {MAX_SWEEP_ROWS} "
                         f"run as one batch")
    return rows


def batch_size(n: int, conditioning, node: str) -> None:
    if not 1 <= int(n) <= MAX_BATCH:
        raise ValueError(f"{node}: batch_size must be 1..{MAX_BATCH}, got {n}")
    if int(n) * conditioning.batch > MAX_SWEEP_ROWS:
        raise ValueError(f"{node}: {conditioning.batch} prompts x batch_size {n} = {int(n) * conditioning.batch} "
                         f"images in one batch; at most {MAX_SWEEP_ROWS}")


def tokenizers_fit(gpt: LlamaGenGPT, prompt, unique_id, node: str) -> None:
    """Before any sampling: every VQ tokenizer loader wired to a node that takes this node's tokens must code as
    the model does (its codebook read from the file's header, nothing loaded). `prompt` is ComfyUI's graph (the
    hidden PROMPT input); without it nothing is checked here and decoding checks the codes."""
    from ..core.files.loaders import OFFICIAL_VQ_CODES, vq_codes_in_file
    from ..core.shapes.embedded import embedded_file
    from .comfy_bridge import local_path, outside_models_folder

    if not isinstance(prompt, dict) or unique_id is None:
        return
    me = str(unique_id)
    for consumer in prompt.values():
        inputs = consumer.get("inputs", {}) if isinstance(consumer, dict) else {}
        if not any(isinstance(v, list) and len(v) == 2 and str(v[0]) == me for v in inputs.values()):
            continue
        link = inputs.get("tokenizer")
        loader = prompt.get(str(link[0])) if isinstance(link, list) and link else None
        if not isinstance(loader, dict) or loader.get("class_type") != "ARE_VQLoader":
            continue
        name = loader.get("inputs", {}).get("tokenizer_name")
        if not isinstance(name, str) or outside_models_folder(name):
            continue  # the loader's own validation names what is wrong with it
        path = embedded_file("vq", name) or local_path("vq", name) or (name if name in OFFICIAL_VQ_CODES else None)
        codes = vq_codes_in_file(path) if path else None
        if codes is not None and codes != gpt.cfg.vocab_size:
            raise ValueError(f"{node}: the tokenizer '{name}' that decodes these tokens has {codes} codes, but the "
                             f"model draws from {gpt.cfg.vocab_size}: they do not belong together (nothing was "
                             f"sampled). Load the model's own VQ tokenizer (the embedded models: (embedded) "
                             f"shapes-vq; the official ones: vq_ds16_t2i.pt)")
