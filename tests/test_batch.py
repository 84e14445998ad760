"""Batch jobs (`python -m ar_edit_pack batch`): the local and Ray engines on the embedded models, the ShapesEdit benchmark
through a jobs file, failures recorded per job, resume after an interrupted run."""
from __future__ import annotations

import json
import re
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ar_edit_pack.core import __main__ as cli
from ar_edit_pack.core.batch import engine, shapes_jobs, store
from ar_edit_pack.core.batch.jobs import Job, JobError, JobSpecError, parse_job, read_jobs
from ar_edit_pack.core.shapes import bench, world
from ar_edit_pack.core.defaults import defaults
from ar_edit_pack.core.shapes.embedded import embedded_defaults, load_embedded, load_embedded_editor, load_embedded_infinity

SOURCE = "a red circle at the top left and a small blue square in the center on a white background"


def _run(jobs_path, out, **kw):
    kw.setdefault("progress", False)
    return engine.run_jobs(str(jobs_path), str(out), models_dir=str(out) + "-models", allow_download=False, **kw)


def _rows(out) -> dict:
    return store.latest_rows(os.path.join(out, "results.jsonl"))


def _write(path, jobs: list) -> str:
    with open(path, "w") as f:
        for j in jobs:
            f.write((j if isinstance(j, str) else json.dumps(j)) + "\n")
    return str(path)


def _png(out, row) -> np.ndarray:
    return np.asarray(Image.open(os.path.join(out, row["image"])))


def test_shapes_edit_through_jobs_matches_the_benchmark(tmp_path, capsys):
    """Every method's ShapesEdit scores from the batch run (read from the PNGs it wrote) equal the benchmark
    functions' on the same cases and seeds: same success / exact per case, background PSNR within rounding."""
    n = 6
    assert cli.main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", str(n)]) == 0
    assert cli.main(["batch", str(tmp_path / "se" / "jobs.jsonl"), "--out", str(tmp_path / "res"), "--no-download",
                     "--models-dir", str(tmp_path / "models")]) == 0
    rows = _rows(tmp_path / "res")
    assert len(rows) == n * len(shapes_jobs.SHAPES_ROWS) and all(r["status"] == "ok" for r in rows.values())
    cases = world.edit_cases(n, seed=0)
    gpt, text, vq = load_embedded()
    net, _, vae = load_embedded_infinity()
    editar, instructions = load_embedded_editor("editar")
    varedit, _ = load_embedded_editor("varedit")
    naive_inf, aredit = bench.aredit_benchmark(net, text, vae, cases, [bench.AREditSettings(0, -2.0), defaults(net, "aredit")])
    expected = {"naive": bench.edit_benchmark(gpt, text, vq, cases, "naive"),
                "atm": bench.edit_benchmark(gpt, text, vq, cases, "atm"), "naive-infinity": naive_inf, "aredit": aredit,
                "editar": bench.editar_benchmark(editar, instructions, vq, cases),
                "varedit": bench.varedit_benchmark(varedit, instructions, vae, cases)}
    for prefix, scores in expected.items():
        for i, s in enumerate(scores):
            m = rows[f"{prefix}-{i:04d}"]["metrics"]
            structure = float("nan") if m["structure"] is None else m["structure"]
            assert (m["success"], m["exact"], m["kind"]) == (s.success, s.exact, s.kind), (prefix, i)
            assert structure == s.structure or (structure != structure and s.structure != s.structure), (prefix, i)
            mse = lambda db: 10 ** (-db / 10)  # the PNG is rounded to 8 bits: its noise is (1/255)^2 / 12
            assert abs(mse(m["bg_psnr"]) - mse(s.bg_psnr)) < 4e-6, (prefix, i, m["bg_psnr"], s.bg_psnr)
    capsys.readouterr()
    assert cli.main(["summary", str(tmp_path / "res")]) == 0
    table = capsys.readouterr().out
    for label in shapes_jobs.SHAPES_ROWS:
        assert f"| {label} | all |" in table
    assert f"{n * 6} jobs done, 0 failed" in table


