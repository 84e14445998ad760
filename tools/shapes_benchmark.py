"""ShapesEdit benchmark on the embedded models: tokenizer PSNR, text-to-image accuracy, and edit quality per
method and per edit kind, for the LlamaGen-architecture models (naive, ATM), the Infinity-architecture
ones (naive, AREdit, and AREdit's gamma x threshold grid) and the instruction editors (EditAR, VAREdit; plus
edge / segmentation map to image). `--backbone all` prints every method in one table: the same cases and seeds,
every row read from the decoded pixels with the same parser. Besides the 1,000 plain cases (the five kinds in
rotation), every method is measured on each hard family of core.shapes.families (200 cases each). Prints
markdown tables, writes a JSON report.

    python tools/shapes_benchmark.py [--backbone all] [--cases 1000] [--family-cases 200] [--out bench/shapes_edit.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_embedded  # noqa: E402

from ar_edit_pack.core.defaults import defaults  # noqa: E402
from ar_edit_pack.core.shapes import bench  # noqa: E402
from ar_edit_pack.core.shapes.embedded import JANUS_CHOICES, embedded_defaults  # noqa: E402
from ar_edit_pack.core.shapes import families, world  # noqa: E402
from ar_edit_pack.core.infinity.aredit import AREditSettings  # noqa: E402
from ar_edit_pack.core.llamagen.atm import ATMSettings  # noqa: E402
from ar_edit_pack.core.files.loaders import load_gpt, load_vq, load_word_encoder  # noqa: E402

GRID_GAMMAS = (0, 1, 2)
GRID_THRESHOLDS = (-0.2, 0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
NAIVE_INFINITY = AREditSettings(gamma=0, threshold=-2.0)  # the unconstrained target generation, same seed


FAMILY_CASES = 200  # per hard family


def case_sets(cases: int, family_cases: int, seed: int) -> dict:
    """{"all": the plain cases, family: its cases}: every method runs on the same sets."""
    sets = {"all": world.edit_cases(cases, seed=seed)}
    if family_cases:
        sets.update({f: families.family_cases(f, family_cases, seed) for f in families.FAMILIES})
    return sets


def measure(sets: dict, score, n_settings: int | None = None):
    """score(cases) -> [EditScores] (or, with n_settings, a list of them per setting) -> the plain set's summary
    per kind, with each family's overall summary under "families" (a list of such, with n_settings)."""
    results = {name: score(cases) for name, cases in sets.items()}
    def one(i=None):
        pick = (lambda r: r) if i is None else (lambda r: r[i])
        out = bench.summarize(pick(results["all"]))
        fam = {f: bench.summarize(pick(r))["all"] for f, r in results.items() if f != "all"}
        return {**out, "families": fam} if fam else out
    return one() if n_settings is None else [one(i) for i in range(n_settings)]


def load_models(folder: str):
    return (load_gpt(os.path.join(folder, "shapes_gpt.safetensors"), precision="fp32"),
            load_word_encoder(os.path.join(folder, "shapes_text.safetensors")),
            load_vq(os.path.join(folder, "shapes_vq.safetensors")))


def load_infinity_models(folder: str):
    return (load_gpt(os.path.join(folder, "shapes_infinity.safetensors"), precision="fp32"),
            load_word_encoder(os.path.join(folder, "shapes_text.safetensors")),
            load_vq(os.path.join(folder, "shapes_infinity_vae.safetensors")))


