"""The only place that touches ComfyUI: model folders, devices, memory management, progress and cancel.

Inside ComfyUI these come from `folder_paths` and `comfy.*`; outside it (tests, scripts) plain torch and a
models folder (env AR_EDIT_MODELS_DIR, default ./models) stand in, so the nodes run anywhere.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from ..core.files.model_files import outside_models_folder  # noqa: F401  (the loaders' check, re-exported)

try:  # ComfyUI's own top-level modules; absent outside ComfyUI.
    import folder_paths  # type: ignore
    import comfy.model_management as model_management  # type: ignore
    import comfy.utils as comfy_utils  # type: ignore

    IN_COMFY = True
except ImportError:  # pragma: no cover - exercised by the tests' environment
    folder_paths = model_management = comfy_utils = None
    IN_COMFY = False

# Model kinds -> folder names under ComfyUI/models/.
MODEL_FOLDERS = {"autoregressive": "autoregressive", "vq": "vq", "text_encoders": "text_encoders"}
CHECKPOINT_EXTENSIONS = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}


def models_root() -> str:
    if IN_COMFY:
        return folder_paths.models_dir
    return os.environ.get("AR_EDIT_MODELS_DIR", os.path.abspath("models"))


def register_model_folders() -> None:
    """Add models/autoregressive and models/vq to ComfyUI's registry (text_encoders already exists).
    Paths from extra_model_paths.yaml are kept: we only add the default folder when the name is new."""
    if not IN_COMFY:
        return
    for name in MODEL_FOLDERS.values():
        if name not in folder_paths.folder_names_and_paths:
            folder_paths.folder_names_and_paths[name] = ([os.path.join(folder_paths.models_dir, name)],
                                                         set(CHECKPOINT_EXTENSIONS))


def model_dirs(kind: str) -> list[str]:
    name = MODEL_FOLDERS[kind]
    if IN_COMFY:
        try:
            return list(folder_paths.get_folder_paths(name))
        except KeyError:
            pass
    return [os.path.join(models_root(), name)]


def list_files(kind: str) -> list[str]:
    """Checkpoint files (kinds autoregressive/vq) or model folders (text_encoders) found locally."""
    found: set[str] = set()
    for d in model_dirs(kind):
        if not os.path.isdir(d):
            continue
        if kind == "text_encoders":
            found.update(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n, "config.json")))
        else:
            seen = {os.path.realpath(d)}
            for root, dirs, files in os.walk(d, followlinks=True):
                # linked folders are followed (models kept elsewhere), each real folder once: a link cycle ends here
                real = [(n, os.path.realpath(os.path.join(root, n))) for n in dirs]
                dirs[:] = [n for n, r in real if r not in seen]
                seen.update(r for _, r in real)
                if root != d and any(f.endswith(".index.json") for f in files):
                    # a sharded checkpoint (Infinity 8B): the folder is one model, its shards are not
                    found.add(os.path.relpath(root, d).replace(os.sep, "/"))
                    dirs.clear()
                    continue
                for f in files:
                    if os.path.splitext(f)[1].lower() in CHECKPOINT_EXTENSIONS:
                        found.add(os.path.relpath(os.path.join(root, f), d).replace(os.sep, "/"))
    return sorted(found)


def local_path(kind: str, name: str) -> str | None:
    """The first models folder's `name` that is there (a text encoder: a folder with its config.json)."""
    for d in model_dirs(kind):
        path = os.path.join(d, name)
        if os.path.exists(path) and (kind != "text_encoders" or os.path.isfile(os.path.join(path, "config.json"))):
            return path
    return None


def file_problem(kind: str, name: str) -> str | None:
    """Why a loader could not get `name` now (None: it can: present, embedded, or downloadable). Checked before
    any node runs, so a graph's missing files are all named at once, and offline without a download attempt."""
    from ..core.files.model_files import KNOWN_FILES, hub_host, hub_reachable, is_complete, missing_message
    from ..core.shapes.embedded import all_embedded, embedded_choices, embedded_file

    outside = outside_models_folder(name)
    if outside:
        return outside
    if name.startswith("(embedded)"):
        if embedded_file(kind, name):
            return None
        return (f"{name}: its file is missing from the pack's embedded/ folder (reinstall the pack)"
                if (kind, name) in all_embedded() else f"{name} is not one of the embedded models ({', '.join(embedded_choices(kind))})")
    path, known = local_path(kind, name), KNOWN_FILES.get(name)
    if path and (known is None or is_complete(path, known.kind)):
        return None
    if known is None:
        return f"{name} is not in {' or '.join(model_dirs(kind))}"
    if hub_reachable():
        return None  # downloaded when the node runs
    return missing_message(known, model_dirs(kind)[0], f"{hub_host()} cannot be reached: offline?")


