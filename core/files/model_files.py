"""Where model files come from: a local folder first, else a download from the official repository.

Downloads go through huggingface_hub (resumable: an interrupted download is completed, never used half
written). When the hub cannot be reached, the error names the file, the repository id and the folder
to put the file in by hand.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class KnownFile:
    filename: str
    repo_id: str
    kind: str  # "autoregressive" | "vq" | "text_encoders"
    note: str = ""
    repo_path: str = ""  # path inside the repository when it differs from the file name
    repo_type: str = "model"  # "model" | "dataset"
    folder: bool = False  # a sharded checkpoint folder of the repository
    whole_repo: bool = False  # the repository itself is the model folder (Hugging Face layout: Lumina-mGPT)
    patterns: tuple[str, ...] = ()  # a whole repository's files to fetch (empty: HF_FOLDER_PATTERNS)
    approx_gb: float = 0.0  # estimated from the parameter count (fp32 unless released in bf16); the hub has the exact size


JANUS_PATTERNS = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "processor_config.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")

# Official LlamaGen releases (shared/docs/llamagen.md).
KNOWN_FILES: dict[str, KnownFile] = {f.filename: f for f in [
    KnownFile("t2i_XL_stage1_256.pt", "peizesun/llamagen_t2i", "autoregressive", "text-to-image, 256 px (16x16 tokens)", approx_gb=3.1),
    KnownFile("t2i_XL_stage2_512.pt", "peizesun/llamagen_t2i", "autoregressive", "text-to-image, 512 px (32x32 tokens)", approx_gb=3.1),
    KnownFile("c2i_B_256.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=0.44),
    KnownFile("c2i_B_384.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=0.44),
    KnownFile("c2i_L_256.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=1.4),
    KnownFile("c2i_L_384.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=1.4),
    KnownFile("c2i_XL_384.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=3.1),
    KnownFile("c2i_XXL_384.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=5.6),
    KnownFile("c2i_3B_384.pt", "FoundationVision/LlamaGen", "autoregressive", "ImageNet class-to-image", approx_gb=12.4),
    KnownFile("editar_release.pt", "JitengMu/CVPR2025_EditAR_release", "autoregressive",
              "EditAR instruction editor (GPT-XL, 512 px)", "editar_release/editar_release.pt", "dataset", approx_gb=3.1),
    KnownFile("vq_ds16_t2i.pt", "peizesun/llamagen_t2i", "vq", "VQ-16 tokenizer for the t2i models", approx_gb=0.29),
    KnownFile("vq_ds16_c2i.pt", "FoundationVision/LlamaGen", "vq", "VQ-16 tokenizer for the c2i models", approx_gb=0.29),
    KnownFile("vq_ds8_c2i.pt", "FoundationVision/LlamaGen", "vq", "VQ-8 tokenizer", approx_gb=0.28),
    KnownFile("flan-t5-xl", "google/flan-t5-xl", "text_encoders", "T5 text encoder folder for LlamaGen t2i and Infinity", approx_gb=11.4),
    # Infinity (shared/docs/infinity_aredit.md)
    KnownFile("infinity_2b_reg.pth", "FoundationVision/Infinity", "autoregressive", "Infinity-2B text-to-image, up to 1024 px", approx_gb=8.0),
    KnownFile("infinity_8b_weights", "FoundationVision/Infinity", "autoregressive",
              "Infinity-8B (sharded folder; needs the d56 VAE)", folder=True, approx_gb=16.0),
    KnownFile("infinity_8b_512x512_weights", "FoundationVision/Infinity", "autoregressive",
              "Infinity-8B at 512 px (sharded folder; needs the d56 VAE)", folder=True, approx_gb=16.0),
    KnownFile("2B-512.pth", "HiDream-ai/VAREdit", "autoregressive", "VAREdit 2B instruction editor, 512 px (d32 VAE)", approx_gb=8.0),
    KnownFile("8B-512.pth", "HiDream-ai/VAREdit", "autoregressive", "VAREdit 8B instruction editor, 512 px (d56 VAE)", approx_gb=32.0),
    KnownFile("8B-1024.pth", "HiDream-ai/VAREdit", "autoregressive", "VAREdit 8B instruction editor, 1024 px (d56 VAE)", approx_gb=32.0),
    # Lumina-mGPT (shared/docs/lumina_mgpt.md): each repository is one folder, 14 GB of bf16 shards. Its VQGAN is
    # Meta's Chameleon one, not on the hub (a request form): the loader's message says where it goes.
    *[KnownFile(f"Lumina-mGPT-7B-{v}", f"Alpha-VLLM/Lumina-mGPT-7B-{v}", "autoregressive", note, whole_repo=True,
                approx_gb=14.0) for v, note in [
        ("768", "Lumina-mGPT text-to-image, 768 px (the ISLock paper's)"), ("512", "Lumina-mGPT text-to-image, 512 px"),
        ("1024", "Lumina-mGPT text-to-image, 1024 px"), ("768-Omni", "Lumina-mGPT Omni, 768 px")]],
    # Janus-Pro (shared/docs/janus_pro.md): each repository is one folder of pickled bf16 weights (the 7B in two
    # shards with pytorch_model.bin.index.json); the understanding tower comes along (it is in the same files).
    *[KnownFile(f"Janus-Pro-{v}", f"deepseek-ai/Janus-Pro-{v}", "autoregressive", f"Janus-Pro {v}, 384 px (with its "
                f"VQ-16 tokenizer)", whole_repo=True, patterns=JANUS_PATTERNS, approx_gb=gb)
      for v, gb in (("1B", 4.2), ("7B", 14.8))],
    KnownFile("infinity_vae_d32reg.pth", "FoundationVision/Infinity", "vq", "BSQ VAE for Infinity-2B", approx_gb=0.5),
    KnownFile("infinity_vae_d56_f8_14_patchify.pth", "FoundationVision/Infinity", "vq", "BSQ VAE for Infinity-8B", approx_gb=0.5),
]}

# Only what T5EncoderModel + its tokenizer need from google/flan-t5-xl.
T5_PATTERNS = ["config.json", "spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "*.safetensors", "model.safetensors.index.json"]


# A Hugging Face model folder without its demo pictures or other extras.
HF_FOLDER_PATTERNS = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                      "special_tokens_map.json", "*.safetensors", "model.safetensors.index.json"]


class ModelFileMissing(FileNotFoundError):
    pass


_SHARD = re.compile(r"-\d{5}-of-\d{5}\.(safetensors|bin)$")


def is_complete(path: str, kind: str) -> bool:
    """A file is complete once it exists (hub downloads land under their name only when whole); a T5 or
    Lumina-mGPT folder needs its config, tokenizer and every weight shard its index lists."""
    known = KNOWN_FILES.get(os.path.basename(path))
    if kind != "text_encoders" and not (known is not None and known.whole_repo):
        if known is not None and known.folder:
            return _shards_complete(path)
        return os.path.isfile(path)
    if not os.path.isdir(path):
        return False
    files = set(os.listdir(path))
    if "config.json" not in files or not ({"spiece.model", "tokenizer.json"} & files):
        return False
    indexes = sorted(n for n in files if n.endswith(".index.json"))  # model.safetensors / pytorch_model.bin
    index = os.path.join(path, indexes[0]) if indexes else ""
    if index:
        try:
            with open(index, encoding="utf-8") as f:
                shards = set(json.load(f).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            return False  # an index cut off mid-download
        return shards <= files
    if any(_SHARD.search(n) for n in files):  # shards of a sharded set whose index has not arrived yet
        return False
    return any(n.endswith(".safetensors") or n.startswith("pytorch_model") for n in files)


def _shards_complete(path: str) -> bool:
    if not os.path.isdir(path):
        return False
    files = set(os.listdir(path))
    for index in (n for n in files if n.endswith(".index.json")):
        with open(os.path.join(path, index)) as f:
            return set(json.load(f).get("weight_map", {}).values()) <= files
    return False


def known_files(kind: str) -> list[str]:
    return [f.filename for f in KNOWN_FILES.values() if f.kind == kind]


def missing_message(known: KnownFile, folder: str, reason: str) -> str:
    what = "folder" if known.kind == "text_encoders" or known.folder or known.whole_repo else "file"
    where = f"https://huggingface.co/{'datasets/' if known.repo_type == 'dataset' else ''}{known.repo_id}"
    inside = f" (file {known.repo_path})" if known.repo_path else ""
    size = f" (~{known.approx_gb:g} GB)" if known.approx_gb else ""
    return (f"{known.filename}{size} is not in {folder} and could not be downloaded ({reason}).\n"
            f"Download the {what} from {where}{inside} and put it at {os.path.join(folder, known.filename)}; or all "
            f"of a workflow's files at once: python -m ar_edit_pack models --workflow <workflow.json> --download "
            f"(README: Set-up)")


_REACHABLE: dict[str, tuple[float, bool]] = {}  # host -> (checked at, reachable)
REACHABILITY_TTL = 60.0  # seconds a check is trusted (a graph with several loaders checks once)


def hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


def offline_set() -> bool:
    """HF_HUB_OFFLINE asks for no downloads."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the hub be reached? One quick TCP connect (cached for a minute) instead of the download client's
    retry loop, so that offline a missing file is reported at once."""
    if offline_set():
        return False
    host = hub_host()
    checked = _REACHABLE.get(host)
    if checked and time.monotonic() - checked[0] < REACHABILITY_TTL:
        return checked[1]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        ok = True
    except OSError:
        ok = False
    _REACHABLE[host] = (time.monotonic(), ok)
    return ok


def ensure_local(name: str, folder: str, allow_download: bool = True) -> str:
    """Return a local path for `name`: `folder/name` if present, else download an official file there."""
    path = os.path.join(folder, name)
    known = KNOWN_FILES.get(name)
    if known is None or is_complete(path, known.kind):
        if not os.path.exists(path):
            raise ModelFileMissing(f"model file not found: {path}")
        return path
    if not allow_download:
        raise ModelFileMissing(missing_message(known, folder, "downloads are disabled"))
    if offline_set():
        raise ModelFileMissing(missing_message(known, folder, "HF_HUB_OFFLINE is set"))
    if not hub_reachable():
        raise ModelFileMissing(missing_message(known, folder, f"{hub_host()} cannot be reached: offline?"))
    try:
        import huggingface_hub as hub
    except ImportError as e:  # pragma: no cover - it is a declared requirement
        raise ModelFileMissing(missing_message(known, folder, "huggingface_hub is not installed")) from e
    os.makedirs(folder, exist_ok=True)
    try:
        if known.kind == "text_encoders":
            hub.snapshot_download(repo_id=known.repo_id, local_dir=path, allow_patterns=T5_PATTERNS)
        elif known.whole_repo:
            hub.snapshot_download(repo_id=known.repo_id, local_dir=path,
                                  allow_patterns=list(known.patterns) or HF_FOLDER_PATTERNS)
        elif known.folder:
            hub.snapshot_download(repo_id=known.repo_id, local_dir=folder, allow_patterns=[f"{known.filename}/*"])
        else:
            got = hub.hf_hub_download(repo_id=known.repo_id, filename=known.repo_path or known.filename,
                                      repo_type=known.repo_type, local_dir=folder)
            if os.path.abspath(got) != os.path.abspath(path):  # stored under a sub-path in the repository
                os.replace(got, path)
    except Exception as e:  # offline, no such file, auth: all end the same way for the user
        raise ModelFileMissing(missing_message(known, folder, f"{type(e).__name__}: {e}".splitlines()[0][:300])) from e
    return path


def outside_models_folder(name: str) -> str | None:
    """The error for an absolute path or one that climbs out of the models folder (ComfyUI skips its list check
    for inputs a node validates itself), else None."""
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return f"{name!r}: give a file name inside the models folder, not a path out of it"
    return None


def resolve_model(kind: str, name: str, models_dir: str, allow_download: bool = True) -> str:
    """A loader name (an embedded choice, or a file in models_dir/<kind>/) -> a local path, downloading an
    official file that is missing. The scripts' way to the files the loader nodes name."""
    from ..shapes.embedded import all_embedded, embedded_file

    outside = outside_models_folder(name)
    if outside:
        raise ModelFileMissing(outside)
    if name.startswith("(embedded)"):
        path = embedded_file(kind, name)
        if path is None:
            known = [n for k, n in all_embedded() if k == kind]
            raise ModelFileMissing(f"{name} is not an embedded {kind} model (or its file is missing from embedded/); "
                                   f"the embedded ones: {', '.join(known)}")
        return path
    return ensure_local(name, os.path.join(models_dir, kind), allow_download)


