"""Command line: `python -m ar_edit_pack demo`, `batch`, `shapes-jobs`, `summary`, `models` and `convert` (the pack
installed with `pip install -e .`; any folder)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .shapes.instructions import EXAMPLE_INSTRUCTION  # EXAMPLE_SOURCE -> EXAMPLE_EDIT
from .shapes.world import EXAMPLE_CAPTION as EXAMPLE_SOURCE, EXAMPLE_EDITED as EXAMPLE_EDIT


def _demo(args) -> int:
    if args.method == "aredit":
        return _demo_aredit(args)
    if args.method in ("editar", "varedit"):
        return _demo_editor(args)
    return _demo_atm(args)


def _save_side_by_side(args, images, changed, stride, params, edit_name: str = "ATM edit") -> str:
    """images [2, 3, H, W] (source, edit), changed [1, h, w] bool -> demo.png and demo.json in args.out."""
    import numpy as np
    import torch
    from PIL import Image

    mask_img = changed[0].float().repeat_interleave(stride, 0).repeat_interleave(stride, 1)
    panels = [images[0], images[1], mask_img.expand(3, -1, -1)]
    arr = (torch.cat([p.permute(1, 2, 0).cpu() for p in panels], 1).numpy() * 255).round().astype(np.uint8)
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "demo.png")
    scale = max(1, 256 // arr.shape[0])
    Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST).save(png)
    with open(os.path.join(args.out, "demo.json"), "w") as f:
        json.dump({**params, "panels": ["source", edit_name, "changed tokens"]}, f, indent=1)
    return png


def _demo_atm(args) -> int:
    """ATM on the embedded LlamaGen-architecture models: generate the source, cache it, edit, decode."""
    import torch

    from .defaults import resolve
    from .pipelines import llamagen
    from .shapes.embedded import load_embedded

    t0 = time.time()
    gpt, text, vq = load_embedded()
    prompt = EXAMPLE_SOURCE if args.prompt is None else args.prompt
    edit = EXAMPLE_EDIT if args.edit is None else args.edit
    sampling = resolve(gpt, "sampling", cfg_scale=args.cfg)
    atm = resolve(gpt, "atm", K=args.K, alpha=args.alpha, tau=args.tau, candidates=args.candidates)
    source = llamagen.generate(gpt, llamagen.text_condition(text, [prompt]), sampling, [args.seed])
    result = llamagen.edit(gpt, llamagen.source_cache(source, vq), llamagen.text_condition(text, [edit]), sampling, atm,
                           [args.seed])
    images = llamagen.decode(vq, torch.cat([source.tokens, result.tokens.tokens]))
    seconds = time.time() - t0
    png = _save_side_by_side(args, images, result.changed, vq.downsample, {
        "model": "embedded ShapesWorld models (shapes_gpt, shapes_words, shapes_vq)", "source_prompt": prompt,
        "edit_prompt": edit, "seed": args.seed, "sampling": sampling.to_dict(), "atm": atm.to_dict(),
        "locked_fraction": round(float(result.locked_fraction[0]), 4), "seconds": round(seconds, 3)})
    print(f"wrote {png} (source | ATM edit | changed tokens) in {seconds:.2f} s with the embedded models")
    return 0


def _demo_aredit(args) -> int:
    """AREdit on the embedded Infinity-architecture models: generate, cache (free for generated tokens), edit."""
    import torch

    from .defaults import resolve
    from .infinity.generate import BitTokens
    from .infinity.scales import STRIDE
    from .pipelines import infinity
    from .shapes.bench import EMBEDDED_INFINITY_SCHEDULE
    from .shapes.embedded import load_embedded_infinity

    t0 = time.time()
    model, text, vae = load_embedded_infinity()
    prompt = EXAMPLE_SOURCE if args.prompt is None else args.prompt
    edit = EXAMPLE_EDIT if args.edit is None else args.edit
    sampling = resolve(model, "sampling", cfg=args.cfg)
    settings = resolve(model, "aredit", gamma=args.gamma, threshold=args.threshold)
    settings.validate(len(EMBEDDED_INFINITY_SCHEDULE))
    tokens = infinity.generate(model, infinity.text_condition(text, [prompt]), EMBEDDED_INFINITY_SCHEDULE, sampling,
                               [args.seed])
    result = infinity.aredit(model, infinity.aredit_source(model, tokens), infinity.text_condition(text, [edit]),
                             settings, [args.seed])
    both = BitTokens([torch.cat([a, b.to(a.device)]) for a, b in zip(tokens.bits, result.tokens.bits)],
                     tokens.schedule, "edited", tokens.patchify)
    images = infinity.decode(vae, both)
    seconds = time.time() - t0
    changed = result.changed[-1]
    png = _save_side_by_side(args, images, changed, STRIDE, {
        "model": "embedded ShapesWorld models (shapes_infinity, shapes_words, shapes_infinity_vae)",
        "source_prompt": prompt, "edit_prompt": edit, "seed": args.seed, "sampling": sampling.to_dict(),
        "aredit": settings.to_dict(), "changed_fraction": round(float(changed.float().mean()), 4),
        "seconds": round(seconds, 3)}, "AREdit edit")
    print(f"wrote {png} (source | AREdit edit | changed tokens) in {seconds:.2f} s with the embedded models")
    return 0


def _demo_editor(args) -> int:
    """EditAR or VAREdit on the embedded editors: the source is the ShapesWorld render of --prompt (an image
    the editor has not generated itself: the real-image setting), edited by the instruction --edit."""
    import torch

    from .defaults import defaults, resolve
    from .files.loaders import load_vq
    from .infinity.scales import STRIDE
    from .pipelines import editar, infinity, llamagen, varedit
    from .shapes import world
    from .shapes.bench import to_image
    from .shapes.embedded import embedded_path, load_embedded_editor

    t0 = time.time()
    editor, text = load_embedded_editor(args.method)
    prompt = EXAMPLE_SOURCE if args.prompt is None else args.prompt
    instruction = EXAMPLE_INSTRUCTION if args.edit is None else args.edit
    scene = to_image(world.render(world.parse_caption(prompt))[None])  # IMAGE [1, 48, 48, 3]
    if args.method == "editar":
        vq = load_vq(embedded_path("vq"))
        guidance = resolve(editor, "editar", text_cfg=args.cfg)
        sampling = defaults(editor, "sampling")
        inputs = editar.prepare(editor, vq, scene)
        tokens = editar.edit(editor, vq, text, inputs, editar.instruction_prompts("edit", [instruction]), [args.seed],
                             guidance.text_cfg, guidance.image_cfg, sampling)
        edited, changed, stride = llamagen.decode(vq, tokens), tokens.tokens != inputs.tokens, vq.downsample
        params = {"model": "embedded ShapesWorld editor (shapes_editar, shapes_instructions, shapes_vq)",
                  **guidance.__dict__, "sampling": sampling.to_dict()}
    else:
        vae = load_vq(embedded_path("vq", True))
        sampling = resolve(editor, "sampling", cfg=args.cfg)
        out = varedit.edit(editor, vae, text, scene, [instruction], world.SIZE, sampling, [args.seed])
        [(_, before)] = infinity.encode(vae, scene, world.SIZE)
        edited = torch.stack(out.images)
        changed = (out.tokens.bits[-1] != before.bits[-1].to(out.tokens.bits[-1].device)).any(-1)
        stride = STRIDE
        params = {"model": "embedded ShapesWorld editor (shapes_varedit, shapes_instructions, shapes_infinity_vae)",
                  "sampling": sampling.to_dict()}
    images = torch.cat([scene.permute(0, 3, 1, 2), edited.cpu()])
    seconds = time.time() - t0
    name = {"editar": "EditAR edit", "varedit": "VAREdit edit"}[args.method]
    png = _save_side_by_side(args, images, changed.cpu(), stride, {
        **params, "source_prompt": prompt, "instruction": instruction, "seed": args.seed,
        "changed_fraction": round(float(changed.float().mean()), 4), "seconds": round(seconds, 3)}, name)
    print(f"wrote {png} (source | {name} | changed tokens) in {seconds:.2f} s with the embedded editors")
    return 0


def _convert(args) -> int:
    from .files.loaders import convert_to_safetensors, resolve_dtype

    if os.path.isdir(args.src):  # a model folder: Janus-Pro's .bin files, converted shard by shard
        from .janus.files import convert_folder

        dst = convert_folder(args.src, args.dst, args.overwrite,
                             resolve_dtype(args.precision, "cpu") if args.precision else None)
    else:
        dst = convert_to_safetensors(args.src, args.dst, precision=args.precision, image_size=args.image_size,
                                     n_head=args.n_head, overwrite=args.overwrite)
    print(f"wrote {dst}")
    return 0


def default_models_dir() -> str:
    """ComfyUI's models/ when the pack sits in ComfyUI/custom_nodes/, else $AR_EDIT_MODELS_DIR or ./models."""
    if os.environ.get("AR_EDIT_MODELS_DIR"):
        return os.environ["AR_EDIT_MODELS_DIR"]
    pack = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    comfy = os.path.dirname(os.path.dirname(pack))
    if os.path.basename(os.path.dirname(pack)) == "custom_nodes" and os.path.isdir(os.path.join(comfy, "models")):
        return os.path.join(comfy, "models")
    return os.path.abspath("models")


