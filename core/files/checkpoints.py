"""Reading checkpoint files safely and loading them strictly.

Only two formats are read: safetensors, and PyTorch pickles through `torch.load(weights_only=True)`.
A pickle that needs anything beyond tensors and plain containers is refused, except
`argparse.Namespace`, which LlamaGen training checkpoints store under "args" and which holds data only.
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import Mapping

import torch
from torch import nn

# Where LlamaGen-style training scripts put the weights inside a pickled checkpoint, in the order the
# official samplers look for them.
WRAPPER_KEYS = ("model", "module", "state_dict", "vae")  # "vae": Infinity's BSQ VAE files


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


def read_file(path: str | os.PathLike, prefer_ema: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (state_dict, metadata) from a `.safetensors` or a pickled `.pt/.pth/.bin` file.

    Tensors stay on the CPU. `metadata` is the safetensors header metadata (empty for pickles).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt", device="cpu") as f:  # validates the header
                metadata = dict(f.metadata() or {})
                keys = list(f.keys())
                state = _mapped_tensors(path, keys)
                if state is None:  # a layout the mapping does not cover: read the plain way
                    state = {k: f.get_tensor(k) for k in keys}
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from e
        return state, metadata
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_can_mmap(path))
    except Exception as e:
        raise CheckpointError(
            f"{path} could not be read as a PyTorch checkpoint with weights_only=True "
            f"(not a checkpoint, truncated, or it contains executable objects): {e}"
        ) from e
    return unwrap_state_dict(obj, path, prefer_ema=prefer_ema), {}


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                       "BOOL": torch.bool}


def _mapped_tensors(path: str, keys: list[str]) -> dict[str, torch.Tensor] | None:
    """The file's tensors as views of one copy-on-write memory map: nothing is read until used, and nothing is
    copied (safetensors' get_tensor copies each tensor out of its map, doubling the peak memory of a load).
    The header was validated by safe_open; None when a tensor's dtype or alignment needs the plain read."""
    import mmap
    import struct

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        if os.path.getsize(path) == 8 + n:
            return None  # nothing to map (a file of empty tensors)
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    state = {}
    for k in keys:
        info = header[k]
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        start, end = info["data_offsets"]
        if dtype is None:
            return None
        item = torch.empty((), dtype=dtype).element_size()
        if (8 + n + start) % item or (end - start) % item:
            return None
        if end == start:
            state[k] = torch.empty(info["shape"], dtype=dtype)
            continue
        with warnings.catch_warnings():  # the map is writable (copy-on-write); torch warns about read-only ones
            warnings.simplefilter("ignore")
            flat = torch.frombuffer(mm, dtype=dtype, count=(end - start) // item, offset=8 + n + start)
        state[k] = flat.view(info["shape"])
    return state


def read_sharded(folder: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A sharded checkpoint folder (Hugging Face layout: `*.index.json` with a weight_map naming the shard
    of every tensor; shards .safetensors or .bin). Every listed shard must be present."""
    folder = os.fspath(folder)
    indexes = sorted(n for n in os.listdir(folder) if n.endswith(".index.json")) if os.path.isdir(folder) else []
    if not indexes:
        raise CheckpointError(f"{folder} is not a sharded checkpoint folder (no *.index.json inside)")
    try:
        with open(os.path.join(folder, indexes[0]), encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map", {})
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{folder}: {indexes[0]} is not a readable shard index ({e})") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{folder}: {indexes[0]} has no weight_map of tensor names to shard files")
    shards = sorted(set(weight_map.values()))
    real = os.path.realpath(folder)
    outside = [s for s in shards if os.path.isabs(s) or os.path.dirname(os.path.realpath(os.path.join(folder, s))) != real]
    if outside:  # an index names its own folder's files only: never a path out of it (the models folder's rule)
        raise CheckpointError(f"{folder}: {indexes[0]} names shards outside its folder: {', '.join(outside[:3])}")
    missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
    if missing:
        raise CheckpointError(f"{folder}: shard files missing (download incomplete?): {', '.join(missing)}")
    state: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for shard in shards:
        part, m = read_file(os.path.join(folder, shard))
        state.update(part)
        meta.update(m)
    return state, meta


def read_any(path: str | os.PathLike, prefer_ema: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A single checkpoint file, or a sharded checkpoint folder."""
    return read_sharded(path) if os.path.isdir(path) else read_file(path, prefer_ema=prefer_ema)


def _can_mmap(path: str) -> bool:
    # mmap needs the zipfile format (torch >= 1.6); the legacy format raises, so test the magic.
    with open(path, "rb") as f:
        return f.read(2) == b"PK"


def unwrap_state_dict(obj, path: str = "<checkpoint>", prefer_ema: bool = False) -> dict[str, torch.Tensor]:
    """Find the weights in a loaded checkpoint: under "model"/"module"/"state_dict", or a bare dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dict of weights")
    keys = (("ema",) if prefer_ema else ()) + WRAPPER_KEYS
    for key in keys:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{path} holds no tensors (top-level keys: {sorted(map(str, obj))[:10]})")
    # FSDP/DDP consolidations sometimes prefix every key with "module." or "_orig_mod." (torch.compile).
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    what: str,
) -> None:
    """Load `state` into `module`, failing with the names of every missing or unexpected key and every
    shape mismatch (never a partial load with leftover random weights)."""
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    wrong_shape = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong_shape:
        lines = [f"{what}: the checkpoint does not match the model architecture."]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong_shape)):
            if items:
                shown = ", ".join(items[:20]) + (f", ... ({len(items) - 20} more)" if len(items) > 20 else "")
                lines.append(f"  {title} ({len(items)}): {shown}")
        raise CheckpointError("\n".join(lines))
    # A NaN / inf weight loads and runs without a word, giving blank or constant outputs: name it instead.
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        shown = ", ".join(broken[:10]) + (f", ... ({len(broken) - 10} more)" if len(broken) > 10 else "")
        raise CheckpointError(f"{what}: the file holds NaN or infinite weights in {len(broken)} tensor(s): {shown}. "
                              f"It is damaged (or was saved after training diverged): download or export it again")
    # assign=True: the module may live on the meta device; its tensors become the file's tensors.
    module.load_state_dict(dict(state), strict=True, assign=True)


def read_config_json(folder: str | os.PathLike) -> dict:
    """A model folder's config.json as a dict, or a ValueError naming the folder and what is wrong."""
    path = os.path.join(os.fspath(folder), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise ValueError(f"{os.fspath(folder)}: cannot read its config.json ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a model config (a JSON object)")
    return config


def save_safetensors(state: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, object] | None = None) -> None:
    """Write tensors (made contiguous, shared storage broken) with string metadata, atomically."""
    from safetensors.torch import save_file

    path = os.fspath(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path + ".partial"
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)  # never leave a half-written file under the final name
    except BaseException:
        if os.path.exists(tmp):  # a full disk: no half-written gigabytes left behind either
            os.remove(tmp)
        raise
