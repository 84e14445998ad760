"""The shipped embedded models meet the quality floors (a reduced ShapesEdit benchmark on a fixed subset;
the full one is tools/shapes_benchmark.py). These load embedded/*.safetensors: a missing or broken file
fails here, on purpose, because the pack's main job runs on them."""
import pytest
import torch

from ar_edit_pack.core import embedded
from ar_edit_pack.core import shapes_bench as bench
from ar_edit_pack.core import shapes_world as world

VQ_PSNR_FLOOR = 30.0  # dB on held-out scenes
T2I_FLOOR = 0.90  # share of generated images whose parsed objects equal the caption's


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(2)
    return embedded.load_embedded()


def test_vq_reconstruction_floor(models):
    _, _, vq = models
    assert bench.vq_psnr(vq, n=100) >= VQ_PSNR_FLOOR


def test_text_to_image_floor(models):
    gpt, text, vq = models
    assert bench.t2i_accuracy(gpt, text, vq, n=100)["objects_match"] >= T2I_FLOOR


def test_atm_preserves_what_naive_editing_re_rolls(models):
    gpt, text, vq = models
    cases = world.edit_cases(50, seed=0)  # ten of each kind
    naive = bench.summarize(bench.edit_benchmark(gpt, text, vq, cases, "naive"))["all"]
    atm = bench.summarize(bench.edit_benchmark(gpt, text, vq, cases, "atm", bench.EMBEDDED_ATM))["all"]
    assert atm["bg_psnr"] >= naive["bg_psnr"] + 3.0
    assert atm["exact"] >= naive["exact"] + 0.3  # uncaptioned textures kept
    assert atm["success"] >= 0.85
