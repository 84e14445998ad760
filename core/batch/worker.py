"""Runs groups of compatible jobs as one batched edit each, with the models loaded once per worker.

Both engines use this: the local engine in its own process, the Ray engine inside each actor. A worker returns
plain data (JSON-able rows and PNG bytes), so results cross process and machine boundaries unchanged.
"""
from __future__ import annotations

import io
import time
import traceback

import numpy as np
import torch
from PIL import Image

from .. import condition_for_infinity, condition_from_text, decode_tokens_to_images, encode_images
from ..condition import Condition
from ..files import loaders
from ..files.model_files import resolve_model
from ..images import comfy_to_model, fit_image, mask_to_grid
from ..infinity.aredit import AREditSettings, aredit_edit, build_source
from ..infinity.codec import bits_to_images, image_to_bits
from ..infinity.generate import BitTokens, InfinitySampling, generate as infinity_generate
from ..infinity.scales import parse_aspect, parse_resolution, scale_schedule
from ..infinity.vae import BSQVAE
from ..infinity.varedit import canvas, crop_back, default_size, mask_canvas, supported_sizes, varedit_edit
from ..llamagen.atm import ATMSettings, atm_edit, build_source_cache, naive_edit
from ..llamagen.editar import editar_generate, task_prompt
from ..llamagen.generate import generate
from ..llamagen.vq import LlamaGenVQ
from ..records import TokenBatch
from ..sampling import SamplingSettings, seed_tensor
from ..shapes import bench as shapes
from .jobs import MODEL_ROLES, Job
from .metrics import score

FAMILY = {"atm": "llamagen", "naive": "llamagen", "aredit": "infinity", "editar": "editar", "varedit": "varedit"}


class JobFailed(ValueError):
    """A problem with one job's inputs (its other jobs in the batch still run)."""


# ---------------------------------------------------------------------------------------------- pixels

def read_image(path: str) -> torch.Tensor:
    """An image file -> IMAGE [1, H, W, C] float 0..1 (C = 4 keeps the alpha, composited over white later)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise JobFailed(f"cannot read the image {path}: {e}") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise JobFailed(f"the image {path} is empty")
    return torch.from_numpy(arr.copy())[None].float() / 255


def read_mask(path: str, name: str) -> torch.Tensor:
    """A mask file (white = 1) -> MASK [1, H, W] float 0..1."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.float32) / 255
    except (OSError, ValueError) as e:
        raise JobFailed(f"cannot read the {name} mask {path}: {e}") from None
    return torch.from_numpy(arr.copy())[None]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in 0..1 -> uint8 [B, H, W, 3] (what the PNG holds)."""
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class Prepared:
    """A job with its pixels read: source IMAGE [1, H, W, C] (None: generated), region MASK [1, H, W] or None."""

    def __init__(self, job: Job):
        self.job = job
        self.source = None if job.generated_source else read_image(job.source_image)
        self.region = None
        if job.region:
            self.region = read_mask(job.region, "region")
            if not (self.region > 0).any():
                raise JobFailed("the region mask is empty, so nothing may change: paint the region to edit "
                                "(white) or leave region out")


# ---------------------------------------------------------------------------------------------- worker

class Worker:
    """Holds loaded models (by loader name) and runs groups of jobs. One per process / Ray actor."""

    def __init__(self, models_dir: str, device: str | None = None, threads: int | None = None,
                 allow_download: bool = True):
        self.models_dir = models_dir
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
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
        comfy_to_model(p.source, None, "none", 1).add(1).div(2))[0]
    expected = None if job.expected is None else to_uint8(
        comfy_to_model(read_image(job.expected), None, "none", 1).add(1).div(2))[0]
    changed = None
    if job.mask:
        changed = read_mask(job.mask, "mask")[0].numpy() >= 0.5
    elif expected is None and p.region is not None:
        changed = p.region[0].numpy() >= 0.5  # outside the region nothing should change
    return score(source, output, expected, changed, job.kind)


def _seeds(ready: list[Prepared]) -> torch.Tensor:
    return seed_tensor([p.job.seed for p in ready])


def _source_seeds(ready: list[Prepared]) -> torch.Tensor:
    return seed_tensor([p.job.source_seed for p in ready])


def _fit(ready: list[Prepared], size, stride: int, resample: str = "auto") -> torch.Tensor:
    """The sources fitted to the model, each by its job's `resize` -> [B, 3, h, w] in [-1, 1] (per image: they
    come in any size)."""
    return torch.cat([comfy_to_model(p.source, size, p.job.params["resize"], stride, resample) for p in ready])


def _source_sampling_llamagen(name: str, job: Job) -> SamplingSettings:
    """A generated source's sampling: the job's own for atm / naive, the source model's defaults for EditAR."""
    p = job.params
    if job.method in ("atm", "naive"):
        return SamplingSettings(p["cfg"], p["temperature"], p["top_k"], p["top_p"]).validate()
    return shapes.EMBEDDED_SAMPLING if name.startswith("(embedded)") else SamplingSettings()