def _models(args) -> int:
    from .files.model_files import KNOWN_FILES, ModelFileMissing, ensure_local, file_status, workflow_files
    from .shapes.embedded import all_embedded

    if args.workflow or args.jobs:
        wanted: list[tuple[str, str]] = []
        for path in args.workflow:
            try:
                with open(path) as f:
                    workflow = json.load(f)
                found = workflow_files(workflow)
            except (OSError, ValueError, RecursionError) as e:  # not JSON, not UTF-8, nested too deeply, not a graph
                raise ValueError(f"cannot read the workflow {path}: {e}") from None
            wanted += [w for w in found if w not in wanted]
        for path in args.jobs:  # a batch jobs file: the files its (readable) jobs name
            from .batch.jobs import MODEL_ROLES, Job, read_jobs

            for job in (j for j in read_jobs(path) if isinstance(j, Job)):
                roles = [r for r in job.models if job.generated_source or not r.startswith("source_")]
                wanted += [w for w in ((MODEL_ROLES[r], job.models[r]) for r in roles) if w not in wanted]
    else:  # the whole pack: every embedded model and every official file the loaders offer
        wanted = list(dict.fromkeys(all_embedded() +
                                    [(f.kind, f.filename) for f in KNOWN_FILES.values()]))
    statuses = [file_status(kind, name, args.models_dir) for kind, name in wanted]
    sources = args.workflow + args.jobs
    print(f"model files{' of ' + ', '.join(sources) if sources else ' the pack can use'} "
          f"(models folder: {args.models_dir}; sizes estimated from parameter counts)")
    for s in statuses:
        print("  " + s.line())
    missing = [s for s in statuses if not s.present]
    unknown = [s for s in missing if s.known is None]
    total = sum(s.known.approx_gb for s in missing if s.known)
    print(f"{len(statuses) - len(missing)} present, {len(missing)} missing" + (f" (~{total:.1f} GB to download)" if total else ""))
    if not (args.download and missing):
        return 1 if missing else 0
    failed = [f"{s.name}: not an official file, so it cannot be downloaded; put it at {s.path}" for s in unknown]
    for s in missing:
        if s.known is None:
            continue
        print(f"downloading {s.name} -> {os.path.dirname(s.path)}", flush=True)
        try:
            ensure_local(s.name, os.path.dirname(s.path))  # huggingface_hub shows the progress
        except ModelFileMissing as e:  # go on with the others: one run names every problem
            failed.append(str(e))
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    return 1 if failed else 0


