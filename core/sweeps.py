"""Parameter sweeps: lists of values -> one batch of edit settings, run as a single batched decode.

All settings share the source cache and the text embeddings; each batch row carries its own K, alpha,
tau, CFG scale and seed, so row j equals the single edit with setting j.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from .condition import Condition
from .llamagen.atm import ATMSettings, EditResult, SourceCache
from .llamagen.generate import DRAFT_CHUNK, DecodeStats, ProgressFn
from .llamagen.gpt import LlamaGenGPT
from .defaults import COMPILE
from .pipelines import llamagen
from .sampling import SamplingSettings

MAX_SWEEP_ROWS = 256


def _items(text, name: str) -> list[str]:
    items = [t.strip() for t in str(text).replace(";", ",").split(",") if t.strip()]
    if not items:
        raise ValueError(f"{name}: give at least one value")
    return items


def _range(item: str, name: str) -> tuple[float, float, int]:
    """'start:stop:step' -> (start, step, count), checked."""
    try:
        start, stop, step = (float(x) for x in item.split(":"))
    except ValueError:
        raise ValueError(f"{name}: cannot read {item!r} as start:stop:step (e.g. '0.5:2.0:0.5')") from None
    if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
        raise ValueError(f"{name}: {item!r} needs start <= stop and a step > 0")
    return start, step, int(round((stop - start) / step)) + 1


def count_values(text: str | float | int, name: str) -> int:
    """How many values parse_values would give, without making them (a range may be huge)."""
    if isinstance(text, (int, float)):
        return 1
    return sum(_range(item, name)[2] if ":" in item else 1 for item in _items(text, name))


def check_rows(lists: dict[str, str], batch: int = 1) -> int:
    """The rows a sweep over every combination of `lists` (name -> text) would have, checked against the cap
    from the list sizes alone, before any list is made."""
    rows = batch
    for name, text in lists.items():
        rows *= count_values(text, name)
    if rows > MAX_SWEEP_ROWS:
        sizes = " x ".join(f"{count_values(t, n)} {n}" for n, t in lists.items())
        raise ValueError(f"the sweep has {rows} combinations ({sizes}" + (f" x {batch} images" if batch > 1 else "")
                         + f"); at most {MAX_SWEEP_ROWS} run as one batch: shorten a list")
    return rows


def _number(item: str, kind: type, name: str):
    try:
        if kind is int:
            try:
                return int(item)  # exact for seeds up to 2**64 - 1 (a float would round them)
            except ValueError:
                value = float(item)
                if not value.is_integer():
                    raise ValueError(f"{name}: {item!r} is not a whole number") from None
                return int(value)
        value = float(item)
    except ValueError as e:
        if "whole number" in str(e):
            raise
        raise ValueError(f"{name}: cannot read {item!r} as a list of {kind.__name__} values "
                         f"(write e.g. '0.5, 1.0, 2.0' or '0.5:2.0:0.5')") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: {item!r} is not a finite number")
    return value


def parse_values(text: str | float | int, kind: type, name: str) -> list:
    """'0.5, 1.0, 2' -> [0.5, 1.0, 2.0]. Also accepts 'start:stop:step' (inclusive stop) for numbers. A list
    longer than a sweep may be is refused before it is made."""
    if isinstance(text, (int, float)):
        return [kind(text)]
    if count_values(text, name) > MAX_SWEEP_ROWS:
        raise ValueError(f"{name}: {count_values(text, name)} values; a sweep runs at most {MAX_SWEEP_ROWS}")
    values = []
    for item in _items(text, name):
        if ":" in item:
            start, step, n = _range(item, name)
            values += [kind(round(start + k * step, 10)) for k in range(n)]
        else:
            values.append(_number(item, kind, name))
    return values


@dataclass(frozen=True)
class SweepSetting:
    atm: ATMSettings
    seed: int
    cfg_scale: float

    def label(self, varying: set[str]) -> str:
        parts = {"K": f"K={self.atm.K}", "alpha": f"a={self.atm.alpha:g}", "tau": f"tau={self.atm.tau:g}",
                 "seed": f"seed={self.seed}", "cfg": f"cfg={self.cfg_scale:g}"}
        shown = [parts[k] for k in ("tau", "K", "alpha", "cfg", "seed") if k in varying]
        return ", ".join(shown) or "base"


def expand(K: list[int], alpha: list[float], tau: list[float], seeds: list[int], cfg: list[float],
           fallback: str, candidates: str = "auto") -> tuple[list[SweepSetting], set[str]]:
    """Cartesian product, tau varying fastest. Returns the settings and which parameters vary."""
    n = math.prod(len(v) for v in (K, alpha, tau, seeds, cfg))
    if n > MAX_SWEEP_ROWS:  # from the sizes, before the product is made
        raise ValueError(f"the sweep has {n} settings; at most {MAX_SWEEP_ROWS} run as one batch")
    rows = [SweepSetting(ATMSettings(k, a, t, fallback, candidates).validate(), s, c)
            for s, c, a, k, t in itertools.product(seeds, cfg, alpha, K, tau)]
    varying = {name for name, vals in (("K", K), ("alpha", alpha), ("tau", tau), ("seed", seeds), ("cfg", cfg))
               if len(set(vals)) > 1}
    return rows, varying


def run_sweep(model: LlamaGenGPT, cache: SourceCache, edit_cond: Condition, sampling: SamplingSettings,
              settings: list[SweepSetting], method: str = "atm", region: torch.Tensor | None = None,
              progress: ProgressFn | None = None, max_chunk: int = DRAFT_CHUNK,
              stats: DecodeStats | None = None, compile: str | bool = COMPILE) -> EditResult:
    """Every setting for every source item, as ONE batched decode. Row order: source item major,
    settings minor (row = item * len(settings) + j)."""
    S, B = len(settings), cache.batch
    if edit_cond.batch not in (1, B):
        raise ValueError(f"edit prompts ({edit_cond.batch}) must be 1 or one per source image ({B})")
    rows_src = torch.arange(B).repeat_interleave(S)
    cond_rows = edit_cond if edit_cond.batch == 1 else edit_cond.index(rows_src)
    region_rows = None if region is None else region[rows_src.to(region.device)]
    out = llamagen.edit(model, cache.select(rows_src), cond_rows, sampling, [s.atm for s in settings] * B,
                        [s.seed for s in settings] * B, method, region=region_rows,
                        cfg_scale=[s.cfg_scale for s in settings] * B, progress=progress, max_chunk=max_chunk,
                        stats=stats, compile=compile)
    return EditResult(out.tokens.flat, out.changed.flatten(1), out.locked_fraction)
