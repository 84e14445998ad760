"""Runs groups of compatible jobs as one batched edit each, with the models loaded once per worker.

Both engines use this: the local engine in its own process, the Ray engine inside each actor. A worker returns
plain data (JSON-able rows and PNG bytes), so results cross process and machine boundaries unchanged.
"""
from __future__ import annotations

import io
import os
import time
import traceback
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..files import loaders
from ..files.model_files import resolve_model
from ..images import comfy_to_model, model_to_comfy
from ..infinity.aredit import AREditSettings
from ..infinity.generate import InfinitySampling
from ..infinity.scales import parse_resolution, scale_schedule
from ..infinity.vae import BSQVAE
from ..llamagen.atm import ATMSettings
from ..llamagen.editar import task_prompt
from ..llamagen.vq import LlamaGenVQ
from ..pipelines import editar, infinity, llamagen, varedit
from ..sampling import SamplingSettings, seed_tensor
from ..defaults import defaults
from .jobs import MODEL_ROLES, Job
from .metrics import score

FAMILY = {"atm": "llamagen", "naive": "llamagen", "aredit": "infinity", "editar": "editar", "varedit": "varedit"}


class JobFailed(ValueError):
    """A problem with one job's inputs (its other jobs in the batch still run)."""


# ---------------------------------------------------------------------------------------------- pixels

# A job's pictures are decoded only within this many pixels (a 4096 x 4096 photo): a small file can hold a huge
# picture (a 258 KB PNG of 9000 x 9000).
MAX_JOB_PIXELS = 4096 * 4096
# ... and its file within this many bytes (an uncompressed 4096 x 4096 RGBA picture with room to spare).
MAX_JOB_FILE_BYTES = 96 * 1024 * 1024


def _open(source, what: str, path: str) -> Image.Image:
    """The picture opened (its size read, nothing decoded yet), refused past the pixel budget."""
    try:
        im = Image.open(source)
    except (OSError, ValueError) as e:
        raise JobFailed(f"cannot read the {what} {path}: {e}") from None
    w, h = im.size
    if w * h > MAX_JOB_PIXELS:
        im.close()
        raise JobFailed(f"the {what} {path} is {w} x {h} pixels; a job reads at most {MAX_JOB_PIXELS:,} "
                        f"(4096 x 4096): scale it down first")
    return im


def _decode(source, what: str, path: str) -> torch.Tensor:
    try:
        with _open(source, what, path) as im:
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise JobFailed(f"cannot read the {what} {path}: {e}") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise JobFailed(f"the {what} {path} is empty")
    return torch.from_numpy(arr.copy())[None]


class Picture:
    """A job's picture file, held compressed (its bytes, as on disk) and decoded only when a pipeline takes it: a
    batch of jobs then costs their files' sizes, not their pixels, and one decoded picture is alive at a time.
    Reading checks the whole file once (size, pixel budget, a full decode), so a broken file is that job's error
    before its batch runs."""

    def __init__(self, path: str, what: str = "image"):
        self.path, self.what = path, what
        try:
            size = os.path.getsize(path)
            if size > MAX_JOB_FILE_BYTES:
                raise JobFailed(f"the {what} {path} is a {size / 2**20:.0f} MB file; a job reads at most "
                                f"{MAX_JOB_FILE_BYTES // 2**20} MB: scale it down or compress it first")
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            raise JobFailed(f"cannot read the {what} {path}: {e.strerror or e}") from None
        self.pixels()  # the check; the pixels themselves are dropped again

    def pixels(self) -> torch.Tensor:
        """uint8 [1, H, W, C] (C = 4 keeps the alpha, composited over white later)."""
        return _decode(io.BytesIO(self.data), self.what, self.path)

    def image(self) -> torch.Tensor:
        """IMAGE [1, H, W, C] float 0..1."""
        return self.pixels().float() / 255


def read_image(path: str, what: str = "image") -> torch.Tensor:
    """An image file -> uint8 [1, H, W, C]."""
    return _decode(path, what, path)


class _Pictures:
    """The jobs' pictures as IMAGEs, each decoded only when a pipeline takes it (one picture at a time)."""

    def __init__(self, pictures: list[Picture]):
        self.pictures = pictures

    def __len__(self) -> int:
        return len(self.pictures)

    def __iter__(self):
        return (p.image() for p in self.pictures)


