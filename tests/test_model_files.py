import json
import json
import os

import pytest

from ar_edit_pack.core.files import model_files
from ar_edit_pack.core.files.model_files import KNOWN_FILES, ModelFileMissing, ensure_local, is_complete, known_files


@pytest.fixture()
def online(monkeypatch):
    """The hub answers (the downloads themselves are stand-ins)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(model_files, "hub_reachable", lambda timeout=3.0: True)


def test_offline_message_names_file_repo_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFileMissing) as e:
        ensure_local("t2i_XL_stage2_512.pt", str(tmp_path / "autoregressive"))
    msg = str(e.value)
    assert "t2i_XL_stage2_512.pt" in msg and "peizesun/llamagen_t2i" in msg
    assert os.path.join(str(tmp_path / "autoregressive"), "t2i_XL_stage2_512.pt") in msg


def test_download_failure_is_reported_the_same_way(tmp_path, monkeypatch, online):
    import huggingface_hub

    def fail(**kwargs):
        raise OSError("network is unreachable")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(ModelFileMissing, match="network is unreachable") as e:
        ensure_local("vq_ds16_t2i.pt", str(tmp_path))
    assert "peizesun/llamagen_t2i" in str(e.value)


def test_local_files_win_and_unknown_names_fail(tmp_path):
    (tmp_path / "mine.safetensors").write_bytes(b"x")
    assert ensure_local("mine.safetensors", str(tmp_path)) == str(tmp_path / "mine.safetensors")
    with pytest.raises(ModelFileMissing, match="not found"):
        ensure_local("other.safetensors", str(tmp_path))


def test_incomplete_t5_folder_is_not_taken_as_complete(tmp_path):
    d = tmp_path / "flan-t5-xl"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "spiece.model").write_bytes(b"x")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                                              "b": "model-00002-of-00002.safetensors"}}))
    (d / "model-00001-of-00002.safetensors").write_bytes(b"x")
    assert not is_complete(str(d), "text_encoders")
    (d / "model-00002-of-00002.safetensors").write_bytes(b"x")
    assert is_complete(str(d), "text_encoders")


def test_known_files_cover_the_official_releases():
    assert {"t2i_XL_stage1_256.pt", "t2i_XL_stage2_512.pt"} <= set(known_files("autoregressive"))
    assert {"vq_ds16_t2i.pt", "vq_ds16_c2i.pt", "vq_ds8_c2i.pt", "infinity_vae_d32reg.pth",
            "infinity_vae_d56_f8_14_patchify.pth"} == set(known_files("vq"))
    assert {"infinity_2b_reg.pth", "infinity_8b_weights"} <= set(known_files("autoregressive"))
    assert KNOWN_FILES["flan-t5-xl"].repo_id == "google/flan-t5-xl"


def test_sharded_folder_completeness_and_download(tmp_path, monkeypatch, online):
    import huggingface_hub

    d = tmp_path / "infinity_8b_weights"
    assert not is_complete(str(d), "autoregressive")
    d.mkdir()
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}))
    (d / "s1.safetensors").write_bytes(b"x")
    assert not is_complete(str(d), "autoregressive")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda **kw: calls.append(kw) or (d / "s2.safetensors").write_bytes(b"x"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert ensure_local("infinity_8b_weights", str(tmp_path)) == str(d)
    assert calls[0]["allow_patterns"] == ["infinity_8b_weights/*"] and calls[0]["local_dir"] == str(tmp_path)
    assert is_complete(str(d), "autoregressive")


def test_download_from_a_sub_path_lands_under_the_file_name(tmp_path, monkeypatch, online):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, repo_type, local_dir):
        calls.append((repo_id, filename, repo_type))
        target = os.path.join(local_dir, filename)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "wb").write(b"weights")
        return target
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = ensure_local("editar_release.pt", str(tmp_path))
    assert calls == [("JitengMu/CVPR2025_EditAR_release", "editar_release/editar_release.pt", "dataset")]
    assert path == str(tmp_path / "editar_release.pt") and open(path, "rb").read() == b"weights"


def test_offline_is_detected_at_once_without_trying_a_download(tmp_path, monkeypatch):
    """No hub: one failed connect, no call into the download client (whose retries cost ~24 s per file)."""
    import socket

    import huggingface_hub

    connects = []

    def refuse(address, timeout=None):
        connects.append(address)
        raise OSError("no route to host")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(model_files, "_REACHABLE", {})
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: pytest.fail("tried to download offline"))
    for name in ("vq_ds16_t2i.pt", "t2i_XL_stage2_512.pt"):
        with pytest.raises(ModelFileMissing, match="cannot be reached: offline"):
            ensure_local(name, str(tmp_path))
    assert connects == [("huggingface.co", 443)]  # checked once for both files


def test_workflow_files_reads_both_formats():
    ui = {"nodes": [{"type": "ARE_LlamaGenLoader", "widgets_values": ["t2i_XL_stage2_512.pt", "auto", "auto", 0]},
                    {"type": "ARE_VQLoader", "widgets_values": ["vq_ds16_t2i.pt", "fp32"]},
                    {"type": "ARE_VQLoader", "widgets_values": ["vq_ds16_t2i.pt", "fp32"]},
                    {"type": "SaveImage", "widgets_values": ["x"]}]}
    api = {"1": {"class_type": "ARE_TextEncoderLoader", "inputs": {"encoder_name": "flan-t5-xl"}},
           "2": {"class_type": "ARE_LlamaGenLoader", "inputs": {"model_name": "(embedded) shapes-t2i"}}}
    assert model_files.workflow_files(ui) == [("autoregressive", "t2i_XL_stage2_512.pt"), ("vq", "vq_ds16_t2i.pt")]
    assert model_files.workflow_files(api) == [("text_encoders", "flan-t5-xl"), ("autoregressive", "(embedded) shapes-t2i")]


def test_models_command_lists_every_file_of_a_workflow(tmp_path, capsys, monkeypatch):
    from ar_edit_pack.core.__main__ import main

    from conftest import ROOT

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "vq").mkdir()
    (tmp_path / "vq" / "vq_ds16_t2i.pt").write_bytes(b"x")
    wf = os.path.join(ROOT, "workflows", "30 EditAR instruction edit.json")
    assert main(["models", "--workflow", wf, "--models-dir", str(tmp_path)]) == 1  # something is missing
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["vq_ds16_t2i.pt"].split()[0] == "present"
    assert lines["editar_release.pt"].split()[0] == "MISSING" and "~3.1 GB" in lines["editar_release.pt"]
    assert str(tmp_path / "autoregressive" / "editar_release.pt") in lines["editar_release.pt"]
    assert lines["flan-t5-xl"].split()[0] == "MISSING" and "1 present, 2 missing" in out
    # --download goes on past a failure and names every file it could not get
    assert main(["models", "--workflow", wf, "--models-dir", str(tmp_path), "--download"]) == 1
    err = capsys.readouterr().err
    assert "editar_release.pt (~3.1 GB) is not in" in err and "flan-t5-xl (~" in err
    assert "python -m ar_edit_pack models --workflow <workflow.json> --download" in err  # the one command
    embedded_only = os.path.join(ROOT, "workflows", "01 No download - ATM edit (embedded LlamaGen models).json")
    assert main(["models", "--workflow", embedded_only, "--models-dir", str(tmp_path)]) == 0
    # a batch jobs file: the files its jobs name (a generated source's model too), each once
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in [
        {"method": "atm", "source": {"prompt": "a red circle"}, "prompt": "a blue circle",
         "models": {"model": "t2i_XL_stage2_512.pt", "tokenizer": "vq_ds16_t2i.pt", "text_encoder": "flan-t5-xl"}},
        {"method": "varedit", "source": {"prompt": "a red circle"}, "instruction": "make it blue"}]))
    capsys.readouterr()
    assert main(["models", "--jobs", str(jobs), "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    names = [line[12:52].strip() for line in out.splitlines() if line.startswith("  ")]  # the name column
    assert names[:3] == ["t2i_XL_stage2_512.pt", "vq_ds16_t2i.pt", "flan-t5-xl"] and len(names) == len(set(names))
    assert "(embedded) shapes-varedit" in names and "(embedded) shapes-infinity" in names  # varedit's source model


def test_loaders_name_every_missing_file_before_anything_runs(tmp_path, monkeypatch):
    """ComfyUI runs VALIDATE_INPUTS of every node before executing any: each loader's problem shows at once."""
    from ar_edit_pack.nodes.loaders import EditARLoader as ModelLoader, TextEncoderLoader, VQLoader as TokenizerLoader

    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = [ModelLoader.VALIDATE_INPUTS("editar_release.pt"), TokenizerLoader.VALIDATE_INPUTS("vq_ds16_t2i.pt"),
                TextEncoderLoader.VALIDATE_INPUTS("flan-t5-xl")]
    assert all(isinstance(p, str) for p in problems)
    assert "editar_release.pt" in problems[0] and str(tmp_path / "autoregressive") in problems[0]
    assert "vq_ds16_t2i.pt" in problems[1] and "google/flan-t5-xl" in problems[2]
    assert "not in" in ModelLoader.VALIDATE_INPUTS("my_finetune.safetensors")
    for outside in ("../secret.pt", "/etc/passwd", "sub/../../x.pt"):  # the widget list no longer guards the name
        assert "not a path out of it" in ModelLoader.VALIDATE_INPUTS(outside)
    assert ModelLoader.VALIDATE_INPUTS("(embedded) shapes-t2i") is True
    (tmp_path / "vq").mkdir()
    (tmp_path / "vq" / "vq_ds16_t2i.pt").write_bytes(b"x")
    assert TokenizerLoader.VALIDATE_INPUTS("vq_ds16_t2i.pt") is True
    monkeypatch.setattr(model_files, "hub_reachable", lambda timeout=3.0: True)
    assert ModelLoader.VALIDATE_INPUTS("editar_release.pt") is True  # online: downloaded when the node runs
