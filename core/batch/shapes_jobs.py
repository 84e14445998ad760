"""ShapesEdit as a jobs file, and the table of a run's results.

`write_shapes_jobs` renders each case's source, target and changed-pixel mask to PNGs and writes one job per case
and method, with the benchmark's prompts, instructions and seeds (case i: seed i), so a batch run reproduces the
rows of `tools/shapes_benchmark.py --backbone all`. `summary_table` reads a results.jsonl back into that table.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict

from PIL import Image

from ..shapes import bench, world
from .store import latest_rows

# Row label -> (method, params): the six rows of the README's ShapesEdit table, on the embedded models.
SHAPES_ROWS = {
    "naive (LlamaGen)": ("naive", {}),
    "ATM": ("atm", {}),
    "naive (Infinity)": ("aredit", {"gamma": 0, "threshold": -2.0}),  # unconstrained regeneration, same seed
    "AREdit": ("aredit", {}),
    "EditAR": ("editar", {}),
    "VAREdit": ("varedit", {}),
}
_ID_PREFIX = {"naive (LlamaGen)": "naive", "ATM": "atm", "naive (Infinity)": "naive-infinity", "AREdit": "aredit",
              "EditAR": "editar", "VAREdit": "varedit"}


MAX_CASES = 100_000  # ShapesEdit has 1,000 at most in any report; a jobs file of more is a typo


def write_shapes_jobs(out_dir: str, cases: int = 200, case_seed: int = 0, rows: list[str] | None = None,
                      overwrite: bool = False) -> str:
    """-> the path of `out_dir/jobs.jsonl` (case pictures under out_dir/cases/); an existing jobs file is replaced
    only with `overwrite`."""
    rows = rows or list(SHAPES_ROWS)
    unknown = [r for r in rows if r not in SHAPES_ROWS]
    if unknown:
        raise ValueError(f"unknown ShapesEdit rows {unknown}; choose from {list(SHAPES_ROWS)}")
    if not 1 <= cases <= MAX_CASES:  # before any case is made: each is rendered and held until written
        raise ValueError(f"cases must be 1 .. {MAX_CASES}, got {cases}")
    if os.path.exists(os.path.join(out_dir, "jobs.jsonl")) and not overwrite:
        raise ValueError(f"{os.path.join(out_dir, 'jobs.jsonl')} exists already: give another --out, or --overwrite")
    folder = os.path.join(out_dir, "cases")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(out_dir, "jobs.jsonl")
    edits = world.edit_cases(cases, seed=case_seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# ShapesEdit: {cases} cases (case seed {case_seed}) x {len(rows)} methods, written by "
                f"python -m ar_edit_pack shapes-jobs\n")
        for i, e in enumerate(edits):
            name = f"cases/{i:04d}"
            Image.fromarray(world.render(e.source)).save(os.path.join(out_dir, f"{name}.source.png"))
            Image.fromarray(world.render(e.target)).save(os.path.join(out_dir, f"{name}.target.png"))
            Image.fromarray(e.changed_mask().astype("uint8") * 255).save(os.path.join(out_dir, f"{name}.changed.png"))
            for label in rows:
                method, params = SHAPES_ROWS[label]
                job = {"id": f"{_ID_PREFIX[label]}-{i:04d}", "method": method, "source": f"{name}.source.png",
                       "seed": i, "expected": f"{name}.target.png", "mask": f"{name}.changed.png", "kind": e.kind,
                       "label": label}
                if method in ("editar", "varedit"):
                    job["instruction"] = bench.case_instruction(i, e)
                else:
                    job["prompt"] = e.prompt
                if method == "aredit":
                    job["source_prompt"] = e.source.caption()
                if params:
                    job["params"] = params
                f.write(json.dumps(job) + "\n")
    return path


def summarize_results(results_path: str) -> tuple[dict, dict]:
    """-> ({label: {kind or "all": means}}, {"ok": n, "error": n, "unscored": n}) from the last row of every job.
    A job's label is its "label" field, else its method."""
    scores = defaultdict(list)
    counts = {"ok": 0, "error": 0, "unscored": 0}
    for row in latest_rows(results_path).values():
        if row.get("status") != "ok":
            counts["error"] += 1
            continue
        counts["ok"] += 1
        m = row.get("metrics") or {}
        if "success" not in m:
            counts["unscored"] += 1
            continue
        structure = math.nan if m.get("structure") is None else m["structure"]
        scores[row.get("label") or row.get("method", "?")].append(
            bench.EditScores(m.get("kind", "?"), m["bg_psnr"], m["bg_ssim"], bool(m["success"]), structure, bool(m["exact"])))
    return {label: bench.summarize(s) for label, s in scores.items()}, counts


def summary_table(results_path: str) -> str:
    table, counts = summarize_results(results_path)
    order = [r for r in SHAPES_ROWS if r in table] + [r for r in table if r not in SHAPES_ROWS]
    note = f"{counts['ok']} jobs done, {counts['error']} failed"
    if counts["unscored"]:
        note += f", {counts['unscored']} without ShapesEdit ground truth (not in the table)"
    if not table:
        return note
    return bench.markdown_table({r: table[r] for r in order}) + "\n\n" + note