def read_mask(path: str, name: str) -> torch.Tensor:
    """A mask file (white = 255) -> uint8 [1, H, W] (a quarter of a float MASK, held until it is used)."""
    try:
        with _open(path, f"{name} mask", path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise JobFailed(f"cannot read the {name} mask {path}: {e}") from None
    return torch.from_numpy(arr.copy())[None]


class _Masks(Sequence):
    """The jobs' uint8 masks as MASKs float 0..1, each converted only when a pipeline reads it."""

    def __init__(self, masks: list[torch.Tensor]):
        self.masks = masks

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i):
        return self.masks[i].float() / 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in 0..1 -> uint8 [B, H, W, 3] (what the PNG holds)."""
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class Prepared:
    """A job with its files read: source Picture (None: generated), region uint8 [1, H, W] or None."""

    def __init__(self, job: Job):
        self.job = job
        self.source = None if job.generated_source else Picture(job.source_image)
        self.region = None
        if job.region:
            self.region = read_mask(job.region, "region")
            if not (self.region > 0).any():
                raise JobFailed("the region mask is empty, so nothing may change: paint the region to edit "
                                "(white) or leave region out")


# ---------------------------------------------------------------------------------------------- worker

def check_device(name: str) -> torch.device:
    """A device this torch can use, or one clear error (torch itself would assert deep inside the first model)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"--device {name!r} is not a device name (cpu, cuda, cuda:1, mps): {e}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: this torch has no CUDA (a CPU build, or no GPU visible): use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 .. "
                             f"cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here: use cpu")
    return device


