"""Parameter sweeps: lists of values -> one batch of edit settings, run as a single batched decode.

All settings share the source cache and the text embeddings; each batch row carries its own K, alpha,
tau, CFG scale and seed, so row j equals the single edit with setting j.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from .condition import Condition
from .llamagen.atm import ATMSettings, EditResult, SourceCache, atm_edit, naive_edit
from .llamagen.generate import ProgressFn
from .llamagen.gpt import LlamaGenGPT
from .sampling import SamplingSettings

MAX_SWEEP_ROWS = 256


def parse_values(text: str | float | int, kind: type, name: str) -> list:
    """'0.5, 1.0, 2' -> [0.5, 1.0, 2.0]. Also accepts 'start:stop:step' (inclusive stop) for numbers."""
    if isinstance(text, (int, float)):
        return [kind(text)]
    items = [t.strip() for t in str(text).replace(";", ",").split(",") if t.strip()]
    if not items:
        raise ValueError(f"{name}: give at least one value")
    values = []
    for item in items:
        try:
            if ":" in item:
                start, stop, step = (float(x) for x in item.split(":"))
                if step <= 0 or stop < start:
                    raise ValueError
                n = int(round((stop - start) / step)) + 1
                values += [kind(round(start + k * step, 10)) for k in range(n)]
            else:
                values.append(kind(float(item)) if kind is int else kind(item))
        except ValueError:
            raise ValueError(f"{name}: cannot read {item!r} as a list of {kind.__name__} values "
                             f"(write e.g. '0.5, 1.0, 2.0' or '0.5:2.0:0.5')") from None
        if kind is int and ":" not in item and float(item) != int(float(item)):
            raise ValueError(f"{name}: {item!r} is not a whole number")
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
           fallback: str, candidates: str = "distinct") -> tuple[list[SweepSetting], set[str]]:
    """Cartesian product, tau varying fastest. Returns the settings and which parameters vary."""
    rows = [SweepSetting(ATMSettings(k, a, t, fallback, candidates).validate(), s, c)
            for s, c, a, k, t in itertools.product(seeds, cfg, alpha, K, tau)]
    if len(rows) > MAX_SWEEP_ROWS:
        raise ValueError(f"the sweep has {len(rows)} settings; at most {MAX_SWEEP_ROWS} run as one batch")
    varying = {name for name, vals in (("K", K), ("alpha", alpha), ("tau", tau), ("seed", seeds), ("cfg", cfg))
               if len(set(vals)) > 1}
    return rows, varying


def run_sweep(model: LlamaGenGPT, cache: SourceCache, edit_cond: Condition, sampling: SamplingSettings,
              settings: list[SweepSetting], method: str = "atm", region: torch.Tensor | None = None,
              progress: ProgressFn | None = None) -> EditResult:
    """Every setting for every source item, as ONE batched decode. Row order: source item major,
    settings minor (row = item * len(settings) + j)."""
    S, B = len(settings), cache.batch
    rows_src = torch.arange(B).repeat_interleave(S)
    cache_rows = cache.select(rows_src)
    cond_rows = edit_cond.index(rows_src if edit_cond.batch == B else torch.zeros(B * S, dtype=torch.long))
    seeds = torch.tensor([s.seed for s in settings] * B, dtype=torch.int64)
    cfg = [s.cfg_scale for s in settings] * B
    region_rows = None if region is None else region[rows_src.to(region.device)]
    if method == "atm":
        return atm_edit(model, cache_rows, cond_rows, sampling, [s.atm for s in settings] * B, seeds,
                        region_rows, cfg, progress)
    if method == "naive":
        return naive_edit(model, cache_rows, cond_rows, sampling, seeds, region_rows, cfg, progress)
    raise ValueError(f"method must be 'atm' or 'naive', got {method!r}")
