"""The pack is one installable package, `ar_edit_pack`, whose metadata says what requirements.txt says."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

from conftest import ROOT


def _pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _requirements(path: str) -> list[str]:
    with open(path) as f:
        lines = [l.split("#")[0].strip() for l in f]
    return [l for l in lines if l and not l.startswith("-")]


def test_requirements_and_pyproject_agree():
    deps = _pyproject()["project"]["dependencies"]
    assert sorted(deps) == sorted(_requirements(os.path.join(ROOT, "requirements.txt")))


def test_every_subpackage_is_in_the_distribution():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {"ar_edit_pack"}
    for top in ("core", "nodes"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                found.add("ar_edit_pack." + os.path.relpath(folder, ROOT).replace(os.sep, "."))
    assert listed == found


def test_a_wheel_holds_the_code_the_embedded_models_and_the_workflows(tmp_path):
    build = os.path.join(ROOT, "build")  # setuptools stages the wheel in the source folder: left as found
    had_build = os.path.exists(build)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), ROOT], capture_output=True, text=True, timeout=300)
    if not had_build:
        shutil.rmtree(build, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-2000:]
    [wheel] = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    names = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    for needed in ("ar_edit_pack/__init__.py", "ar_edit_pack/__main__.py", "ar_edit_pack/core/pipelines/llamagen.py",
                   "ar_edit_pack/nodes/loaders.py", "ar_edit_pack/embedded/shapes_gpt.safetensors",
                   "ar_edit_pack/workflows/01 No download - ATM edit (embedded LlamaGen models).json"):
        assert needed in names, needed
    assert not any(re.match(r"(core|nodes|tests|tools|bench)/", n) for n in names)  # no top-level name of its own
    shipped = [os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(os.path.join(ROOT, "embedded")) for f in fs]
    missing = [f for f in shipped if "ar_edit_pack/" + f.replace(os.sep, "/") not in names]
    assert not missing, f"embedded files left out of the wheel: {missing}"  # every embedded set runs when installed


def test_the_shipped_weights_fit_the_64_mb_budget():
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(ROOT, "embedded")) for f in fs)
    assert total <= 64e6, f"embedded/ holds {total / 1e6:.1f} MB"


def test_gpu_suite_dry_run_on_tiny_models(tmp_path):
    """bench/gpu_suite.py runs every case on the CPU with tiny models and writes its table."""
    import json
    import subprocess
    import sys

    out = tmp_path / "suite.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_suite.py"), "--preset", "tiny", "--device", "cpu",
                    "--compile", "off", "--out", str(out)], check=True, capture_output=True, timeout=600)
    rows = json.loads(out.read_text())["rows"]
    cases = {r["case"] for r in rows}
    assert {"LlamaGen t2i", "ATM edit, quarter mask, drafts", "EditAR", "AREdit 256 px", "VAREdit-2B 256 px"} <= cases
    assert all(r["seconds"] > 0 and r["tokens_equal_eager"] in (True, None) for r in rows)
