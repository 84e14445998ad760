"""Hostile files and careless inputs (issue 28): nothing the user had is overwritten, nothing unbounded is built, and
every refusal names the problem, before any work."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

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


def test_a_batchs_pictures_are_held_as_their_files_bytes_and_a_broken_one_is_its_jobs_error(tmp_path):
    from PIL import Image

    from ar_edit_pack.core.batch import engine
    from ar_edit_pack.core.batch.jobs import read_jobs
    from ar_edit_pack.core.batch.store import latest_rows
    from ar_edit_pack.core.batch.worker import JobFailed, Prepared

    Image.new("RGB", (48, 48), "white").save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])  # a download cut off
    job = {"method": "atm", "prompt": "a red circle at the top left on a white background"}
    lines = [{**job, "id": "ok", "source": "ok.png"}, {**job, "id": "cut", "source": "cut.png"}]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    ok, cut = read_jobs(str(tmp_path / "jobs.jsonl"))
    held = Prepared(ok)
    assert held.source.data == data  # the compressed file, not its pixels
    assert not any(isinstance(v, torch.Tensor) for v in vars(held.source).values())
    assert held.source.pixels().shape == (1, 48, 48, 3)
    with pytest.raises(JobFailed, match=r"cannot read the image .*cut\.png"):
        Prepared(cut)
    summary = engine.run_jobs(str(tmp_path / "jobs.jsonl"), str(tmp_path / "out"), progress=False, device="cpu",
                              allow_download=False)
    rows = latest_rows(str(tmp_path / "out" / "results.jsonl"))
    assert (summary.ok, summary.failed) == (1, 1) and "cut.png" in rows["cut"]["error"]


def test_a_full_disk_mid_run_is_one_line_and_loses_nothing(tmp_path, capsys, monkeypatch):
    import errno

    from ar_edit_pack.core.__main__ import main
    from ar_edit_pack.core.batch import store

    assert main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", "3", "--rows", "atm"]) == 0
    jobs = tmp_path / "se" / "jobs.jsonl"
    lines = jobs.read_text().splitlines()
    jobs.write_text("\n".join(lines[:2]) + "\n")  # the comment line and the first job
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--out", str(out), "--no-download"]) == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    jobs.write_text("\n".join(lines) + "\n")
    real_fsync = os.fsync

    def full(fd):  # the disk fills up while a picture is being written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    capsys.readouterr()
    assert main(["batch", str(jobs), "--out", str(out), "--no-download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "cannot write the result of job" in err[0]
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the earlier result and its row stand; no half-written picture is left
    monkeypatch.setattr(store.os, "fsync", real_fsync)
    assert main(["batch", str(jobs), "--out", str(out), "--no-download"]) == 0
    assert "1 already done before" in capsys.readouterr().out


def test_a_conversion_that_runs_out_of_disk_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import errno

    import safetensors.torch

    from ar_edit_pack.core.__main__ import main

    src = save_official_pt(tiny_gpt(), str(tmp_path / "gpt.pt"))
    digest = _digest(src)
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"the user's own file")

    def full(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(["convert", src, "--n-head", str(TINY_HEADS)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert main(["convert", src, str(mine), "--n-head", str(TINY_HEADS), "--overwrite"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt.pt", "mine.safetensors"] and _digest(src) == digest
    assert mine.read_bytes() == b"the user's own file"  # replaced only once the new file is whole


def test_a_read_only_results_folder_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import builtins

    from ar_edit_pack.core.__main__ import main

    assert main(["shapes-jobs", "--out", str(tmp_path / "se"), "--cases", "1", "--rows", "atm"]) == 0
    out = tmp_path / "out"
    real_open = builtins.open

    def read_only(file, mode="r", *a, **k):  # as on a folder mounted read-only (root ignores chmod)
        if str(file).startswith(str(out)) and any(c in mode for c in "wax+"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", read_only)
    capsys.readouterr()
    assert main(["batch", str(tmp_path / "se" / "jobs.jsonl"), "--out", str(out), "--no-download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Permission denied" in err[0]


class _FakeRay:
    """Ray's documented ray.init resolution (RAY_ADDRESS, else the cluster `ray start` recorded, else a new
    instance; "local" always new), including its refusal of num_cpus when joining."""

    def __init__(self, recorded):
        import types

        self.recorded, self.calls = recorded, []
        self.ray = types.ModuleType("ray")
        self.ray.is_initialized = lambda: False
        self.ray.init = self.init
        self.ray.shutdown = lambda: self.calls.append("shutdown")
        self.ray.data = types.ModuleType("ray.data")
        self.ray.data.DataContext = types.SimpleNamespace(get_current=self.joined)
        private, utils = types.ModuleType("ray._private"), types.ModuleType("ray._private.utils")
        utils.read_ray_address = lambda temp_dir=None: self.recorded
        private.utils = utils
        self.modules = {"ray": self.ray, "ray.data": self.ray.data, "ray._private": private,
                        "ray._private.utils": utils}

    def init(self, address=None, num_cpus=None, **kwargs):
        joins = address != "local" and (os.environ.get("RAY_ADDRESS") or address not in (None, "auto")
                                         or self.recorded)
        if joins and num_cpus is not None:
            raise ValueError("When connecting to an existing cluster, num_cpus and num_gpus must not be provided.")
        self.calls.append(("init", address, num_cpus))

    def joined(self):
        raise LookupError("reached the cluster")  # where the test stops the run


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_ray_joins_a_running_cluster_and_names_a_stale_one(monkeypatch):
    import socket

    from ar_edit_pack.core.batch import engine

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    head = socket.socket()
    head.bind(("127.0.0.1", 0))
    head.listen()
    fake = _FakeRay(f"127.0.0.1:{head.getsockname()[1]}")  # `ray start --head` is running here
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)

    def run(address):
        return next(engine._ray_results([[]], "models", "cpu", address, None, None, False))

    with pytest.raises(LookupError, match="reached the cluster"):
        run(None)
    assert fake.calls == [("init", None, None), "shutdown"]
    head.close()
    fake.calls.clear()
    fake.recorded = f"127.0.0.1:{_closed_port()}"  # the recorded cluster has since died
    with pytest.raises(RuntimeError, match=r"\(the cluster `ray start` recorded on this machine\) does not answer"
                                           r".*`ray stop`.*--address local"):
        run(None)
    assert fake.calls == []  # refused at once, not after Ray's minutes of retries
    with pytest.raises(LookupError):
        run("local")  # a fresh instance of the run's own, with every CPU
    assert fake.calls[0] == ("init", "local", os.cpu_count())
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(RuntimeError, match=r"\(RAY_ADDRESS\) does not answer.*unset RAY_ADDRESS"):
        run(None)


def ceiling_cases(tmp_path, t5_dir) -> dict[str, tuple[str, str]]:
    """case -> (its file or folder, what the refusal says) for tests/ceiling_cases.py."""
    from PIL import Image, ImageDraw
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    gpt = tmp_path / "gpt.safetensors"
    loaders.save_model(tiny_gpt(), gpt)
    with safe_open(str(gpt), "pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta[loaders.CONFIG_KEY])
    save_file(load_file(gpt), gpt, metadata={**meta, loaders.CONFIG_KEY: json.dumps({**cfg, "image_size": 48000})})
    big = tmp_path / "big-t5"
    shutil.copytree(t5_dir, big)
    t5 = json.loads((big / "config.json").read_text())
    (big / "config.json").write_text(json.dumps({**t5, "d_model": 16384, "num_layers": 24, "d_ff": 65536}))
    prompt = tmp_path / "prompt.txt"  # 2.7 MB, 30,000 lines
    prompt.write_text("\n".join(["a small red circle at the top left and a small blue square at the bottom right"
                                 " on a white background"] * 30_000))
    jobs = tmp_path / "batch"
    jobs.mkdir()
    im = Image.new("RGB", (4096, 4096), "white")  # the largest picture a job may have; 63 KB as a PNG
    ImageDraw.Draw(im).ellipse((200, 200, 1200, 1200), fill="red")
    im.save(jobs / "big.png")
    job = {"method": "atm", "prompt": "a blue circle at the top left on a white background", "source": "big.png"}
    (jobs / "jobs.jsonl").write_text("\n".join(json.dumps({**job, "id": f"j{i}", "seed": i}) for i in range(32)))
    return {"image_size": (str(gpt), "image_size 48000 is beyond"),
            "t5_config": (str(big), "declares a T5 encoder of"),
            "prompt_lines": (str(prompt), "30000 prompts (one per line); a batch runs at most 256"),
            "shapes_cases": (str(tmp_path / "se"), "refused: shapes-jobs"),
            "batch": (str(jobs), "ran: 32 ok, 0 failed")}


# Above what the imports took: the tiny models and one 4096 x 4096 picture at a time fit; a 48000 px table (3.2 GB),
# a 300 GB T5, 30,000 encoded prompts (3.6 GB), a billion cases, or a batch holding 32 decoded 4096 x 4096
# pictures (1.6 GB) do not.
CEILING_MB = 700


@pytest.mark.parametrize("case", ["image_size", "t5_config", "prompt_lines", "shapes_cases", "batch"])
def test_bounded_cases_are_refused_within_a_memory_ceiling(case, tmp_path, t5_dir):
    import subprocess

    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc/self/status are Linux's")
    arg, expected = ceiling_cases(tmp_path, t5_dir)[case]
    runner = os.path.join(os.path.dirname(__file__), "ceiling_cases.py")
    done = subprocess.run([sys.executable, runner, case, arg, str(CEILING_MB)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_file_that_is_no_workflow_is_one_clear_line(tmp_path, capsys):
    from ar_edit_pack.core.__main__ import main
    from ar_edit_pack.core.files.model_files import workflow_files

    bad = ['[1, 2]', '{"nodes": 5}', "[" * 100_000 + "]" * 100_000, '{"nodes": [', "caf\xe9"]
    for i, text in enumerate(bad):
        path = tmp_path / f"w{i}.json"
        path.write_bytes(text.encode("cp1252"))
        assert main(["models", "--workflow", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: cannot read the workflow {path}"), err
    # odd nodes are skipped, and a loader inside a subgraph still counts
    loader = {"type": "ARE_LlamaGenLoader", "widgets_values": ["t2i_XL_stage1_256.pt"]}
    odd = {"nodes": [5, {"widgets_values": 5}, {"type": ["x"]}], "definitions": {"subgraphs": [{"nodes": [loader]}]}}
    assert workflow_files(odd) == [("autoregressive", "t2i_XL_stage1_256.pt")]
    assert workflow_files({"1": {"class_type": "X", "inputs": 5}, "2": 7}) == []