def resolve_file(kind: str, name: str) -> str:
    """A local path for `name`; official files missing locally are downloaded into the first folder."""
    from ..core.files.model_files import ensure_local

    return local_path(kind, name) or ensure_local(name, model_dirs(kind)[0])


def torch_device() -> torch.device:
    if IN_COMFY:
        return model_management.get_torch_device()
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def offload_device() -> torch.device:
    if IN_COMFY:
        return model_management.unet_offload_device()
    return torch.device("cpu")


def output_device() -> torch.device:
    """Where IMAGE/MASK outputs live (ComfyUI expects them on its intermediate device, the CPU)."""
    if IN_COMFY:
        return model_management.intermediate_device()
    return torch.device("cpu")


class _Holder(torch.nn.Module):
    """ComfyUI's ModelPatcher writes bookkeeping attributes on the module it manages; a holder keeps
    them off our models."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


def cast_on_use(module: torch.nn.Module) -> int:
    """Turn the module's Linear and Embedding layers into ComfyUI's own cast-on-use ops (comfy.ops; the same
    tensors, and the same forward until ComfyUI marks a layer): when the model does not fit the free GPU memory,
    ComfyUI then keeps the layers it cannot place in CPU memory and streams their weights in at each use, as it does
    for its own models, instead of the run failing on a device mismatch. -> the number of layers made so."""
    import comfy.ops  # type: ignore

    ops = comfy.ops.disable_weight_init
    swap = {torch.nn.Linear: ops.Linear, torch.nn.Embedding: ops.Embedding}
    n = 0
    for m in module.modules():
        if type(m) in swap:
            if type(m) is torch.nn.Embedding:
                m.bias = None  # ComfyUI's Embedding casts a bias too: its constructor sets none
            m.__class__ = swap[type(m)]
            n += 1
    return n


def _settle(module: torch.nn.Module, device: torch.device) -> None:
    """After a partial load: everything ComfyUI does not stream (norms, buffers, layers it could place) on the GPU,
    so only the marked layers' weights travel. A few small tensors outside ComfyUI's count."""
    for m in module.modules():
        if not getattr(m, "comfy_cast_weights", False):  # ComfyUI marks the layers it left in CPU memory
            m._apply(lambda t: t.to(device), recurse=False)


class ManagedModel:
    """A model ComfyUI can load, offload and free like its own ("Unload models", /free). `offload`: its Linear and
    Embedding layers may stay in CPU memory when the GPU is too small for all of it (cast_on_use); only for models
    whose code reads those layers' weights through their forward alone."""

    def __init__(self, module: torch.nn.Module, name: str, load_device: torch.device | None = None,
                 offload: bool = False):
        self.module = module
        self.name = name
        self.load_device = load_device or torch_device()
        self.offload = offload and IN_COMFY
        self._patcher = None
        if IN_COMFY:
            import comfy.model_patcher  # type: ignore

            if self.offload:
                cast_on_use(module)
            # Named after the model, since ComfyUI logs "Requested to load <class name>".
            holder_cls = type(type(module).__name__, (_Holder,), {})
            self._patcher = comfy.model_patcher.ModelPatcher(holder_cls(module), load_device=self.load_device,
                                                             offload_device=offload_device())

    def load(self) -> torch.nn.Module:
        """Put the model on its compute device (letting ComfyUI free memory for it) and return it. A model that
        `load_models` already loaded is left as it is: a second call just for it could push the others out."""
        if self._patcher is not None:
            if not self.is_loaded():
                model_management.load_models_gpu([self._patcher])
            self.settle()
        else:
            self.module.to(self.load_device)
        return self.module

    def settle(self) -> None:
        if self.offload and self._patcher is not None and self._patcher.model_size() > self._patcher.loaded_size():
            _settle(self.module, self.load_device)

    def is_loaded(self) -> bool:
        return self._patcher is not None and any(getattr(m, "model", None) is self._patcher
                                                 for m in getattr(model_management, "current_loaded_models", []))

    def __repr__(self) -> str:
        return f"ManagedModel({self.name})"


def load_models(models, memory_required: int = 0) -> None:
    """Every model a node runs, in ONE `load_models_gpu` call that also frees `memory_required` bytes for the run's
    buffers (KV caches, activations): loading them one by one lets a later load push an earlier one off the GPU.
    Entries that are not managed models (None: an optional input left unconnected) are skipped."""
    managed = [m for m in models if isinstance(m, ManagedModel)]
    patchers = [m._patcher for m in managed if m._patcher is not None]
    if patchers:
        model_management.load_models_gpu(patchers, memory_required=int(memory_required))
    for m in managed:
        if m._patcher is None:
            m.module.to(m.load_device)
        else:
            m.settle()