def run_infinity(folder: str, cases: int, t2i: int, aredit: AREditSettings, vae_images: int = 200,
                 grid: bool = False, case_seed: int = 0, family_cases: int = FAMILY_CASES) -> dict:
    """Naive vs AREdit at `aredit`; with `grid`, every gamma x threshold of GRID_* as well (one cache).
    Every scene is parsed from the decoded pixels, as the user sees them."""
    model, text, vae = load_infinity_models(folder)
    t0 = time.time()
    report = {"vae": bench.bsq_reconstruction(vae, n=vae_images) if vae_images else None,
              "t2i": bench.infinity_t2i_accuracy(model, text, vae, n=t2i) if t2i else None,
              "aredit_settings": aredit.to_dict(), "sampling": defaults(model, "sampling").to_dict()}
    settings = [NAIVE_INFINITY, aredit]
    if grid:
        settings += [AREditSettings(g, t) for g in GRID_GAMMAS for t in GRID_THRESHOLDS]
    sets = case_sets(cases, family_cases, case_seed)
    scores = measure(sets, lambda edits: bench.aredit_benchmark(model, text, vae, edits, settings), len(settings))
    report["edits"] = {"naive (infinity)": scores[0], "aredit": scores[1]}
    report["grid"] = [{**s.to_dict(), **sc["all"]} for s, sc in zip(settings[2:], scores[2:])]
    report["seconds"] = round(time.time() - t0, 1)
    return report


SAMPLING_CFGS = (1.0, 2.0, 3.0, 4.0)
SAMPLING_TAUS = (0.5, 1.0)
VALIDATION_SEED = 30_000  # captions the sampling is chosen on (the benchmark's are seed 20,000)


def choose_infinity_sampling(folder: str, n: int = 300) -> list[dict]:
    """Text-to-image accuracy of the Infinity-architecture model per cfg x tau on validation captions."""
    from ar_edit_pack.core.infinity.generate import InfinitySampling

    model, text, vae = load_infinity_models(folder)
    rows = []
    for cfg in SAMPLING_CFGS:
        for tau in SAMPLING_TAUS:
            acc = bench.infinity_t2i_accuracy(model, text, vae, n=n, seed=VALIDATION_SEED,
                                              sampling=InfinitySampling(cfg=cfg, tau=tau, top_p=0.97))
            rows.append({"cfg": cfg, "tau": tau, **acc})
            print(f"cfg {cfg:g} tau {tau:g}: objects match {acc['objects_match']:.1%}, exact {acc['exact_scene']:.1%}",
                  flush=True)
    return rows


def load_editors(folder: str):
    from ar_edit_pack.core.shapes.embedded import EDITOR_FILES

    path = lambda kind: os.path.join(folder, EDITOR_FILES[kind][1])
    return (load_gpt(path("editar"), precision="fp32"), load_gpt(path("varedit"), precision="fp32"),
            load_word_encoder(path("text_encoders")), load_vq(os.path.join(folder, "shapes_vq.safetensors")),
            load_vq(os.path.join(folder, "shapes_infinity_vae.safetensors")))


def run_editors(folder: str, cases: int, control: int = 200, case_seed: int = 0, editar_cfg=None,
                varedit_sampling=None, family_cases: int = FAMILY_CASES, showcase_seeds: int = 50) -> dict:
    """EditAR and VAREdit editors on the edit cases (instruction phrasings in rotation), and EditAR's edge /
    segmentation map -> image on `control` captions."""
    editar, varedit, text, vq, vae = load_editors(folder)
    t0 = time.time()
    sets = case_sets(cases, family_cases, case_seed)
    own = defaults(editar, "editar")
    text_cfg, image_cfg = editar_cfg or (own.text_cfg, own.image_cfg)
    report = {"editar_cfg": [text_cfg, image_cfg],
              "varedit_sampling": (varedit_sampling or defaults(varedit, "sampling")).to_dict(),
              "edits": {"editar": measure(sets, lambda e: bench.editar_benchmark(editar, text, vq, e, text_cfg, image_cfg)),
                        "varedit": measure(sets, lambda e: bench.varedit_benchmark(varedit, text, vae, e, varedit_sampling))}}
    report["showcase"] = bench.editar_showcase(editar, text, vq, showcase_seeds)
    if control:
        report["control"] = {task: bench.control_accuracy(editar, text, vq, task, n=control, text_cfg=text_cfg)
                             for task in ("canny", "segmentation")}
    report["seconds"] = round(time.time() - t0, 1)
    return report


