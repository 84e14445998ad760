import json
import os

import pytest

from ar_edit_pack.core.files.model_files import KNOWN_FILES, ModelFileMissing, ensure_local, is_complete, known_files


def test_offline_message_names_file_repo_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelFileMissing) as e:
        ensure_local("t2i_XL_stage2_512.pt", str(tmp_path / "autoregressive"))
    msg = str(e.value)
    assert "t2i_XL_stage2_512.pt" in msg and "peizesun/llamagen_t2i" in msg
    assert os.path.join(str(tmp_path / "autoregressive"), "t2i_XL_stage2_512.pt") in msg


def test_download_failure_is_reported_the_same_way(tmp_path, monkeypatch):
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


def test_sharded_folder_completeness_and_download(tmp_path, monkeypatch):
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


def test_download_from_a_sub_path_lands_under_the_file_name(tmp_path, monkeypatch):
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
