"""The jobs file: one JSON object per line, read and checked before anything runs.

    {"id": "cat-01", "method": "atm", "source": "photos/cat.png", "source_prompt": "...", "prompt": "...",
     "seed": 0, "params": {"tau": 1.5}, "models": {"model": "...", "tokenizer": "...", "text_encoder": "..."},
     "region": "cat-mask.png", "expected": "cat-target.png", "mask": "cat-changed.png", "kind": "replace",
     "label": "ATM, tau 1.5"}

Paths are relative to the jobs file. A line that cannot be run (bad JSON, unknown method or parameter, value out of
range, missing image) becomes a `JobError` naming its line; the other lines still run.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import dataclasses
from dataclasses import dataclass, field

from ..images import RESIZE_MODES
from ..defaults import PUBLISHED
from ..infinity.aredit import AREditSettings
from ..infinity.generate import InfinitySampling
from ..llamagen.atm import ATMSettings
from ..llamagen.editar import TASK_TEMPLATES
from ..sampling import SEED_RANGE, SamplingSettings
from ..shapes.embedded import embedded_defaults

METHODS = ("atm", "naive", "aredit", "editar", "varedit")

MODEL_ROLES = {"model": "autoregressive", "tokenizer": "vq", "text_encoder": "text_encoders",
               "source_model": "autoregressive", "source_text_encoder": "text_encoders"}

_LLAMAGEN = {"model": "(embedded) shapes-t2i", "tokenizer": "(embedded) shapes-vq", "text_encoder": "(embedded) shapes-words"}
_INFINITY = {"model": "(embedded) shapes-infinity", "tokenizer": "(embedded) shapes-infinity-vae",
             "text_encoder": "(embedded) shapes-words"}
# The embedded set each method runs on when a job names no models. The editors make a prompt source with the
# text-to-image model of their backbone (its caption encoder), then edit it.
EMBEDDED_MODELS = {
    "atm": _LLAMAGEN, "naive": _LLAMAGEN, "aredit": _INFINITY,
    "editar": {"model": "(embedded) shapes-editar", "tokenizer": "(embedded) shapes-vq",
               "text_encoder": "(embedded) shapes-instructions", "source_model": _LLAMAGEN["model"],
               "source_text_encoder": _LLAMAGEN["text_encoder"]},
    "varedit": {"model": "(embedded) shapes-varedit", "tokenizer": "(embedded) shapes-infinity-vae",
                "text_encoder": "(embedded) shapes-instructions", "source_model": _INFINITY["model"],
                "source_text_encoder": _INFINITY["text_encoder"]},
}


@dataclass(frozen=True)
class Param:
    kind: type  # float, int or str
    embedded: object  # default with the embedded models (chosen on their validation cases), or what reads it
    official: object  # default with the official files (the nodes' defaults)
    choices: tuple = ()
    per_row: bool = True  # may differ between the rows of one batch; else jobs must agree to share a batch

    def default(self, embedded: bool):
        value = self.embedded if embedded else self.official
        return value() if callable(value) else value


def _setting(family: str, kind: str, name: str, field_name: str | None = None, **kw) -> "Param":
    """A job parameter that is a settings field: its defaults are the embedded model's own and the published one
    (core.defaults), read where they live."""
    field_name = field_name or name
    published = getattr(PUBLISHED[(family, kind)], field_name)
    return Param(type(published), lambda: getattr(embedded_defaults(family, kind), field_name), published, **kw)


def _sampling_params(family: str, cfg: str, names: tuple[str, ...], per_row: bool) -> dict[str, "Param"]:
    field = {"cfg": cfg}
    return {n: _setting(family, "sampling", n, field.get(n), per_row=per_row or n == "cfg") for n in names}


PARAMS: dict[str, dict[str, Param]] = {}
_FALLBACK_CHOICES, _CANDIDATE_CHOICES = ("greedy", "sample"), ("auto", "distinct", "sampled")
PARAMS.update({
    "atm": {**_sampling_params("llamagen", "cfg_scale", ("cfg", "temperature", "top_k", "top_p"), False),
            "K": _setting("llamagen", "atm", "K"), "alpha": _setting("llamagen", "atm", "alpha"),
            "tau": _setting("llamagen", "atm", "tau"),
            "fallback": _setting("llamagen", "atm", "fallback", choices=_FALLBACK_CHOICES),
            "candidates": _setting("llamagen", "atm", "candidates", choices=_CANDIDATE_CHOICES)},
    "naive": _sampling_params("llamagen", "cfg_scale", ("cfg", "temperature", "top_k", "top_p"), False),
    "aredit": {**{n: _setting("infinity", "sampling", n, per_row=False) for n in ("cfg", "tau", "top_p")},
               "gamma": _setting("infinity", "aredit", "gamma"), "threshold": _setting("infinity", "aredit", "threshold"),
               "resolution": Param(str, "auto", "auto", per_row=False),
               "aspect_ratio": Param(str, "1:1", "1:1", per_row=False)},
    "editar": {"text_cfg": _setting("editar", "editar", "text_cfg"), "image_cfg": _setting("editar", "editar", "image_cfg"),
               **{n: _setting("editar", "sampling", n, per_row=False) for n in ("temperature", "top_k", "top_p")},
               "task": Param(str, "edit", "edit", tuple(TASK_TEMPLATES))},
    "varedit": {**{n: _setting("varedit", "sampling", n) for n in ("cfg", "tau", "top_p")},
                "resolution": Param(str, "auto", "auto", per_row=False)},
})
for _method in ("atm", "naive", "aredit", "editar"):  # how a photo is fitted to the model (VAREdit pads it square)
    PARAMS[_method]["resize"] = Param(str, "center_crop", "center_crop", RESIZE_MODES)

_KEYS = {"id", "method", "source", "prompt", "instruction", "source_prompt", "seed", "params", "models", "region",
         "expected", "mask", "kind", "label"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LINE_ID = re.compile(r"^line-\d+$", re.IGNORECASE)


class JobSpecError(ValueError):
    pass


@dataclass
class Job:
    """One checked line of a jobs file: everything resolved but the models and the pixels."""

    id: str
    line: int
    digest: str  # of the line's content: a finished job is skipped on a rerun only while this is unchanged
    method: str
    prompt: str
    seed: int
    params: dict
    models: dict  # role -> loader name
    source_image: str | None = None  # absolute path; else a generated source:
    source_prompt: str | None = None  # aredit on an image: what it shows; a generated source: its prompt
    source_seed: int | None = None
    region: str | None = None
    expected: str | None = None
    mask: str | None = None
    kind: str | None = None  # the edit's kind, for per-kind summaries
    label: str | None = None  # the summary row the job counts in (default: its method)
    spec: dict = field(default_factory=dict)  # the line as read (recorded with the result)

    @property
    def generated_source(self) -> bool:
        return self.source_image is None

    def group_key(self) -> str:
        """Jobs with equal keys may run as one batch: same method, models, kind of source and every setting the
        method cannot vary per row (row-wise settings such as seeds, guidance, K / tau / gamma may differ)."""
        shared = {k: v for k, v in self.params.items() if not PARAMS[self.method][k].per_row}
        if self.method in ("atm", "naive") and self.generated_source:
            shared["cfg"] = self.params["cfg"]  # the source is generated with the job's guidance, one per batch
        return json.dumps([self.method, self.models, self.generated_source, self.region is not None, shared],
                          sort_keys=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(**d)


@dataclass
class JobError:
    id: str
    line: int
    digest: str
    error: str
    spec: dict = field(default_factory=dict)


def _number(value, kind: type, name: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobSpecError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise JobSpecError(f"{name} must be a finite number, got {value!r}")
    if kind is int:
        if isinstance(value, int):
            return value  # exact: seeds go up to 2**64 - 1, beyond what a float holds
        if not float(value).is_integer():
            raise JobSpecError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def _seed(value, name: str) -> int:
    seed = _number(value, int, name)
    if not 0 <= seed < SEED_RANGE:
        raise JobSpecError(f"{name} {seed} is outside 0 .. 2**64 - 1")
    return seed


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobSpecError(f"{name} must be a non-empty text, got {value!r}")
    return value


def _file(value, name: str, base: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobSpecError(f"{name} must be a file path, got {value!r}")
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.isfile(path):
        raise JobSpecError(f"{name}: no such file {path}")
    return os.path.abspath(path)


def _only_known(given: dict, known, what: str, method: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise JobSpecError(f"unknown {what}{'s' * (len(unknown) > 1)} {', '.join(unknown)} for {method}; "
                           f"it takes: {', '.join(known)}")


def _params(method: str, given, embedded: bool) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise JobSpecError(f"params must be an object of name: value, got {given!r}")
    spec = PARAMS[method]
    _only_known(given, spec, "parameter", method)
    out = {}
    for name, p in spec.items():
        value = given.get(name, p.default(embedded))
        if p.kind is str:
            value = str(value) if isinstance(value, (int, float)) and name == "resolution" else value
            if not isinstance(value, str) or (p.choices and value not in p.choices):
                allowed = f"one of {', '.join(p.choices)}" if p.choices else "a text"
                raise JobSpecError(f"{name} must be {allowed}, got {value!r}")
        else:
            value = _number(value, p.kind, name)
        out[name] = value
    try:
        _check_ranges(method, out)
    except ValueError as e:
        raise JobSpecError(str(e)) from None
    return out


def _check_ranges(method: str, p: dict) -> None:
    """The same checks the nodes make, so a bad value is this job's error before anything runs."""
    if method in ("atm", "naive"):
        SamplingSettings(p["cfg"], p["temperature"], p["top_k"], p["top_p"]).validate()
    if method == "atm":
        ATMSettings(p["K"], p["alpha"], p["tau"], p["fallback"], p["candidates"]).validate()
    if method == "aredit":
        InfinitySampling(p["cfg"], p["tau"], p["top_p"]).validate()
        AREditSettings(p["gamma"], p["threshold"]).validate()
    if method == "editar":
        SamplingSettings(1.0, p["temperature"], p["top_k"], p["top_p"]).validate()
        for name in ("text_cfg", "image_cfg"):
            if p[name] < 0:
                raise JobSpecError(f"{name} must be >= 0, got {p[name]}")
    if method == "varedit":
        InfinitySampling(p["cfg"], p["tau"], p["top_p"]).validate()