def choose_editor_sampling(folder: str, n: int = 200) -> list[dict]:
    """Editors' success / exact per guidance on the validation cases (case seed 1)."""
    from ar_edit_pack.core.infinity.generate import InfinitySampling

    editar, varedit, text, vq, vae = load_editors(folder)
    edits = world.edit_cases(n, seed=1)
    rows = []
    for text_cfg in (1.0, 1.5, 2.0, 3.0):
        for image_cfg in (1.0, 1.5):
            r = bench.summarize(bench.editar_benchmark(editar, text, vq, edits, text_cfg, image_cfg))["all"]
            rows.append({"method": "editar", "text_cfg": text_cfg, "image_cfg": image_cfg, **r})
            print(f"editar text {text_cfg:g} image {image_cfg:g}: success {r['success']:.1%} exact {r['exact']:.1%}",
                  flush=True)
    for cfg in (1.0, 1.5, 2.0, 3.0):
        for tau in (0.5, 1.0):
            r = bench.summarize(bench.varedit_benchmark(varedit, text, vae, edits, InfinitySampling(cfg, tau, 0.97)))["all"]
            rows.append({"method": "varedit", "cfg": cfg, "tau": tau, **r})
            print(f"varedit cfg {cfg:g} tau {tau:g}: success {r['success']:.1%} exact {r['exact']:.1%}", flush=True)
    return rows


def load_lumina_models(folder: str):
    from ar_edit_pack.core.lumina.vqgan import load_vqgan
    from ar_edit_pack.core.pipelines.lumina import load_lumina
    from ar_edit_pack.core.shapes.embedded import LUMINA_CHOICES

    path = lambda kind: os.path.join(folder, LUMINA_CHOICES[kind][1])
    return load_lumina(path("autoregressive"), torch.float32), load_vqgan(path("vq"))


def _run_atm_backbone(model, tokenizer, t2i_accuracy, edit_benchmark, cases: int, t2i: int, case_seed: int,
                      family_cases: int, extra: dict | None = None) -> dict:
    """Naive vs ATM on one backbone's embedded set at its own settings (its config.json's tuned ones)."""
    t0 = time.time()
    report = {**(extra or {}), "t2i": t2i_accuracy(model, tokenizer, n=t2i) if t2i else None,
              "atm_settings": defaults(model, "atm").to_dict(), "sampling": defaults(model, "sampling").to_dict()}
    sets = case_sets(cases, family_cases, case_seed)
    report["edits"] = {method: measure(sets, lambda e: edit_benchmark(model, tokenizer, e, method))
                       for method in ("naive", "atm")}
    report["seconds"] = round(time.time() - t0, 1)
    return report


def run_lumina(folder: str, cases: int, t2i: int, case_seed: int = 0, vq_images: int = 200,
               family_cases: int = FAMILY_CASES) -> dict:
    """The Lumina-mGPT-architecture set (and its VQGAN's reconstruction)."""
    model, vqgan = load_lumina_models(folder)
    return _run_atm_backbone(model, vqgan, bench.lumina_t2i_accuracy, bench.lumina_edit_benchmark, cases, t2i,
                             case_seed, family_cases, {"vq_psnr": bench.vq_psnr(vqgan, n=vq_images) if vq_images else None})


def run_janus(folder: str, cases: int, t2i: int, case_seed: int = 0, family_cases: int = FAMILY_CASES) -> dict:
    """The Janus-Pro-architecture set (its VQ is the LlamaGen set's, measured there)."""
    from ar_edit_pack.core.janus.files import load_janus

    model, vq = load_janus(os.path.join(folder, JANUS_CHOICES["autoregressive"][1]), torch.float32)
    return _run_atm_backbone(model, vq, bench.janus_t2i_accuracy, bench.janus_edit_benchmark, cases, t2i, case_seed,
                             family_cases)


def grid_table(rows: list[dict]) -> str:
    lines = ["| gamma | threshold | bg PSNR | bg SSIM | success | structure | exact |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['gamma']} | {r['threshold']:g} | {r['bg_psnr']:.2f} | {r['bg_ssim']:.3f} | "
                     f"{r['success']:.1%} | {r['structure']:.1%} | {r['exact']:.1%} |")
    return "\n".join(lines)