def _batch(args) -> int:
    from .batch.engine import DEFAULT_BATCH, run_jobs

    if not os.path.isfile(args.jobs):
        raise FileNotFoundError(f"no jobs file {args.jobs}")
    summary = run_jobs(args.jobs, args.out, engine=args.engine, batch_size=args.batch_size or DEFAULT_BATCH,
                       models_dir=args.models_dir, device=args.device, address=args.address, workers=args.workers,
                       cpus_per_worker=args.cpus_per_worker, threads=args.threads,
                       allow_download=not args.no_download)
    done = summary.ok + summary.failed
    print(f"{summary.ok} done, {summary.failed} failed, {summary.invalid} unreadable lines, {summary.skipped} already "
          f"done before; {done} jobs in {summary.seconds:.1f} s ({summary.jobs_per_second:.2f} jobs/s, {args.engine} "
          f"engine). Results: {os.path.join(args.out, 'results.jsonl')}")
    if summary.interrupted:
        print("interrupted: every finished job is saved; run the same command again to go on", file=sys.stderr)
        return 130
    return 1 if summary.failed or summary.invalid else 0


def _shapes_jobs(args) -> int:
    from .batch.shapes_jobs import SHAPES_ROWS, write_shapes_jobs

    rows = None if args.rows == "all" else [r.strip() for r in args.rows.split(",")]
    if rows:  # also accept the id-style names: atm, aredit, naive-infinity, ...
        lookup = {k.lower(): k for k in SHAPES_ROWS} | {"naive": "naive (LlamaGen)", "naive-infinity": "naive (Infinity)"}
        rows = [lookup.get(r.lower(), r) for r in rows]
    path = write_shapes_jobs(args.out, args.cases, args.case_seed, rows, overwrite=args.overwrite)
    print(f"wrote {path}; run it with: python -m ar_edit_pack batch {path} --out {os.path.join(args.out, 'results')}")
    return 0