def test_every_method_edits_a_generated_source_and_a_region_keeps_the_rest(tmp_path):
    mask = np.zeros((48, 48), np.uint8)
    mask[:16, :16] = 255  # the top-left cell
    Image.fromarray(mask).save(tmp_path / "top_left.png")
    edit = SOURCE.replace("red circle", "green circle")
    jobs = [{"id": "atm", "method": "atm", "source": {"prompt": SOURCE, "seed": 4}, "prompt": edit},
            {"id": "atm-region", "method": "atm", "source": {"prompt": SOURCE, "seed": 4}, "prompt": edit,
             "region": "top_left.png"},
            {"id": "aredit", "method": "aredit", "source": {"prompt": SOURCE, "seed": 4}, "prompt": edit},
            {"id": "editar", "method": "editar", "source": {"prompt": SOURCE, "seed": 4},
             "instruction": "make the red circle green"},
            {"id": "varedit", "method": "varedit", "source": {"prompt": SOURCE, "seed": 4},
             "instruction": "make the red circle green", "region": "top_left.png"}]
    summary = _run(_write(tmp_path / "jobs.jsonl", jobs), tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert summary.ok == 5 and all(r["status"] == "ok" for r in rows.values())
    for r in rows.values():
        src, out = np.asarray(Image.open(tmp_path / "out" / r["source_image"])), _png(tmp_path / "out", r)
        assert src.shape == out.shape == (48, 48, 3)
        assert r["seed"] == 4  # a generated source's seed is the edit's unless the job says otherwise
    for job in ("atm-region", "varedit"):  # the region changed (red -> green), outside it the source is kept
        m = rows[job]["metrics"]
        src = np.asarray(Image.open(tmp_path / "out" / rows[job]["source_image"])).astype(int)
        assert m["bg_psnr"] > 35 and np.abs(_png(tmp_path / "out", rows[job])[:16, :16] - src[:16, :16]).mean() > 20, m
    # the same source prompt and seed give the same source picture, whichever edit follows
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / rows["atm"]["source_image"])),
                          np.asarray(Image.open(tmp_path / "out" / rows["atm-region"]["source_image"])))