class Worker:
    """Holds loaded models (by loader name) and runs groups of jobs. One per process / Ray actor."""

    def __init__(self, models_dir: str, device: str | None = None, threads: int | None = None,
                 allow_download: bool = True):
        self.models_dir = models_dir
        self.device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.allow_download = allow_download
        if threads:
            torch.set_num_threads(threads)
        self._models: dict[tuple[str, str], object] = {}

    def model(self, role: str, name: str):
        kind = MODEL_ROLES[role]
        if (kind, name) not in self._models:
            path = resolve_model(kind, name, self.models_dir, self.allow_download)
            if kind == "autoregressive":
                module = loaders.load_gpt(path, precision="auto", device=self.device)
            elif kind == "vq":
                module = loaders.load_vq(path, precision="fp32", device=self.device)
            else:
                module = loaders.load_text_encoder(path, self.device, loaders.resolve_dtype("auto", self.device))
            self._models[(kind, name)] = module
        return self._models[(kind, name)]

    def _models_for(self, job: Job) -> dict:
        roles = [r for r in job.models if job.generated_source or not r.startswith("source_")]
        wanted = {(MODEL_ROLES[r], job.models[r]) for r in roles}
        for key in [k for k in self._models if k not in wanted]:  # one model set in memory at a time (8B files)
            del self._models[key]
        models, problems = {}, []
        for role in roles:  # every missing or broken file named at once, not one per run
            try:
                models[role] = self.model(role, job.models[role])
            except Exception as e:  # noqa: BLE001
                problems.append(f"{role} {job.models[role]!r}: {_message(e)}")
        if problems:
            raise ValueError("\n".join(problems))
        family = loaders.model_family(models["model"])
        if family != FAMILY[job.method]:
            raise ValueError(f"{job.method} needs {FAMILY[job.method]} weights, but {job.models['model']} is {family}")
        want_vae = job.method in ("aredit", "varedit")
        if isinstance(models["tokenizer"], BSQVAE) != want_vae or not isinstance(models["tokenizer"], (BSQVAE, LlamaGenVQ)):
            raise ValueError(f"{job.models['tokenizer']} is not the {'BSQ VAE' if want_vae else 'VQ tokenizer'} "
                             f"{job.method} needs")
        reads = getattr(models["text_encoder"], "reads", None)
        if job.method in ("editar", "varedit") and reads == "captions":
            raise ValueError(f"{job.models['text_encoder']} reads captions; the {job.method} editor reads instructions "
                             f"(the embedded one: (embedded) shapes-instructions)")
        if job.method not in ("editar", "varedit") and reads == "instructions":
            raise ValueError(f"{job.models['text_encoder']} reads instructions; {job.method} needs a caption encoder "
                             f"(the embedded one: (embedded) shapes-words)")
        return models

    # -- one group ------------------------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> list[dict]:
        """Jobs of one group_key -> one result per job: {"id", "digest", "ok", "row", "png", "source_png"}. Never
        raises: whatever goes wrong is recorded on the jobs it concerns, so the run goes on."""
        try:
            return self._run_group(jobs)
        except Exception as e:  # noqa: BLE001 - a bug of ours must not end a thousand-job run either
            return [_error(j, f"internal error: {_message(e)}") for j in jobs]

    def _run_group(self, jobs: list[Job]) -> list[dict]:
        t0 = time.perf_counter()
        try:
            models = self._models_for(jobs[0])
        except Exception as e:  # noqa: BLE001 - every job of the group is told why
            return [_error(j, f"models: {_message(e)}") for j in jobs]
        load_s = time.perf_counter() - t0
        results, ready = [], []
        for job in jobs:  # reading files and checking words: per job, so one bad job does not stop the others
            try:
                _check_prompts(job, models)
                ready.append(Prepared(job))
            except Exception as e:  # noqa: BLE001
                results.append(_error(job, _message(e)))
        if ready:
            results += self._run_batch(ready, models)
        for r in results:
            r["row"]["load_seconds"] = round(load_s, 3)
        return results

    def _run_batch(self, ready: list[Prepared], models: dict) -> list[dict]:
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                outputs, sources = RUNNERS[ready[0].job.method](self, ready, models)
        except Exception as e:  # noqa: BLE001
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # after an out-of-memory batch, before the jobs run one by one
            if len(ready) == 1:
                return [_error(ready[0].job, _message(e))]
            # one job may have caused it: each alone, so only the culprit fails
            return [r for p in ready for r in self._run_batch([p], models)]
        seconds = time.perf_counter() - t0
        images = [to_uint8(o[None])[0] for o in outputs]
        src_images = None if sources is None else to_uint8(sources)
        results = []
        for i, p in enumerate(ready):
            job = p.job
            row = {"seconds": round(seconds / len(ready), 4), "batch_seconds": round(seconds, 3),
                   "batch_size": len(ready), "device": str(self.device)}
            try:
                row["metrics"] = _metrics(p, images[i], None if src_images is None else src_images[i])
            except Exception as e:  # noqa: BLE001 - the edit stands; only its scores could not be read
                row["metrics_error"] = _message(e)
            results.append({"id": job.id, "digest": job.digest, "ok": True, "row": row, "png": png_bytes(images[i]),
                            "source_png": None if src_images is None else png_bytes(src_images[i])})
        return results


def _message(e: Exception) -> str:
    if isinstance(e, (ValueError, FileNotFoundError, KeyError, RuntimeError)):
        return str(e) or type(e).__name__
    return f"{type(e).__name__}: {e} ({traceback.format_exc(limit=2).splitlines()[-1]})"


def _error(job: Job, message: str) -> dict:
    return {"id": job.id, "digest": job.digest, "ok": False, "row": {"error": message}, "png": None, "source_png": None}


def _check_prompts(job: Job, models: dict) -> None:
    """Unknown words or a prompt the encoder cannot read: this job's error, found before the batch runs."""
    check = getattr(models["text_encoder"], "check", None)
    prompt = task_prompt(job.params["task"], job.prompt) if job.method == "editar" else job.prompt
    if check:
        check([prompt])
    if job.source_prompt is not None:
        encoder = models["source_text_encoder"] if job.generated_source and "source_text_encoder" in models \
            else models["text_encoder"]
        if getattr(encoder, "check", None):
            encoder.check([job.source_prompt])