def _summary(args) -> int:
    from .batch.shapes_jobs import summary_table
    from .batch.store import RESULTS

    path = os.path.join(args.results, RESULTS) if os.path.isdir(args.results) else args.results
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no results file {path}")
    print(summary_table(path))
    return 0


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (the help then says what is used)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ar_edit_pack", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    fmt = _DefaultsShown
    d = sub.add_parser("demo", formatter_class=fmt, help="generate and edit with the embedded models, write a PNG",
                       description="Generate a ShapesWorld image from --prompt, edit it to --edit, and write "
                                   "demo.png (source | edit | changed tokens) and demo.json to --out.")
    d.add_argument("--prompt", default=None, help="source prompt in the embedded world's words "
                   f"(default: {EXAMPLE_SOURCE!r})")
    d.add_argument("--edit", default=None, help=f"atm / aredit: the edit prompt (default: {EXAMPLE_EDIT!r}); "
                   f"editar / varedit: the instruction (default: {EXAMPLE_INSTRUCTION!r})")
    d.add_argument("--seed", type=int, default=0, help="seed of the source and the edit (0 .. 2**64 - 1)")
    d.add_argument("--method", choices=["atm", "aredit", "editar", "varedit"], default="atm",
                   help="atm: Anchor Token Matching on the LlamaGen-architecture models; aredit: AREdit on the "
                        "Infinity-architecture ones; editar / varedit: the embedded instruction editors, editing "
                        "the render of --prompt by the instruction --edit")
    d.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the embedded models' own)")
    d.add_argument("--K", type=int, default=None, help="ATM: candidates drawn per token (default: the model's own)")
    d.add_argument("--alpha", type=float, default=None,
                   help="ATM: how fast the candidate window shrinks (default: the model's own)")
    d.add_argument("--tau", type=float, default=None,
                   help="ATM: how close a candidate must be to keep the source (default: the model's own)")
    d.add_argument("--candidates", choices=["distinct", "sampled"], default=None,
                   help="ATM candidate draws (default: sampled for the embedded models, else distinct)")
    d.add_argument("--gamma", type=int, default=None, help="AREdit: scales reused (default: the embedded default)")
    d.add_argument("--threshold", type=float, default=None,
                   help="AREdit: probability drop that resamples a bit (default: the embedded default)")
    d.add_argument("--out", default="demo_output", help="folder for demo.png and demo.json")
    c = sub.add_parser("convert", formatter_class=fmt, help="convert an official .pt checkpoint (or a Janus-Pro "
                       "folder of .bin files) to .safetensors",
                       description="Convert a checkpoint to .safetensors with its config in the metadata, after "
                                   "a strict load; or a Janus-Pro folder as DeepSeek ships it (pytorch_model*.bin) "
                                   "to a folder of safetensors shards, every other file copied. The source is never "
                                   "changed.")
    c.add_argument("src", help="the checkpoint file, or the Janus-Pro folder, to convert")
    c.add_argument("dst", nargs="?", help="output path (default: next to src, .safetensors; a folder: "
                   "<src>-safetensors)")
    c.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None, help="cast the weights (default: keep)")
    c.add_argument("--image-size", type=int, default=None, help="LlamaGen: the resolution the model was made for "
                   "(default: from the file name)")
    c.add_argument("--n-head", type=int, default=None,
                   help="LlamaGen: attention heads, for a file whose width x layers matches no preset")
    c.add_argument("--overwrite", action="store_true", help="replace an existing destination file")
    m = sub.add_parser("models", formatter_class=fmt, help="list the model files a workflow (or the pack) needs; "
                       "download them", description="Lists every model file a workflow needs (or, without "
                       "--workflow, every file the pack's loaders offer) with its size, where it goes and whether "
                       "it is there; --download fetches the missing official files with progress. Exit status 0 "
                       "when nothing is missing.")
    m.add_argument("--workflow", action="append", default=[], help="a workflow .json (UI or API format); repeatable")
    m.add_argument("--jobs", action="append", default=[], help="a batch jobs file (.jsonl): the files its jobs name "
                   "(fetch them once before a cluster run); repeatable")
    m.add_argument("--models-dir", default=default_models_dir(), help="ComfyUI's models folder")
    m.add_argument("--download", action="store_true", help="download the missing official files")
    b = sub.add_parser("batch", formatter_class=fmt, help="run a jobs file (one edit per line) into a folder",
                       description="Runs every job of a JSONL jobs file (README: Batch jobs) and writes DIR/images/<id>.png "
                                   "and a row per job in DIR/results.jsonl as jobs finish. Compatible jobs run as one "
                                   "batch; a failed job is recorded with its error and the others go on; running the "
                                   "same command again skips the jobs already done (resume after a crash or Ctrl-C).")
    b.add_argument("jobs", help="the jobs file (.jsonl)")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray cluster (pip install -r requirements-batch.txt)")
    b.add_argument("--address", default=None, help="ray: the cluster's address (e.g. ray://head:10001, auto, or "
                   "local for a fresh instance of this run's own); default: the cluster in RAY_ADDRESS or the one "
                   "`ray start` left on this machine, else a new one")
    b.add_argument("--workers", type=int, default=None, help="ray: model-holding actors (default: one per GPU; "
                   "without GPUs, one per --cpus-per-worker CPUs)")
    b.add_argument("--cpus-per-worker", type=int, default=None, help="ray without GPUs: CPUs (torch threads) per "
                   "actor (default: 1, or the cluster's CPUs shared by --workers; raise it for big models, each "
                   "actor holds its own copy)")
    b.add_argument("--batch-size", type=int, default=None, help="jobs per batch at most (default: 32)")
    b.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda when there is one)")
    b.add_argument("--threads", type=int, default=None, help="local: CPU threads for torch (default: torch's own)")
    b.add_argument("--models-dir", default=default_models_dir(), help="ComfyUI's models folder")
    b.add_argument("--no-download", action="store_true", help="never download a missing official file")
    sj = sub.add_parser("shapes-jobs", formatter_class=fmt, help="write the ShapesEdit benchmark as a jobs file",
                        description="Renders the ShapesEdit cases (source, target, changed-pixel mask) and writes "
                                    "DIR/jobs.jsonl: one job per case and method, with the benchmark's prompts and "
                                    "seeds, on the embedded models. Then: python -m ar_edit_pack batch DIR/jobs.jsonl --out "
                                    "DIR/results, and python -m ar_edit_pack summary DIR/results.")
    sj.add_argument("--out", required=True, help="folder for jobs.jsonl and the case pictures")
    sj.add_argument("--cases", type=int, default=200, help="edit cases")
    sj.add_argument("--case-seed", type=int, default=0, help="0: the benchmark's cases; 1: the validation cases")
    sj.add_argument("--rows", default="all", help="comma list of: naive, atm, naive-infinity, aredit, editar, varedit")
    sj.add_argument("--overwrite", action="store_true", help="replace an existing jobs file in --out")
    sm = sub.add_parser("summary", formatter_class=fmt, help="the ShapesEdit table of a batch run's results",
                        description="Reads DIR/results.jsonl (the last row of every job) and prints background PSNR / "
                                    "SSIM, success, structure and exact match per row label and edit kind.")
    sm.add_argument("results", help="a batch output folder or its results.jsonl")
    args = p.parse_args(argv)
    try:
        return {"demo": _demo, "convert": _convert, "models": _models, "batch": _batch, "shapes-jobs": _shapes_jobs,
                "summary": _summary}[args.cmd](args)
    except (ValueError, OSError, RuntimeError) as e:  # disk full, a read-only folder, ...: one clear line
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