def test_bad_jobs_are_recorded_with_their_error_and_the_others_finish(tmp_path):
    Image.fromarray(world.render(world.parse_caption(SOURCE))).save(tmp_path / "src.png")
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp_path / "empty.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    good = {"method": "atm", "source": "src.png", "prompt": SOURCE.replace("blue", "yellow")}
    jobs = [{**good, "id": "good-1"},
            {**good, "id": "missing-image", "source": "nope.png"},
            {**good, "id": "unknown-word", "prompt": "a purple elephant on a white background"},
            {**good, "id": "bad-param", "params": {"alpha": 3}},
            {**good, "id": "unknown-param", "params": {"temprature": 1}},
            {**good, "id": "broken-image", "source": "broken.png"},
            {**good, "id": "empty-region", "region": "empty.png"},
            {"id": "crossed-encoder", "method": "editar", "source": "src.png", "instruction": "make the square red",
             "models": {"text_encoder": "(embedded) shapes-words"}},
            {"id": "no-caption", "method": "aredit", "source": "src.png", "prompt": SOURCE},
            "{this is not json",
            {**good, "id": "good-1"},  # an id used twice
            {**good, "id": "good-2", "seed": 7}]
    path = _write(tmp_path / "jobs.jsonl", jobs)
    assert cli.main(["batch", path, "--out", str(tmp_path / "out"), "--no-download"]) == 1  # some failed
    rows = _rows(tmp_path / "out")
    assert rows["good-1"]["status"] == rows["good-2"]["status"] == "ok"
    expected_errors = {"missing-image": "no such file", "unknown-word": "'elephant'", "bad-param": "alpha",
                       "unknown-param": "temprature", "broken-image": "cannot read the image",
                       "empty-region": "region mask is empty", "crossed-encoder": "reads captions",
                       "no-caption": "needs source_prompt", "line-10": "not valid JSON", "line-11": "already used"}
    by_name = {r.get("given_id", r["id"]) if r["id"] != "line-11" else "line-11": r for r in rows.values()}
    assert by_name["line-11"]["given_id"] == "good-1"  # the second good-1 is an error of its own line
    for job_id, words in expected_errors.items():
        row = by_name[job_id]
        assert row["status"] == "error" and words in row["error"], (job_id, row)
    assert not os.path.exists(tmp_path / "out" / "images" / "missing-image.png")


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    cases = world.edit_cases(6, seed=3)
    jobs = []
    for i, e in enumerate(cases):
        Image.fromarray(world.render(e.source)).save(tmp_path / f"s{i}.png")
        jobs.append({"id": f"j{i}", "method": "atm" if i % 2 else "naive", "source": f"s{i}.png", "prompt": e.prompt,
                     "seed": i})
    path = _write(tmp_path / "jobs.jsonl", jobs)
    reference = _run(path, tmp_path / "ref", batch_size=1)
    assert reference.ok == 6

    out = tmp_path / "out"
    written = []

    def crash_after_three(row):
        written.append(row["id"])
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the run goes on
    first = _run(path, out, batch_size=1, on_result=crash_after_three)
    assert first.interrupted and first.ok == 3
    with open(out / "results.jsonl", "a") as f:
        f.write('{"id": "j5", "status": "o')  # and a row torn by a crash
    second = _run(path, out, batch_size=1)
    assert (second.skipped, second.ok, second.failed) == (3, 3, 0)
    rows = _rows(out)
    assert sorted(rows) == [f"j{i}" for i in range(6)] and all(r["status"] == "ok" for r in rows.values())
    ref_rows = _rows(tmp_path / "ref")
    for job_id in rows:  # nothing lost or changed by the interruption
        assert np.array_equal(_png(out, rows[job_id]), _png(tmp_path / "ref", ref_rows[job_id])), job_id
    assert all(json.loads(line) for line in open(out / "results.jsonl"))  # the torn line is gone

    # a rerun of a finished file does nothing; a changed job, or a deleted picture, is done again
    assert _run(path, out, batch_size=1).ok == 0
    jobs[2]["params"] = {"cfg": 2.0}
    os.remove(out / rows["j4"]["image"])
    third = _run(_write(tmp_path / "jobs.jsonl", jobs), out, batch_size=1)
    assert (third.skipped, third.ok) == (4, 2)
    assert _rows(out)["j2"]["params"]["cfg"] == 2.0


def test_ray_engine_gives_the_local_engines_results(tmp_path):
    pytest.importorskip("ray")
    se = tmp_path / "se"
    shapes_jobs.write_shapes_jobs(str(se), cases=3, rows=["ATM", "AREdit", "EditAR", "VAREdit"])
    with open(se / "jobs.jsonl", "a") as f:
        f.write(json.dumps({"id": "generated", "method": "aredit", "source": {"prompt": SOURCE, "seed": 2},
                            "prompt": SOURCE.replace("blue", "green")}) + "\n")
        f.write(json.dumps({"id": "bad", "method": "atm", "source": "cases/0000.source.png", "prompt": "a unicorn"}) + "\n")
    threads = min(torch.get_num_threads(), os.cpu_count())  # the same arithmetic in both engines
    local = _run(se / "jobs.jsonl", tmp_path / "local", batch_size=2, threads=threads)
    ray = _run(se / "jobs.jsonl", tmp_path / "ray", engine="ray", batch_size=2, workers=1, cpus_per_worker=threads)
    assert (local.ok, local.failed) == (ray.ok, ray.failed) == (13, 1)
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    for job_id in a:
        assert a[job_id]["status"] == b[job_id]["status"] and b[job_id]["engine"] == "ray"
        if a[job_id]["status"] == "ok":
            assert np.array_equal(_png(tmp_path / "local", a[job_id]), _png(tmp_path / "ray", b[job_id])), job_id
            assert a[job_id]["metrics"] == b[job_id]["metrics"]
        else:
            assert a[job_id]["error"] == b[job_id]["error"]


