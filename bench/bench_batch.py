"""Batch-jobs throughput: the ShapesEdit benchmark (every method, the embedded models) as a jobs file, run by the
local engine and by the Ray engine on a local Ray instance; jobs/s of each (model loading and, for Ray, starting
the instance included: the wall time a user waits), their ratio, whether both engines wrote the same pictures,
and the ShapesEdit table of the run next to bench/shapes_edit_all.json.

Usage: python bench/bench_batch.py [--cases 200] [--batch-size 32] [--ray-workers 1,2] [--out bench/batch_throughput.json]
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import tempfile
import time

import torch

from ar_edit_pack.core.batch import engine, shapes_jobs
from ar_edit_pack.core.batch.store import latest_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed_run(jobs: str, out: str, **kw) -> dict:
    t0 = time.perf_counter()
    s = engine.run_jobs(jobs, out, models_dir=os.path.join(out, "models"), allow_download=False, progress=False, **kw)
    wall = time.perf_counter() - t0
    return {"ok": s.ok, "failed": s.failed, "seconds": round(wall, 2), "jobs_per_s": round(s.ok / wall, 2)}


def same_pictures(a: str, b: str) -> tuple[int, int]:
    rows_a, rows_b = latest_rows(os.path.join(a, "results.jsonl")), latest_rows(os.path.join(b, "results.jsonl"))
    same = sum(filecmp.cmp(os.path.join(a, r["image"]), os.path.join(b, rows_b[k]["image"]), shallow=False)
               for k, r in rows_a.items() if r["status"] == "ok" and rows_b.get(k, {}).get("status") == "ok")
    return same, len(rows_a)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=engine.DEFAULT_BATCH)
    p.add_argument("--ray-workers", default="1,2", help="actor counts to measure (CPUs shared equally)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench_batch_")
    try:
        jobs = shapes_jobs.write_shapes_jobs(os.path.join(work, "se"), args.cases)
        cpus = os.cpu_count() or 1
        torch.set_num_threads(cpus)
        report = {"jobs": args.cases * len(shapes_jobs.SHAPES_ROWS), "batch_size": args.batch_size, "cpus": cpus,
                  "device": "cuda" if torch.cuda.is_available() else "cpu"}
        local_out = os.path.join(work, "local")
        report["local"] = timed_run(jobs, local_out, batch_size=args.batch_size, threads=cpus)
        print(f"local: {report['local']}", flush=True)
        report["ray"] = {}
        for n in (int(w) for w in args.ray_workers.split(",")):
            out = os.path.join(work, f"ray{n}")
            r = timed_run(jobs, out, engine="ray", batch_size=args.batch_size, workers=n, cpus_per_worker=max(1, cpus // n))
            r["same_pictures_as_local"], _ = same_pictures(local_out, out)
            r["ratio_to_local"] = round(r["jobs_per_s"] / report["local"]["jobs_per_s"], 3)
            report["ray"][f"{n} actor(s) x {max(1, cpus // n)} CPU"] = r
            print(f"ray, {n} actor(s): {r}", flush=True)
        table, _ = shapes_jobs.summarize_results(os.path.join(local_out, "results.jsonl"))
        report["shapes_edit"] = {k: v["all"] for k, v in table.items()}
        print(shapes_jobs.summary_table(os.path.join(local_out, "results.jsonl")))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