# ---------------------------------------------------------------------------------------------- methods
# Each: (worker, prepared jobs of one group, models) -> (edited images, one [3, H, W] in 0..1 per job (sizes may differ),
# the generated sources [B, 3, H, W] or None)

def _check_codes(vq: LlamaGenVQ, model) -> None:
    if vq.cfg.codebook_size != model.cfg.vocab_size:
        raise ValueError(f"the tokenizer has {vq.cfg.codebook_size} codes, the model {model.cfg.vocab_size}: they do "
                         f"not belong together")


def _token_region(ready: list[Prepared], model) -> torch.Tensor | None:
    """The jobs' region masks on a LlamaGen-layout token grid (bool [B, g, g], True = may change), or None."""
    if ready[0].region is None:
        return None
    g = model.cfg.grid_size
    return torch.cat([mask_to_grid(r.region, g, g, 1, image_size=model.cfg.image_size) for r in ready])


def _llamagen_source(gen, text, vq: LlamaGenVQ, ready: list[Prepared], settings: SamplingSettings):
    """Generated sources: prompts + seeds -> (token grids [B, g, g], their condition, decoded images)."""
    g = gen.cfg.grid_size
    cond = condition_from_text(text.encode([r.job.source_prompt for r in ready])).to(gen.device)
    ids = generate(gen, cond, settings, _source_seeds(ready)).view(len(ready), g, g)
    return ids, cond, decode_tokens_to_images(vq, ids)


def _run_llamagen(worker: Worker, ready: list[Prepared], models: dict):
    gpt, vq, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0, B, g = ready[0].job, len(ready), gpt.cfg.grid_size
    p = job0.params
    _check_codes(vq, gpt)
    sources = None
    if job0.generated_source:
        settings = _source_sampling_llamagen(job0.models["model"], job0)
        ids, src_cond, sources = _llamagen_source(gpt, text, vq, ready, settings)
        tokens = TokenBatch(ids, "generated", src_cond, _source_seeds(ready), settings, vq.downsample)
    else:
        ids = encode_images(vq, _fit(ready, gpt.cfg.image_size, vq.downsample))
        tokens = TokenBatch(ids, "encoded", stride=vq.downsample)
    if tuple(ids.shape[1:]) != (g, g):
        raise ValueError(f"the source codes to {ids.shape[1]}x{ids.shape[2]} tokens; the model makes {g}x{g}")
    cache = build_source_cache(tokens, vq.quantize.codebook().float())
    cond = condition_from_text(text.encode([r.job.prompt for r in ready])).to(gpt.device)
    sampling = SamplingSettings(p["cfg"], p["temperature"], p["top_k"], p["top_p"]).validate()
    region = _token_region(ready, gpt)
    region = None if region is None else region.to(gpt.device)
    cfg = [r.job.params["cfg"] for r in ready]
    if job0.method == "atm":
        atm = [ATMSettings(*(r.job.params[k] for k in ("K", "alpha", "tau", "fallback", "candidates"))).validate()
               for r in ready]
        result = atm_edit(gpt, cache, cond, sampling, atm, _seeds(ready), region, cfg)
    else:
        result = naive_edit(gpt, cache, cond, sampling, _seeds(ready), region, cfg)
    return list(decode_tokens_to_images(vq, result.tokens.view(B, g, g))), sources


def _cat_bits(parts: list[BitTokens]) -> BitTokens:
    first = parts[0]
    return BitTokens([torch.cat(b) for b in zip(*(t.bits for t in parts))], list(first.schedule), first.origin,
                     first.patchify)


def _infinity_condition(text, prompts: list[str], device) -> Condition:
    return condition_for_infinity(text.encode_infinity(prompts)).to(device)


def _infinity_sampling(name: str, job: Job) -> InfinitySampling:
    p = job.params
    if job.method == "aredit":
        return InfinitySampling(p["cfg"], p["tau"], p["top_p"]).validate()
    return shapes.EMBEDDED_INFINITY_SAMPLING if name.startswith("(embedded)") else InfinitySampling()


def _run_aredit(worker: Worker, ready: list[Prepared], models: dict):
    net, vae, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0 = ready[0].job
    p = job0.params
    tier = parse_resolution(p["resolution"], net.resolutions)
    sampling = _infinity_sampling(job0.models["model"], job0)
    if job0.generated_source:
        schedule = scale_schedule(tier, parse_aspect(p["aspect_ratio"]))
        cond = _infinity_condition(text, [r.job.source_prompt for r in ready], net.device)
        tokens = infinity_generate(net, cond, schedule, sampling, _source_seeds(ready))
        return _aredit_pass(net, vae, text, ready, build_source(net, tokens, None)), bits_to_images(vae, tokens)
    encoded = [image_to_bits(vae, r.source, tier, r.job.params["resize"]) for r in ready]
    schedules = [tuple(e.schedule) for e in encoded]
    if len(set(schedules)) > 1:  # different aspect ratios code to different grids: one pass per grid
        out = [None] * len(ready)
        for schedule in dict.fromkeys(schedules):
            idx = [i for i, s in enumerate(schedules) if s == schedule]
            images, _ = _run_aredit(worker, [ready[i] for i in idx], models)
            for k, i in enumerate(idx):
                out[i] = images[k]
        return out, None
    cond = _infinity_condition(text, [r.job.source_prompt for r in ready], net.device)
    source = build_source(net, _cat_bits(encoded), cond, sampling)
    return _aredit_pass(net, vae, text, ready, source), None