def test_compatible_jobs_share_a_batch(tmp_path):
    Image.fromarray(world.render(world.parse_caption(SOURCE))).save(tmp_path / "src.png")
    base = {"method": "atm", "source": "src.png", "prompt": SOURCE}
    entries = [parse_job({**base, "id": f"a{i}", "params": {"tau": 0.5 * i, "K": 10 + i, "resize": ["center_crop",
                                                             "stretch"][i % 2]}, "seed": i}, i, str(tmp_path))
               for i in range(5)]  # what differs per row: seeds, tau, K, how each photo is fitted
    entries.append(parse_job({**base, "id": "hot", "params": {"temperature": 1.5}}, 9, str(tmp_path)))
    entries.append(parse_job({**base, "id": "gen", "source": {"prompt": SOURCE}}, 10, str(tmp_path)))
    entries.append(parse_job({**base, "id": "other", "method": "aredit", "source_prompt": SOURCE}, 11, str(tmp_path)))
    entries.append(parse_job({**base, "id": "naive", "method": "naive"}, 12, str(tmp_path)))
    groups = engine.plan(entries, batch_size=3)
    # the LlamaGen set's groups together (a worker keeps one set loaded), then the Infinity one
    assert [[j.id for j in g] for g in groups] == [["a0", "a1", "a2"], ["a3", "a4"], ["hot"], ["gen"], ["naive"],
                                                   ["other"]]
    with pytest.raises(ValueError, match="batch size"):
        engine.plan(entries, batch_size=0)


def test_job_lines_are_checked_before_anything_runs(tmp_path):
    Image.fromarray(world.render(world.parse_caption(SOURCE))).save(tmp_path / "src.png")
    base = {"method": "atm", "source": "src.png", "prompt": SOURCE}
    check = lambda spec: parse_job(spec, 1, str(tmp_path))
    job = check(base)
    assert job.params["K"] == embedded_defaults("llamagen", "atm").K
    assert job.params["cfg"] == embedded_defaults("llamagen", "sampling").cfg_scale == 1.5  # not the official 7.5
    assert job.models["model"] == "(embedded) shapes-t2i"
    assert check({**base, "seed": 2 ** 64 - 1}).seed == 2 ** 64 - 1 and check({**base, "seed": 3.0}).seed == 3
    official = check({**base, "models": {"model": "t2i_XL_stage1_256.pt", "tokenizer": "vq_ds16_t2i.pt",
                                         "text_encoder": "flan-t5-xl"}})
    assert official.params["cfg"] == 7.5 and official.params["top_k"] == 1000  # the nodes' defaults for real models
    for spec, words in [({**base, "method": "sdxl"}, "method must be one of"),
                        ({**base, "models": {"model": "t2i_XL_stage1_256.pt"}}, "models.tokenizer must be given"),
                        ({**base, "models": {"vae": "x"}}, "unknown model role"),
                        ({**base, "seed": -1}, "outside 0 .. 2**64 - 1"), ({**base, "seed": 1.5}, "whole number"),
                        ({**base, "params": {"K": 0}}, "K"), ({**base, "params": {"candidates": "many"}}, "candidates"),
                        ({**base, "prompt": "  "}, "non-empty"), ({**base, "id": "../x"}, "id must be"),
                        ({**base, "source": {"prompt": SOURCE, "image": "src.png"}}, "source must be"),
                        ({**base, "colour": 1}, "unknown field"),
                        ({**base, "method": "editar", "params": {"task": "canny"}, "source": {"prompt": SOURCE}},
                         "control map")]:
        with pytest.raises(JobSpecError, match=re.escape(words)):
            check(spec)
    # an id made from the content stays the same when lines move
    path_a = _write(tmp_path / "a.jsonl", [base, {**base, "seed": 1}])
    path_b = _write(tmp_path / "b.jsonl", ["# comment", {**base, "seed": 1}, "", base])
    ids = lambda p: sorted(e.id for e in read_jobs(p) if isinstance(e, Job))
    assert ids(path_a) == ids(path_b) and len(set(ids(path_a))) == 2
    assert not any(isinstance(e, JobError) for e in read_jobs(path_b))