def _metrics(p: Prepared, output: np.ndarray, generated: np.ndarray | None) -> dict:
    job = p.job
    if not (job.expected or job.mask or job.region):
        return {}
    source = generated if generated is not None else to_uint8(
        comfy_to_model(p.source.image(), None, "none", 1).add(1).div(2))[0]
    expected = None if job.expected is None else to_uint8(
        comfy_to_model(read_image(job.expected, "expected picture").float() / 255, None, "none", 1).add(1).div(2))[0]
    changed = None
    if job.mask:
        changed = read_mask(job.mask, "mask")[0].numpy() >= 128
    elif expected is None and p.region is not None:
        changed = p.region[0].numpy() >= 128  # outside the region nothing should change
    return score(source, output, expected, changed, job.kind)


def _seeds(ready: list[Prepared]) -> torch.Tensor:
    return seed_tensor([p.job.seed for p in ready])


def _source_seeds(ready: list[Prepared]) -> torch.Tensor:
    return seed_tensor([p.job.source_seed for p in ready])


def _sources(ready: list[Prepared]) -> list[torch.Tensor]:
    return _Pictures([p.source for p in ready])


def _regions(ready: list[Prepared]) -> list[torch.Tensor] | None:
    """One region MASK per job (their batch either has one for every job or for none: group_key)."""
    return None if ready[0].region is None else _Masks([p.region for p in ready])


def _resize(ready: list[Prepared]) -> str:
    return ready[0].job.params["resize"]  # a batch shares it (not per_row)


def _source_sampling_llamagen(gen, job: Job) -> SamplingSettings:
    """A generated source's sampling: the job's own for atm / naive, the source model's own for EditAR."""
    p = job.params
    if job.method in ("atm", "naive"):
        return SamplingSettings(p["cfg"], p["temperature"], p["top_k"], p["top_p"]).validate()
    return defaults(gen, "sampling")


def _infinity_sampling(gen, job: Job) -> InfinitySampling:
    """The job's own for AREdit; for VAREdit's generated source, the source model's own."""
    p = job.params
    if job.method == "aredit":
        return InfinitySampling(p["cfg"], p["tau"], p["top_p"]).validate()
    return defaults(gen, "sampling")


# ---------------------------------------------------------------------------------------------- methods
# Each: (worker, prepared jobs of one group, models) -> (edited images, one [3, H, W] in 0..1 per job (sizes may differ),
# the generated sources [B, 3, H, W] or None). The work itself is the pipelines'; this maps jobs onto them.

def _llamagen_source(gen, text, vq: LlamaGenVQ, ready: list[Prepared], settings: SamplingSettings):
    """Generated sources: prompts + seeds -> (tokens, decoded images)."""
    cond = llamagen.text_condition(text, [r.job.source_prompt for r in ready], gen.device)
    tokens = llamagen.generate(gen, cond, settings, _source_seeds(ready))
    return tokens, llamagen.decode(vq, tokens)


def _run_llamagen(worker: Worker, ready: list[Prepared], models: dict):
    gpt, vq, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0, g = ready[0].job, gpt.cfg.grid_size
    p = job0.params
    llamagen.check_pair(vq, gpt)
    sources = None
    if job0.generated_source:
        tokens, sources = _llamagen_source(gpt, text, vq, ready, _source_sampling_llamagen(gpt, job0))
    else:
        tokens = llamagen.encode(vq, _sources(ready), gpt.cfg.image_size, _resize(ready))
    if tokens.grid != (g, g):
        raise ValueError(f"the source codes to {tokens.grid[0]}x{tokens.grid[1]} tokens; the model makes {g}x{g}")
    cache = llamagen.source_cache(tokens, vq)
    cond = llamagen.text_condition(text, [r.job.prompt for r in ready], gpt.device)
    sampling = SamplingSettings(p["cfg"], p["temperature"], p["top_k"], p["top_p"]).validate()
    atm = None
    if job0.method == "atm":
        atm = [ATMSettings(*(r.job.params[k] for k in ("K", "alpha", "tau", "fallback", "candidates"))).validate()
               for r in ready]
    result = llamagen.edit(gpt, cache, cond, sampling, atm, _seeds(ready), job0.method, _regions(ready),
                           cfg_scale=[r.job.params["cfg"] for r in ready])
    return list(llamagen.decode(vq, result.tokens)), sources