class Cancelled(RuntimeError):
    pass


def progress(total: int, cancel: Callable[[], bool] | None = None,
             preview: Callable[[Callable, int], torch.Tensor | None] | None = None,
             send: Callable | None = None) -> Callable[[int, int], None]:
    """A progress callback for core loops: drives ComfyUI's progress bar (whose hook raises when the user
    presses Cancel) and checks the interrupt flag; outside ComfyUI an optional cancel() predicate.
    `preview(codes, done)` -> the picture so far (IMAGE [1, H, W, 3], or None; `codes()` gives what the loop has
    made so far, read only when drawing): shown in the bar now
    and then when ComfyUI's previews are on (--preview-method), or handed to `send(done, total, PIL image)`."""
    bar = comfy_utils.ProgressBar(total) if IN_COMFY else None
    shown = [-1]

    def update(done: int, _total: int) -> None:
        if IN_COMFY:
            model_management.throw_exception_if_processing_interrupted()
            if done != shown[0]:  # repeated calls with the same count are cancel checks only
                bar.update_absolute(done, total)
                shown[0] = done
        elif cancel is not None and cancel():
            raise Cancelled("cancelled by the user")

    send = send or (preview_sender(bar, total) if preview is not None else None)
    if preview is not None and send is not None:
        update.preview = Previewer(preview, send)
    return update


def preview_sender(bar, total: int):
    """send(done, total, PIL image) into ComfyUI's progress bar, or None when its sampler previews are off
    (--preview-method none, the default) or outside ComfyUI."""
    if not IN_COMFY:
        return None
    from comfy.cli_args import LatentPreviewMethod, args  # type: ignore

    if args.preview_method == LatentPreviewMethod.NoPreviews:
        return None
    return lambda done, _total, image: bar.update_absolute(done, total, ("JPEG", image, args.preview_size))


PREVIEW_SHARE = 0.05  # of the loop's time at most spent drawing previews
PREVIEW_AFTER_S = 0.5  # no preview in a loop's first half second: a run that short needs none
PREVIEW_MIN_SIDE = 256  # small pictures (the embedded 48 px) are enlarged, crisp, to be seen in the node


class Previewer:
    """Draws the picture so far now and then: only while the time spent drawing, the next picture included (as
    long as the last one took), stays under PREVIEW_SHARE of the time the loop has run, so a slow decoder previews
    rarely and a fast one often; not in the first PREVIEW_AFTER_S, never at the last step (the result follows).
    Nothing is read from the device unless a picture is drawn."""

    def __init__(self, render: Callable, send: Callable, clock: Callable[[], float] | None = None):
        import time

        self.render, self.send, self.clock = render, send, clock or time.perf_counter
        self.start, self.spent, self.last, self.sent = self.clock(), 0.0, 0.0, 0
        self.after = PREVIEW_AFTER_S

    def __call__(self, done: int, total: int, codes: Callable[[], torch.Tensor]) -> None:
        now = self.clock()
        elapsed = now - self.start
        if done >= total or elapsed < self.after or self.spent + self.last > PREVIEW_SHARE * elapsed:
            return
        image = self.render(codes, done)
        if image is not None:
            from PIL import Image

            from ..core.grid_image import enlarge

            pixels = (enlarge(image[:1].float().cpu(), PREVIEW_MIN_SIDE)[0].clamp(0, 1) * 255).round().byte()
            self.send(done, total, Image.fromarray(pixels.numpy()))
            self.sent += 1
        self.last = self.clock() - now
        self.spent += self.last


def grid_preview(decode: Callable[[torch.Tensor], torch.Tensor], grid: tuple[int, int], stride: int):
    """A `preview` for next-token loops over a (rows, cols) code grid: the first row's complete rows so far through
    `decode` (codes [1, r, cols] -> IMAGE [1, r * stride, cols * stride, 3]), the rows still to come gray."""
    rows, cols = grid

    def render(codes: Callable[[], torch.Tensor], done: int) -> torch.Tensor | None:
        r = min(done // cols, rows)
        if r == 0:
            return None
        with torch.inference_mode():
            top = decode(codes()[:1, :r * cols].reshape(1, r, cols)).float().cpu()
        picture = torch.full((1, rows * stride, cols * stride, 3), 0.25)
        picture[:, :top.shape[1]] = top[:, :rows * stride]
        return picture

    return render