def _aredit_pass(net, vae, text, ready: list[Prepared], source) -> torch.Tensor:
    settings = [AREditSettings(r.job.params["gamma"], r.job.params["threshold"]) for r in ready]
    target = _infinity_condition(text, [r.job.prompt for r in ready], net.device)
    region = None
    if ready[0].region is not None:
        H, W = source.tokens.grid
        region = torch.cat([fit_image(r.region[:, None], (H * 16, W * 16), "center_crop", 1)[:, 0] for r in ready])
    result = aredit_edit(net, source, target, settings, _seeds(ready), region)
    return list(bits_to_images(vae, result.tokens))


def _run_editar(worker: Worker, ready: list[Prepared], models: dict):
    editor, vq, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0, B, g = ready[0].job, len(ready), editor.cfg.grid_size
    p = job0.params
    _check_codes(vq, editor)
    sources = None
    if job0.generated_source:
        gen, gen_text = models["source_model"], models["source_text_encoder"]
        if loaders.model_family(gen) != "llamagen" or gen.cfg.grid_size != g or gen.cfg.vocab_size != editor.cfg.vocab_size:
            raise ValueError(f"source_model {job0.models['source_model']} must be a LlamaGen text-to-image model with "
                             f"the editor's tokenizer and size")
        settings = _source_sampling_llamagen(job0.models["source_model"], job0)
        ids, _, sources = _llamagen_source(gen, gen_text, vq, ready, settings)
    else:
        ids = encode_images(vq, _fit(ready, editor.cfg.image_size, vq.downsample, "lanczos")).flatten(1)
    prompts = [task_prompt(r.job.params["task"], r.job.prompt) for r in ready]
    emb = text.encode_raw(prompts, editor.cfg.cls_token_num)
    sampling = SamplingSettings(1.0, p["temperature"], p["top_k"], p["top_p"]).validate()
    region = _token_region(ready, editor)
    keep = None if region is None else ~region
    tokens = editar_generate(editor, ids.reshape(B, -1), Condition(emb.features, None, prompts), sampling, _seeds(ready),
                             [r.job.params["text_cfg"] for r in ready], [r.job.params["image_cfg"] for r in ready], keep)
    return list(decode_tokens_to_images(vq, tokens.view(B, g, g))), sources


def _run_varedit(worker: Worker, ready: list[Prepared], models: dict):
    net, vae, text = models["model"], models["tokenizer"], models["text_encoder"]
    job0 = ready[0].job
    size = parse_resolution(job0.params["resolution"], supported_sizes(net), default_size(net, job0.models["model"]))
    schedule = scale_schedule(size)
    sources = None
    if job0.generated_source:
        gen, gen_text = models["source_model"], models["source_text_encoder"]
        if loaders.model_family(gen) != "infinity" or size not in gen.resolutions:
            raise ValueError(f"source_model {job0.models['source_model']} must be an Infinity text-to-image model that "
                             f"makes {size} px images")
        cond = _infinity_condition(gen_text, [r.job.source_prompt for r in ready], gen.device)
        made = infinity_generate(gen, cond, schedule, _infinity_sampling(job0.models["source_model"], job0),
                                 _source_seeds(ready))
        sources = bits_to_images(vae, made)
        x, sizes = sources * 2 - 1, [(size, size)] * len(ready)
    else:
        fitted = [canvas(r.source, size) for r in ready]
        x, sizes = torch.cat([f[0] for f in fitted]), [f[1] for f in fitted]
    cond = _infinity_condition(text, [r.job.prompt for r in ready], net.device)
    settings = [InfinitySampling(r.job.params["cfg"], r.job.params["tau"], r.job.params["top_p"]).validate() for r in ready]
    region = None
    if ready[0].region is not None:
        region = torch.cat([mask_canvas(r.region, size) for r in ready])
    tokens = varedit_edit(net, vae, cond, x.to(vae.device), schedule, settings, _seeds(ready), region)
    edited = bits_to_images(vae, tokens)
    if len(set(sizes)) == 1:
        return list(crop_back(edited, sizes[0])), sources
    return [crop_back(edited[i:i + 1], hw)[0] for i, hw in enumerate(sizes)], sources  # each back to its own shape


RUNNERS = {"atm": _run_llamagen, "naive": _run_llamagen, "aredit": _run_aredit, "editar": _run_editar,
           "varedit": _run_varedit}