# ---- what a workflow needs ------------------------------------------------------------------------------

LOADER_WIDGETS = {**{f"ARE_{n}Loader": ("autoregressive", "model_name")
                     for n in ("LlamaGen", "EditAR", "Infinity", "VAREdit", "Lumina", "Janus")},
                  "ARE_VQLoader": ("vq", "tokenizer_name"), "ARE_BSQVAELoader": ("vq", "tokenizer_name"),
                  "ARE_ChameleonVQGANLoader": ("vq", "vqgan_name"),
                  "ARE_TextEncoderLoader": ("text_encoders", "encoder_name")}


def workflow_files(workflow: dict) -> list[tuple[str, str]]:
    """(kind, name) of every model file a workflow's loaders name, UI or API format (subgraphs included), in order,
    once each. Anything that is not a workflow is a ValueError saying so."""
    if not isinstance(workflow, dict):
        raise ValueError(f"not a ComfyUI workflow: the file holds a JSON {type(workflow).__name__}, not an object")
    found: list[tuple[str, str]] = []
    if "nodes" in workflow:  # UI format: the file name is each loader's first widget value
        defs = workflow.get("definitions")
        subgraphs = defs.get("subgraphs") if isinstance(defs, dict) else None
        graphs = [workflow] + [g for g in subgraphs if isinstance(g, dict)] if isinstance(subgraphs, list) \
            else [workflow]
        nodes = []
        for g in graphs:
            if not isinstance(g.get("nodes"), list):
                raise ValueError("not a ComfyUI workflow: its \"nodes\" is not a list")
            nodes += [n for n in g["nodes"] if isinstance(n, dict)]
        entries = [(n.get("type"), w[0] if isinstance(w := n.get("widgets_values"), list) and w else None)
                   for n in nodes]
    else:  # API format: {id: {"class_type", "inputs"}}
        entries = [(n.get("class_type"), n["inputs"].get(LOADER_WIDGETS.get(n.get("class_type"), ("", ""))[1]))
                   for n in workflow.values() if isinstance(n, dict) and isinstance(n.get("inputs"), dict)]
    for node_type, name in entries:
        if isinstance(node_type, str) and node_type in LOADER_WIDGETS and isinstance(name, str) \
                and (LOADER_WIDGETS[node_type][0], name) not in found:
            found.append((LOADER_WIDGETS[node_type][0], name))
    return found