def _models(method: str, given) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict) or not all(isinstance(v, str) and v.strip() for v in given.values()):
        raise JobSpecError(f"models must be an object of role: file name, got {given!r}")
    defaults = EMBEDDED_MODELS[method]
    _only_known(given, defaults, "model role", method)
    models = dict(given)
    model_embedded = models.get("model", defaults["model"]).startswith("(embedded)")
    for role, name in defaults.items():
        if role in models:
            continue
        if not model_embedded and not role.startswith("source_"):
            # an official model with an embedded tokenizer would be nonsense: its partners must be named
            raise JobSpecError(f"models.{role} must be given with models.model {models['model']!r} (the embedded "
                               f"defaults only go with the embedded models)")
        models[role] = name
    return models


def digest(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def parse_job(spec, line: int, base: str) -> Job:
    """One decoded line -> a checked Job (JobSpecError naming the problem otherwise)."""
    if not isinstance(spec, dict):
        raise JobSpecError(f"a job is a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise JobSpecError(f"unknown field{'s' * (len(unknown) > 1)} {', '.join(unknown)}; a job takes: "
                           f"{', '.join(sorted(_KEYS))}")
    method = spec.get("method")
    if method not in METHODS:
        raise JobSpecError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    models = _models(method, spec.get("models"))
    params = _params(method, spec.get("params"), models["model"].startswith("(embedded)"))
    if "prompt" in spec and "instruction" in spec:
        raise JobSpecError("give prompt or instruction, not both")
    prompt = _text(spec.get("prompt", spec.get("instruction")), "prompt (or instruction)")
    source = spec.get("source")
    job = Job(id="", line=line, digest=digest(spec), method=method, prompt=prompt, seed=0, params=params,
              models=models, spec=spec)
    if isinstance(source, str):
        job.source_image = _file(source, "source", base)
    elif isinstance(source, dict):
        extra = sorted(set(source) - {"image", "prompt", "seed"})
        if extra or ("image" in source) == ("prompt" in source):
            raise JobSpecError('source must be an image path, {"image": path} or {"prompt": text, "seed": n}')
        if "image" in source:
            job.source_image = _file(source["image"], "source", base)
        else:
            job.source_prompt = _text(source["prompt"], "source.prompt")
            job.source_seed = _seed(source.get("seed", 0), "source.seed")
    else:
        raise JobSpecError('source must be an image path, {"image": path} or {"prompt": text, "seed": n}')
    if "source_prompt" in spec:
        if job.generated_source:
            raise JobSpecError("source_prompt is for an image source; a generated source's prompt is source.prompt")
        job.source_prompt = _text(spec["source_prompt"], "source_prompt")
    if method == "editar" and params["task"] != "edit" and job.generated_source:
        raise JobSpecError(f"task {params['task']!r} reads a control map: give source as an image path")
    if method == "aredit" and job.source_prompt is None:
        raise JobSpecError("aredit on an image needs source_prompt: what the image shows (its probabilities are "
                           "read under it)")
    # The edit reuses a generated source's seed unless told otherwise (the nodes' use_source_seed).
    job.seed = _seed(spec["seed"], "seed") if "seed" in spec else (job.source_seed or 0)
    for name in ("region", "expected", "mask"):
        if spec.get(name) is not None:
            setattr(job, name, _file(spec[name], name, base))
    for name in ("kind", "label"):
        if spec.get(name) is not None:
            setattr(job, name, _text(spec[name], name))
    job.id = _job_id(spec, job.digest)
    return job


def _job_id(spec: dict, content_digest: str) -> str:
    if "id" not in spec:
        return "job-" + content_digest[:12]  # stable across reorderings of the file
    value = spec["id"]
    if not isinstance(value, str) or not _ID.match(value):
        raise JobSpecError(f"id must be 1-128 letters, digits, '.', '_' or '-' (it names the result file), got {value!r}")
    if _LINE_ID.match(value):  # the results file keys an unreadable line N by line-N: a job named so would share it
        raise JobSpecError(f"id {value!r} is kept for the error of an unreadable line; choose another id")
    return value


def picture_names(job_id: str) -> tuple[str, str]:
    """The pictures a job writes (store.py), as a case-insensitive disk sees them."""
    return f"{job_id.lower()}.png", f"{job_id.lower()}.source.png"


def read_jobs(path: str) -> list[Job | JobError]:
    """Every line of a jobs file (blank lines and lines starting with # skipped), in order."""
    base = os.path.dirname(os.path.abspath(path))
    out: list[Job | JobError] = []
    seen: dict[str, int] = {}
    pictures: dict[str, int] = {}  # picture file name (lower case) -> the line whose job writes it
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:  # each line on its own: one bad line is that line's error, the others still run
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                out.append(JobError(f"line-{n}", n, hashlib.sha256(raw).hexdigest()[:16],
                                    f"not UTF-8 text (byte {e.start + 1}: {raw[e.start:e.start + 1]!r})"))
                continue
            if not text or text.startswith("#"):
                continue
            try:
                spec = json.loads(text)
                json.dumps(spec, ensure_ascii=False).encode("utf-8")  # a lone surrogate escape cannot be written
            except (ValueError, RecursionError, UnicodeEncodeError) as e:
                reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
                out.append(JobError(f"line-{n}", n, digest({"text": text}), f"not valid JSON: {reason}"))
                continue
            # A line that is not a job is keyed by its line number: its id (if any) may belong to a good job.
            try:
                job = parse_job(spec, n, base)
            except (JobSpecError, ValueError) as e:
                out.append(JobError(f"line-{n}", n, digest(spec) if isinstance(spec, dict) else digest({"text": text}),
                                    str(e), spec if isinstance(spec, dict) else {}))
                continue
            if job.id in seen:
                out.append(JobError(f"line-{n}", n, job.digest, f"id {job.id!r} is already used on line {seen[job.id]}"
                                    + ("" if "id" in spec else " (the same job twice)"), spec))
                continue
            # each job's pictures are <id>.png and <id>.source.png: no two jobs may write one file (`a` and
            # `a.source`), nor two names a case-insensitive disk takes for one (`A` and `a`)
            clash = next((pictures[p] for p in picture_names(job.id) if p in pictures), None)
            if clash is not None:
                out.append(JobError(f"line-{n}", n, job.digest, f"id {job.id!r} would write the same picture as the "
                                    f"job on line {clash} ({', '.join(picture_names(job.id))}): choose another id",
                                    spec))
                continue
            seen[job.id] = n
            pictures.update((p, n) for p in picture_names(job.id))
            out.append(job)
    return out