def run(folder: str, cases: int, t2i: int, atm: ATMSettings, vq_images: int = 200,
        extra_taus: tuple[float, ...] = (), case_seed: int = 0, family_cases: int = FAMILY_CASES) -> dict:
    """`atm` is the reported ATM setting; a row with the other candidate mode is added for comparison, and
    `extra_taus` adds rows for other thresholds (same K, alpha, candidates)."""
    gpt, text, vq = load_models(folder)
    t0 = time.time()
    report = {"vq_psnr": bench.vq_psnr(vq, n=vq_images) if vq_images else None,
              "t2i": bench.t2i_accuracy(gpt, text, vq, n=t2i) if t2i else None,
              "atm_settings": atm.to_dict(), "sampling": defaults(gpt, "sampling").to_dict()}
    sets = case_sets(cases, family_cases, case_seed)
    report["edits"] = {
        "naive": measure(sets, lambda e: bench.edit_benchmark(gpt, text, vq, e, "naive")),
        "atm": measure(sets, lambda e: bench.edit_benchmark(gpt, text, vq, e, "atm", atm)),
    }
    other = "distinct" if atm.candidates == "sampled" else "sampled"
    report["edits"][f"atm {other}"] = measure(sets, lambda e: bench.edit_benchmark(
        gpt, text, vq, e, "atm", ATMSettings(atm.K, atm.alpha, atm.tau, atm.fallback, other)))
    for tau in extra_taus:
        setting = ATMSettings(atm.K, atm.alpha, tau, atm.fallback, atm.candidates)
        report["edits"][f"atm tau={tau:g}"] = measure(sets, lambda e: bench.edit_benchmark(gpt, text, vq, e, "atm", setting))
    report["seconds"] = round(time.time() - t0, 1)
    return report


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default=os.path.join(train_embedded.ROOT, "embedded"), help="folder of the models")
    p.add_argument("--cases", type=int, default=1000, help="plain edit cases (the five kinds in rotation)")
    p.add_argument("--family-cases", type=int, default=FAMILY_CASES, help="cases per hard family (0: none)")
    p.add_argument("--t2i", type=int, default=200, help="captions for text-to-image accuracy (0: skip)")
    own_atm, own_aredit = embedded_defaults("llamagen", "atm"), embedded_defaults("infinity", "aredit")
    p.add_argument("--K", type=int, default=own_atm.K)
    p.add_argument("--alpha", type=float, default=own_atm.alpha)
    p.add_argument("--tau", type=float, default=own_atm.tau)
    p.add_argument("--candidates", choices=["distinct", "sampled"], default=own_atm.candidates)
    p.add_argument("--extra-taus", default="", help="comma-separated tau values for extra ATM rows")
    p.add_argument("--backbone", choices=["all", "both", "llamagen", "infinity", "editors", "lumina", "janus"], default="all",
                   help="both: LlamaGen + Infinity (training-free methods); all: and the instruction editors")
    p.add_argument("--gamma", type=int, default=own_aredit.gamma)
    p.add_argument("--threshold", type=float, default=own_aredit.threshold)
    p.add_argument("--grid", action="store_true", help="also every AREdit gamma x threshold of the grid")
    p.add_argument("--case-seed", type=int, default=0, help="edit cases (0: the benchmark; 1: the validation set "
                                                           "the defaults are chosen on), both backbones")
    p.add_argument("--choose-sampling", action="store_true",
                   help="only: Infinity text-to-image accuracy per cfg x tau on validation captions")
    p.add_argument("--choose-editor-sampling", action="store_true",
                   help="only: the editors' success / exact per guidance on the validation cases")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.choose_sampling:
        rows = choose_infinity_sampling(args.models)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
        return
    if args.choose_editor_sampling:
        rows = choose_editor_sampling(args.models, args.cases)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
        return
    extra = tuple(float(t) for t in args.extra_taus.split(",") if t.strip())
    report = {}
    if args.backbone in ("all", "both", "llamagen"):
        report["llamagen"] = r = run(args.models, args.cases, args.t2i,
                                     ATMSettings(args.K, args.alpha, args.tau, candidates=args.candidates), extra_taus=extra,
                                     case_seed=args.case_seed, family_cases=args.family_cases)
        print(f"VQ reconstruction PSNR: {r['vq_psnr']:.2f} dB")
        if r["t2i"]:
            print(f"text-to-image: objects match {r['t2i']['objects_match']:.1%}, exact scene {r['t2i']['exact_scene']:.1%}")
        print(bench.markdown_table(r["edits"]))
        print(bench.family_table(r["edits"]))
    if args.backbone in ("all", "both", "infinity"):
        report["infinity"] = r = run_infinity(args.models, args.cases, args.t2i, AREditSettings(args.gamma, args.threshold),
                                              grid=args.grid, case_seed=args.case_seed,
                                              family_cases=args.family_cases)
        print(f"BSQ VAE reconstruction (decoded pixels): PSNR {r['vae']['psnr']:.2f} dB, exact scene parsed back "
              f"{r['vae']['exact_scene']:.1%}")
        if r["t2i"]:
            print(f"text-to-image (Infinity): objects match {r['t2i']['objects_match']:.1%}, "
                  f"exact scene {r['t2i']['exact_scene']:.1%}")
        print(bench.markdown_table(r["edits"]))
        print(bench.family_table(r["edits"]))
        if r["grid"]:
            print(grid_table(r["grid"]))
    if args.backbone in ("all", "editors"):
        report["editors"] = r = run_editors(args.models, args.cases, args.t2i, case_seed=args.case_seed,
                                                     family_cases=args.family_cases)
        print(bench.markdown_table(r["edits"]))
        print(bench.family_table(r["edits"]))
        sc = r["showcase"]
        print(f"EditAR's showcased edit (workflows 03, 06): right {sc['right']} of {sc['n']} "
              f"({sc['seeds']} seeds x {len(sc['per_phrasing'])} phrasings), textures kept too {sc['exact']}")
        for task, acc in r.get("control", {}).items():
            print(f"{task} map -> image: objects match {acc['objects_match']:.1%}, exact scene {acc['exact_scene']:.1%}")
    for name, label, runner in (("lumina", "Lumina", run_lumina), ("janus", "Janus", run_janus)):
        if args.backbone in ("all", name):  # naive vs ATM on a second / third ATM backbone
            report[name] = r = runner(args.models, args.cases, args.t2i, case_seed=args.case_seed,
                                      family_cases=args.family_cases)
            if r["t2i"]:
                print(f"text-to-image ({label}): objects match {r['t2i']['objects_match']:.1%}, "
                      f"exact scene {r['t2i']['exact_scene']:.1%}")
            print(bench.markdown_table(r["edits"]))
            print(bench.family_table(r["edits"]))
    if args.backbone == "all":
        rows = {"naive (LlamaGen)": report["llamagen"]["edits"]["naive"], "ATM": report["llamagen"]["edits"]["atm"],
                "naive (Infinity)": report["infinity"]["edits"]["naive (infinity)"],
                "AREdit": report["infinity"]["edits"]["aredit"], "EditAR": report["editors"]["edits"]["editar"],
                "VAREdit": report["editors"]["edits"]["varedit"],
                "naive (Lumina)": report["lumina"]["edits"]["naive"],
                "ATM (Lumina-mGPT architecture)": report["lumina"]["edits"]["atm"],
                "naive (Janus)": report["janus"]["edits"]["naive"],
                "ATM (Janus-Pro architecture)": report["janus"]["edits"]["atm"]}
        print("\nEvery method, the same cases and seeds:")
        print(bench.markdown_table(rows))
        if args.family_cases:
            print("\nThe hard families, the same cases and seeds:")
            print(bench.family_table(rows))
        report["table"] = rows
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