@dataclass(frozen=True)
class FileStatus:
    kind: str
    name: str
    path: str  # where it is or goes
    present: bool
    embedded: bool
    known: KnownFile | None

    def line(self) -> str:
        state = "embedded" if self.embedded else ("present" if self.present else "MISSING")
        size = f"~{self.known.approx_gb:g} GB" if self.known and self.known.approx_gb else ""
        source = f"  from huggingface.co/{self.known.repo_id}" if self.known and not self.present else ""
        return f"{state:9} {self.name:40} {size:>9}  {self.path}{source}"


def file_status(kind: str, name: str, models_dir: str) -> FileStatus:
    from ..shapes.embedded import embedded_file

    if name.startswith("(embedded)"):
        path = embedded_file(kind, name)
        return FileStatus(kind, name, path or "(missing from embedded/)", path is not None, True, None)
    path = os.path.join(models_dir, kind, name)
    known = KNOWN_FILES.get(name)
    present = is_complete(path, known.kind) if known else os.path.exists(path)
    return FileStatus(kind, name, path, present, False, known)


# Families of the loaders: each loader node lists the files of its own.
MODEL_FAMILIES = ("llamagen", "editar", "infinity", "varedit")
TOKENIZER_FAMILIES = ("vq", "bsq_vae")
_ARCH_FAMILY = {"llamagen_gpt": "llamagen", "editar_gpt": "editar", "llamagen_vq": "vq", "infinity_vae": "bsq_vae"}