def test_jobs_name_files_in_the_models_folder_as_the_loaders_do(tmp_path, t5_dir):
    """Official-layout checkpoints in models/autoregressive and models/vq, a T5 folder in models/text_encoders: a job
    names them as the loader nodes do, and gets the same edit as the core calls with those files."""
    import shutil

    import torch

    from ar_edit_pack.core import condition_from_text, decode_tokens_to_images, encode_images
    from ar_edit_pack.core.files.loaders import load_gpt, load_vq
    from ar_edit_pack.core.images import comfy_to_model
    from ar_edit_pack.core.llamagen.atm import ATMSettings, atm_edit, build_source_cache
    from ar_edit_pack.core.records import TokenBatch
    from ar_edit_pack.core.sampling import SamplingSettings
    from ar_edit_pack.core.text.encoders import T5TextEncoder
    from ar_edit_pack.core.files import loaders
    from tiny_models import TINY_HEADS, save_official_pt, tiny_gpt, tiny_vq

    models = tmp_path / "models"
    for d in ("autoregressive", "vq"):
        (models / d).mkdir(parents=True)
    # a custom-size file stores its head count (jobs name files only): the official layout converted as a user would
    official = save_official_pt(tiny_gpt(), str(tmp_path / "t2i_tiny_64.pt"))
    gpt_path = loaders.convert_to_safetensors(official, str(models / "autoregressive" / "t2i_tiny_64.safetensors"),
                                              n_head=TINY_HEADS)
    vq_path = save_official_pt(tiny_vq(), str(models / "vq" / "vq_tiny.pt"))
    shutil.copytree(t5_dir, models / "text_encoders" / "tiny-t5")
    photo = (np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8)  # not square, not 64 px
    Image.fromarray(photo).save(tmp_path / "photo.png")
    names = {"model": "t2i_tiny_64.safetensors", "tokenizer": "vq_tiny.pt", "text_encoder": "tiny-t5"}
    jobs = [{"id": "edit", "method": "atm", "source": "photo.png", "prompt": "a green star", "seed": 5,
             "params": {"K": 8, "tau": 0.5}, "models": names},
            {"id": "missing", "method": "atm", "source": "photo.png", "prompt": "a green star",
             "models": {**names, "model": "t2i_other_64.pt"}}]
    summary = engine.run_jobs(_write(tmp_path / "jobs.jsonl", jobs), str(tmp_path / "out"), models_dir=str(models),
                              allow_download=False, progress=False, device="cpu")
    rows = _rows(tmp_path / "out")
    assert (summary.ok, summary.failed) == (1, 1)
    assert "t2i_other_64.pt" in rows["missing"]["error"] and "autoregressive" in rows["missing"]["error"]
    assert rows["edit"]["params"]["cfg"] == 7.5  # official files: the nodes' defaults

    gpt, vq = load_gpt(gpt_path, precision="fp32"), load_vq(vq_path)
    t5 = T5TextEncoder(str(models / "text_encoders" / "tiny-t5"))
    image = torch.from_numpy(np.asarray(Image.open(tmp_path / "photo.png")).copy())[None].float() / 255
    ids = encode_images(vq, comfy_to_model(image, 64, "center_crop", vq.downsample))
    cache = build_source_cache(TokenBatch(ids, "encoded"), vq.quantize.codebook().float())
    result = atm_edit(gpt, cache, condition_from_text(t5.encode(["a green star"])), SamplingSettings(),
                      ATMSettings(K=8, tau=0.5, candidates="auto"), [5])
    want = decode_tokens_to_images(vq, result.tokens.view(1, 4, 4))
    want = (want.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(_png(tmp_path / "out", rows["edit"]), want)