def _run_aredit(worker: Worker, ready: list[Prepared], models: dict):
    net, vae, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0 = ready[0].job
    p = job0.params
    sampling = _infinity_sampling(net, job0)
    if job0.generated_source:
        cond = infinity.text_condition(text, [r.job.source_prompt for r in ready], net.device)
        schedule = infinity.schedule_for(net, p["resolution"], p["aspect_ratio"])
        made = infinity.generate(net, cond, schedule, sampling, _source_seeds(ready))
        edited = _aredit_pass(net, vae, text, ready, infinity.aredit_source(net, made))
        return edited, infinity.decode(vae, made)
    tier = parse_resolution(p["resolution"], net.resolutions)
    out = [None] * len(ready)
    # different aspect ratios code to different grids: one pass per grid
    for rows, bits in infinity.encode(vae, _sources(ready), tier, _resize(ready)):
        group = [ready[i] for i in rows]
        cond = infinity.text_condition(text, [r.job.source_prompt for r in group], net.device)
        images = _aredit_pass(net, vae, text, group, infinity.aredit_source(net, bits, cond, sampling))
        for k, i in enumerate(rows):
            out[i] = images[k]
    return out, None


def _aredit_pass(net, vae, text, ready: list[Prepared], source) -> list[torch.Tensor]:
    settings = [AREditSettings(r.job.params["gamma"], r.job.params["threshold"]) for r in ready]
    target = infinity.text_condition(text, [r.job.prompt for r in ready], net.device)
    result = infinity.aredit(net, source, target, settings, _seeds(ready), _regions(ready))
    return list(infinity.decode(vae, result.tokens))


def _run_editar(worker: Worker, ready: list[Prepared], models: dict):
    editor, vq, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0, g = ready[0].job, editor.cfg.grid_size
    p = job0.params
    llamagen.check_pair(vq, editor)
    sources = None
    if job0.generated_source:
        gen, gen_text = models["source_model"], models["source_text_encoder"]
        if loaders.model_family(gen) != "llamagen" or gen.cfg.grid_size != g or gen.cfg.vocab_size != editor.cfg.vocab_size:
            raise ValueError(f"source_model {job0.models['source_model']} must be a LlamaGen text-to-image model with "
                             f"the editor's tokenizer and size")
        inputs, sources = _llamagen_source(gen, gen_text, vq, ready,
                                           _source_sampling_llamagen(gen, job0))
    else:
        inputs = editar.prepare(editor, vq, _sources(ready), _resize(ready))
    prompts = [task_prompt(r.job.params["task"], r.job.prompt) for r in ready]
    sampling = SamplingSettings(1.0, p["temperature"], p["top_k"], p["top_p"]).validate()
    tokens = editar.edit(editor, vq, text, inputs, prompts, _seeds(ready), [r.job.params["text_cfg"] for r in ready],
                         [r.job.params["image_cfg"] for r in ready], sampling, _regions(ready))
    return list(llamagen.decode(vq, tokens)), sources


def _run_varedit(worker: Worker, ready: list[Prepared], models: dict):
    net, vae, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0 = ready[0].job
    size = varedit.edit_size(net, job0.params["resolution"], job0.models["model"])
    sources = None
    if job0.generated_source:
        gen, gen_text = models["source_model"], models["source_text_encoder"]
        if loaders.model_family(gen) != "infinity" or size not in gen.resolutions:
            raise ValueError(f"source_model {job0.models['source_model']} must be an Infinity text-to-image model that "
                             f"makes {size} px images")
        cond = infinity.text_condition(gen_text, [r.job.source_prompt for r in ready], gen.device)
        made = infinity.generate(gen, cond, scale_schedule(size), _infinity_sampling(gen, job0),
                                 _source_seeds(ready))
        sources = infinity.decode(vae, made)
        pictures = model_to_comfy(sources)
    else:
        pictures = _sources(ready)
    settings = [InfinitySampling(r.job.params["cfg"], r.job.params["tau"], r.job.params["top_p"]).validate() for r in ready]
    out = varedit.edit(net, vae, text, pictures, [r.job.prompt for r in ready], size, settings, _seeds(ready),
                       _regions(ready))
    return out.images, sources


RUNNERS = {"atm": _run_llamagen, "naive": _run_llamagen, "aredit": _run_aredit, "editar": _run_editar,
           "varedit": _run_varedit}