def name_family(kind: str, name: str) -> str | None:
    """The family an official (or conventionally named) file belongs to, from its name alone; None: unknown."""
    from ..infinity.model import flavour_from_name

    base = os.path.basename(name.rstrip("/"))
    if kind == "vq":
        if base.startswith("infinity_vae"):
            return "bsq_vae"
        return "vq" if base in KNOWN_FILES or base.startswith("vq_") else None
    if kind != "autoregressive":
        return None
    if base.startswith("editar"):
        return "editar"
    if base.startswith("infinity") or flavour_from_name(base) == "varedit":
        return flavour_from_name(base)
    return "llamagen" if base in KNOWN_FILES or base.startswith(("t2i_", "c2i_")) else None


def file_family(kind: str, name: str, path: str | None = None) -> str | None:
    """A local file's family: what our files store in their header, else the name's; None: cannot tell without
    loading it (an official pickle under another name), so every loader of its kind lists it."""
    if path and path.endswith(".safetensors") and os.path.isfile(path):
        try:
            from safetensors import safe_open

            with safe_open(path, "pt") as f:
                meta, keys = dict(f.metadata() or {}), list(f.keys())
        except Exception:  # noqa: BLE001 - an unreadable file is listed; loading it names the problem
            return name_family(kind, name)
        arch = meta.get("ar_edit.arch")
        if arch == "infinity":
            return "varedit" if meta.get("ar_edit.flavour") == "varedit" else "infinity"
        if arch in _ARCH_FAMILY:
            return _ARCH_FAMILY[arch]
        if arch is None and keys:
            if any(k.startswith("cls_embedding.") for k in keys):
                return "editar" if "img_uncond_embedding" in keys else "llamagen"
            if "quantize.embedding.weight" in keys:
                return "vq"
    return name_family(kind, name)
