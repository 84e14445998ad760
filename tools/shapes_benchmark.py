"""ShapesEdit benchmark on the embedded models: VQ PSNR, text-to-image accuracy, and edit quality per
method and per edit kind. Prints markdown tables and writes a JSON report.

    python tools/shapes_benchmark.py [--models embedded] [--cases 200] [--out bench/shapes_edit.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_embedded  # noqa: E402  (registers the package as ar_edit_pack)

from ar_edit_pack.core import shapes_bench as bench  # noqa: E402
from ar_edit_pack.core import shapes_world as world  # noqa: E402
from ar_edit_pack.core.atm import ATMSettings  # noqa: E402
from ar_edit_pack.core.loaders import load_gpt, load_vq, load_word_encoder  # noqa: E402


def load_models(folder: str):
    return (load_gpt(os.path.join(folder, "shapes_gpt.safetensors"), precision="fp32"),
            load_word_encoder(os.path.join(folder, "shapes_text.safetensors")),
            load_vq(os.path.join(folder, "shapes_vq.safetensors")))


def table(results: dict) -> str:
    kinds = ["all", *world.EDIT_KINDS]
    lines = ["| method | kind | bg PSNR | bg SSIM | success | structure | exact | n |", "|---|---|---|---|---|---|---|---|"]
    for method, summary in results.items():
        for k in kinds:
            if k in summary:
                r = summary[k]
                lines.append(f"| {method} | {k} | {r['bg_psnr']:.2f} | {r['bg_ssim']:.3f} | {r['success']:.1%} | "
                             f"{r['structure']:.1%} | {r['exact']:.1%} | {r['n']} |")
    return "\n".join(lines)


def run(folder: str, cases: int, t2i: int, atm: ATMSettings, vq_images: int = 200,
        extra_taus: tuple[float, ...] = ()) -> dict:
    """`atm` is the reported ATM setting; a row with the other candidate mode is added for comparison, and
    `extra_taus` adds rows for other thresholds (same K, alpha, candidates)."""
    gpt, text, vq = load_models(folder)
    t0 = time.time()
    report = {"vq_psnr": bench.vq_psnr(vq, n=vq_images), "t2i": bench.t2i_accuracy(gpt, text, vq, n=t2i),
              "atm_settings": atm.to_dict(), "sampling": bench.EMBEDDED_SAMPLING.to_dict()}
    edits = world.edit_cases(cases, seed=0)
    report["edits"] = {
        "naive": bench.summarize(bench.edit_benchmark(gpt, text, vq, edits, "naive")),
        "atm": bench.summarize(bench.edit_benchmark(gpt, text, vq, edits, "atm", atm)),
    }
    other = "distinct" if atm.candidates == "sampled" else "sampled"
    report["edits"][f"atm {other}"] = bench.summarize(bench.edit_benchmark(
        gpt, text, vq, edits, "atm", ATMSettings(atm.K, atm.alpha, atm.tau, atm.fallback, other)))
    for tau in extra_taus:
        setting = ATMSettings(atm.K, atm.alpha, tau, atm.fallback, atm.candidates)
        report["edits"][f"atm tau={tau:g}"] = bench.summarize(bench.edit_benchmark(gpt, text, vq, edits, "atm", setting))
    report["seconds"] = round(time.time() - t0, 1)
    return report


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=os.path.join(train_embedded.ROOT, "embedded"))
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--t2i", type=int, default=200)
    p.add_argument("--K", type=int, default=bench.EMBEDDED_ATM.K)
    p.add_argument("--alpha", type=float, default=bench.EMBEDDED_ATM.alpha)
    p.add_argument("--tau", type=float, default=bench.EMBEDDED_ATM.tau)
    p.add_argument("--candidates", choices=["distinct", "sampled"], default=bench.EMBEDDED_ATM.candidates)
    p.add_argument("--extra-taus", default="", help="comma-separated tau values for extra ATM rows")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    extra = tuple(float(t) for t in args.extra_taus.split(",") if t.strip())
    report = run(args.models, args.cases, args.t2i, ATMSettings(args.K, args.alpha, args.tau, candidates=args.candidates),
                 extra_taus=extra)
    print(f"VQ reconstruction PSNR: {report['vq_psnr']:.2f} dB")
    print(f"text-to-image: objects match {report['t2i']['objects_match']:.1%}, exact scene {report['t2i']['exact_scene']:.1%}")
    print(table(report["edits"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
