"""Hostile files and careless inputs (issue 28): nothing the user had is overwritten, nothing unbounded is built, and
every refusal names the problem, before any work."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.files.checkpoints import CheckpointError

from tiny_models import TINY_HEADS, save_official_pt, tiny_gpt


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_convert_never_writes_over_its_source_nor_an_existing_file(tmp_path):
    src = save_official_pt(tiny_gpt(), str(tmp_path / "t2i_tiny_64.pt"))
    before = _digest(src)
    os.symlink(tmp_path, tmp_path / "linked")  # the same folder under another path
    os.symlink(src, tmp_path / "alias.pt")  # the same file under another name
    for dst in (tmp_path / "linked" / "t2i_tiny_64.pt", tmp_path / "alias.pt"):
        with pytest.raises(ValueError, match="is the source file itself"):
            loaders.convert_to_safetensors(src, dst, precision="fp16", n_head=TINY_HEADS)
    assert _digest(src) == before
    other = tmp_path / "mine.safetensors"
    other.write_bytes(b"the user's own file")
    with pytest.raises(ValueError, match="exists already.*--overwrite"):
        loaders.convert_to_safetensors(src, other, n_head=TINY_HEADS)
    assert other.read_bytes() == b"the user's own file"
    loaders.convert_to_safetensors(src, other, n_head=TINY_HEADS, overwrite=True)
    assert loaders.load_gpt(other).cfg.n_head == TINY_HEADS and _digest(src) == before


def test_jobs_whose_pictures_would_collide_are_refused_by_line(tmp_path):
    from ar_edit_pack.core.batch.jobs import Job, JobError, read_jobs

    base = {"method": "atm", "source": {"prompt": "a red circle at the top left on a white background", "seed": 1},
            "prompt": "a blue circle at the top left on a white background"}
    lines = [{**base, "id": "a"}, {**base, "id": "a.source"}, {**base, "id": "A"}, {**base, "id": "b"}]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    out = read_jobs(str(path))
    assert [type(o) for o in out] == [Job, JobError, JobError, Job]
    assert "'a.source' would write the same picture as the job on line 1" in out[1].error
    assert "'A' would write the same picture as the job on line 1" in out[2].error


def test_a_link_cycle_in_the_models_folder_is_listed_once(tmp_path, monkeypatch):
    from ar_edit_pack.nodes import comfy_bridge

    folder = tmp_path / "models" / "autoregressive"
    folder.mkdir(parents=True)
    (folder / "t2i_tiny_64.pt").write_bytes(b"x")
    os.symlink(".", folder / "again")
    os.symlink(".", folder / "and_again")
    (folder / "real").mkdir()
    os.symlink("..", folder / "real" / "up")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(tmp_path / "models"))
    assert comfy_bridge.list_files("autoregressive") == ["t2i_tiny_64.pt"]


def test_a_t5_config_asking_for_more_than_its_weights_is_refused_before_allocating(t5_dir, tmp_path):
    from ar_edit_pack.core.text.encoders import T5TextEncoder

    big = tmp_path / "big-t5"
    shutil.copytree(t5_dir, big)
    cfg = json.loads((big / "config.json").read_text())
    cfg.update(d_model=16384, num_layers=24, d_ff=65536)
    (big / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"declares a T5 encoder of [\d.]+ billion parameters .* but the folder's "
                                         r"weights are"):
        T5TextEncoder(big)


def test_a_t5_folder_missing_weights_is_refused_not_left_random(t5_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from ar_edit_pack.core.text.encoders import T5TextEncoder

    part = tmp_path / "part-t5"
    shutil.copytree(t5_dir, part)
    [weights] = [n for n in os.listdir(part) if n.endswith(".safetensors")]
    state = load_file(part / weights)
    save_file({k: v for k, v in state.items() if "block.1." not in k}, part / weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"the weights lack \d+ of the encoder's tensors \(encoder\.block\.1\."):
        T5TextEncoder(part)


def test_an_absurd_image_size_in_a_files_metadata_is_refused_before_any_table(tmp_path):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "gpt.safetensors"
    loaders.save_model(tiny_gpt(), path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta[loaders.CONFIG_KEY])
    cfg["image_size"] = 48000
    save_file(load_file(path), path, metadata={**meta, loaders.CONFIG_KEY: json.dumps(cfg)})
    with pytest.raises((ValueError, CheckpointError), match=r"image_size 48000 is beyond .*\(1 \.\. 4096 px\)"):
        loaders.load_gpt(path)


def test_prompt_lines_and_case_counts_are_bounded_before_work(tmp_path):
    from ar_edit_pack.core.__main__ import main
    from ar_edit_pack.nodes import TextEncode, TextEncoderLoader

    (text,) = TextEncoderLoader().load("(embedded) shapes-words", "fp32", "cpu")
    many = "\n".join(["a red circle at the top left on a white background"] * 300)
    with pytest.raises(ValueError, match=r"300 prompts \(one per line\); a batch runs at most 256"):
        TextEncode().encode(text, many, True)
    assert main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", "1000000000"]) == 2
    assert not (tmp_path / "se").exists()


def test_one_bad_line_is_that_lines_error_and_the_others_are_read(tmp_path):
    from ar_edit_pack.core.batch.jobs import Job, JobError, read_jobs

    good = json.dumps({"id": "ok", "method": "atm", "prompt": "a blue circle at the top left on a white background",
                       "source": {"prompt": "a red circle at the top left on a white background", "seed": 1}})
    lines = [b'{"id": "caf\xe9"}',  # one cp1252 byte
             b"[" * 100_000 + b"]" * 100_000,  # nested far too deeply
             b'{"id": "big", "seed": ' + b"9" * 5000 + b"}",  # a 5,000-digit number
             b'{"id": "\\ud800"}',  # a lone surrogate escape
             good.encode()]
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = read_jobs(str(path))
    assert [type(o) for o in out] == [JobError] * 4 + [Job]
    assert [o.line for o in out] == [1, 2, 3, 4, 5]
    assert "not UTF-8 text (byte 12" in out[0].error and "nested too deeply" in out[1].error
    assert "not valid JSON" in out[2].error and "not valid JSON" in out[3].error


def test_foreign_lines_in_a_results_file_do_not_break_later_runs(tmp_path):
    from ar_edit_pack.core.batch.store import latest_rows

    path = tmp_path / "results.jsonl"
    rows = ['5', '"text"', '{"no": "id"}', '{"id": "x", "status": "ok"}', '{"id": 7}',
            '{"id": "y", "status": "ok", "image": "images/y.png"}', '{"id": "z", "status": "failed", "error": "e"}']
    path.write_text("\n".join(rows) + "\n")
    assert set(latest_rows(str(path))) == {"y", "z"}


def test_a_shard_index_cannot_reach_outside_its_folder(tmp_path):
    from safetensors.torch import save_file

    from ar_edit_pack.core.files.checkpoints import read_sharded

    secret = tmp_path / "elsewhere.safetensors"
    save_file({"w": torch.zeros(1)}, secret)
    folder = tmp_path / "models" / "autoregressive" / "sharded"
    folder.mkdir(parents=True)
    for target in ("../../../elsewhere.safetensors", str(secret)):
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": target}}))
        with pytest.raises(CheckpointError, match="names shards outside its folder"):
            read_sharded(folder)
    (folder / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable shard index"):
        read_sharded(folder)


def test_one_run_per_results_folder_and_clear_lines_for_bad_folders_and_devices(tmp_path, capsys):
    from ar_edit_pack.core.__main__ import main
    from ar_edit_pack.core.batch.store import ResultStore

    assert main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", "2", "--rows", "atm"]) == 0
    jobs = str(tmp_path / "se" / "jobs.jsonl")
    assert main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", "2", "--rows", "atm"]) == 2
    assert "exists already" in capsys.readouterr().err
    first = ResultStore(str(tmp_path / "out"))  # a run in progress
    assert main(["batch", jobs, "--out", str(tmp_path / "out"), "--no-download"]) == 2
    assert "another run is writing into" in capsys.readouterr().err
    first.close()
    (tmp_path / "a_file").write_text("x")
    assert main(["batch", jobs, "--out", str(tmp_path / "a_file"), "--no-download"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["batch", jobs, "--out", str(tmp_path / "gpu"), "--device", "cuda:7", "--no-download"]) == 2
        assert "this torch has no CUDA" in capsys.readouterr().err
    assert main(["batch", jobs, "--out", str(tmp_path / "out"), "--no-download"]) == 0  # the lock was let go


def test_a_huge_picture_in_a_small_file_is_that_jobs_error_before_decoding(tmp_path):
    from PIL import Image

    from ar_edit_pack.core.batch import engine
    from ar_edit_pack.core.batch.store import latest_rows

    Image.new("RGB", (9000, 9000), "white").save(tmp_path / "huge.png")  # ~260 KB on disk, 81 megapixels
    assert os.path.getsize(tmp_path / "huge.png") < 2_000_000
    Image.new("RGB", (48, 48), "white").save(tmp_path / "small.png")
    job = {"method": "atm", "prompt": "a red circle at the top left on a white background"}
    lines = [{**job, "id": "huge", "source": "huge.png"}, {**job, "id": "small", "source": "small.png"}]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    summary = engine.run_jobs(str(tmp_path / "jobs.jsonl"), str(tmp_path / "out"), progress=False, device="cpu",
                              allow_download=False)
    rows = latest_rows(str(tmp_path / "out" / "results.jsonl"))
    assert (summary.ok, summary.failed) == (1, 1)
    assert "is 9000 x 9000 pixels; a job reads at most 16,777,216" in rows["huge"]["error"]
    assert rows["small"]["status"] == "ok"


def test_a_job_cannot_take_the_id_of_an_unreadable_lines_record(tmp_path):
    from ar_edit_pack.core.batch.jobs import Job, JobError, read_jobs

    job = {"method": "atm", "prompt": "a blue circle at the top left on a white background",
           "source": {"prompt": "a red circle at the top left on a white background", "seed": 1}}
    (tmp_path / "jobs.jsonl").write_text("{broken\n" + json.dumps({**job, "id": "line-1"}) + "\n"
                                         + json.dumps({**job, "id": "fine"}) + "\n")
    out = read_jobs(str(tmp_path / "jobs.jsonl"))
    assert [type(o) for o in out] == [JobError, JobError, Job] and [o.id for o in out[:2]] == ["line-1", "line-2"]
    assert "'line-1' is kept for the error of an unreadable line" in out[1].error


def test_a_t5_folder_whose_shard_index_has_not_arrived_is_not_complete(tmp_path):
    from ar_edit_pack.core.files.model_files import is_complete

    folder = tmp_path / "flan-t5-xl"
    folder.mkdir()
    for name in ("config.json", "spiece.model", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        (folder / name).write_bytes(b"x")
    assert not is_complete(str(folder), "text_encoders")
    (folder / "model.safetensors.index.json").write_text('{"weight_map": {"a": "model-00001-of-00002.safetensors", '
                                                           '"b": "model-00002-of-00002.safetensors"}}')
    assert is_complete(str(folder), "text_encoders")
    (folder / "model.safetensors.index.json").write_text('{"weight_map": ')  # cut off mid-download
    assert not is_complete(str(folder), "text_encoders")
