"""What the shipped no-download workflows and the command line's demos show, read from their pictures: the parsed
scene is the asked one, and the pictures are pinned (each 16 px cell's mean colour, within a few levels: the noise is
a function of the seed alone, so a changed picture means changed behaviour). A deliberate change re-pins with
AR_EDIT_UPDATE_PINS=1 python -m pytest tests/test_shipped_pictures.py, and the diff of pinned_pictures.json shows it."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from ar_edit_pack.core.__main__ import EXAMPLE_EDIT, EXAMPLE_SOURCE
from ar_edit_pack.core.shapes import world

from conftest import ROOT
from graph import run_graph, ui_to_api

PINS = os.path.join(os.path.dirname(__file__), "pinned_pictures.json")
UPDATE = os.environ.get("AR_EDIT_UPDATE_PINS") == "1"
TOLERANCE = 3  # levels of 255 per cell mean: float rounding across CPUs moves a few pixels by one level, no more


def cell_means(image) -> list[list[int]]:
    """A 48 px picture (HWC, 0..1 or uint8) -> the mean colour of each of its 3 x 3 cells, in 0..255."""
    arr = np.asarray(image, dtype=np.float64)
    arr = arr * 255 if arr.max() <= 1.0 else arr
    assert arr.shape[:2] == (world.SIZE, world.SIZE), arr.shape
    cells = arr.reshape(3, 16, 3, 16, 3).mean((1, 3)).reshape(9, 3)
    return np.round(cells).astype(int).tolist()


@pytest.fixture(scope="module")
def pins():
    data = json.load(open(PINS)) if os.path.isfile(PINS) else {}
    yield data
    if UPDATE:
        with open(PINS, "w") as f:  # one picture per line: a re-pin's diff names the pictures that moved
            f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(data[k])}" for k in sorted(data)) + "\n}\n")


def check_pinned(pins, key: str, image) -> None:
    got = cell_means(image)
    if UPDATE:
        pins[key] = got
        return
    assert key in pins, f"no pinned picture for {key}: run with AR_EDIT_UPDATE_PINS=1"
    diff = np.abs(np.array(got) - np.array(pins[key])).max()
    assert diff <= TOLERANCE, f"{key}: a cell's mean colour moved by {diff} levels"


def scene(image) -> world.Scene:
    """The objects and background a picture shows (IMAGE HWC in 0..1, or a uint8 panel)."""
    return world.parse_image(image.numpy() if isinstance(image, torch.Tensor) else image).captioned()


SOURCE, TARGET = world.parse_caption(EXAMPLE_SOURCE), world.parse_caption(EXAMPLE_EDIT)
EDGES_CAPTION = "a green star at the top right and a small purple circle at the bottom left on a pink background"
# workflow -> {node id: (its output index, the scene the picture must show)} (node ids from tools/make_workflows.py)
SHOWN = {
    "01": {9: (0, SOURCE), 10: (0, TARGET)},
    "02": {9: (0, SOURCE), 10: (0, TARGET)},
    "03": {6: (0, TARGET)},
    "04": {6: (0, world.parse_caption(EDGES_CAPTION))},
    "05": {5: (0, TARGET)},
    "06": {15: (0, TARGET), 21: (0, TARGET), 23: (0, TARGET), 24: (0, TARGET)},
    "07": {9: (0, SOURCE), 10: (0, TARGET)},
    "08": {9: (0, SOURCE), 10: (0, TARGET)},
}


@pytest.fixture(scope="module")
def workflow_results():
    torch.set_num_threads(2)
    out = {}
    for prefix in SHOWN:
        [name] = [f for f in os.listdir(os.path.join(ROOT, "workflows")) if f.startswith(prefix) and f.endswith(".json")]
        api = ui_to_api(json.load(open(os.path.join(ROOT, "workflows", name))))
        out[prefix] = run_graph(api, {"SaveImage": lambda images, filename_prefix: (),
                                      "PreviewImage": lambda images: ()})
    return out


CASES = [pytest.param(p, n, id=f"{p}-node{n}") for p, nodes in SHOWN.items() for n in nodes]


@pytest.mark.parametrize("prefix,node", CASES)
def test_no_download_workflow_shows_the_asked_scene(workflow_results, pins, prefix, node):
    slot, expected = SHOWN[prefix][node]
    image = workflow_results[prefix][str(node)][slot][0]
    check_pinned(pins, f"workflow {prefix} node {node}", image)
    assert scene(image) == expected


def _demo_panels(method, tmp_path):
    """`python -m ar_edit_pack demo --method ...` as a user runs it -> its source and edit panels at 48 px."""
    from PIL import Image

    from ar_edit_pack.core.__main__ import main

    assert main(["demo", "--method", method, "--out", str(tmp_path)]) == 0
    sheet = np.asarray(Image.open(tmp_path / "demo.png").convert("RGB"))
    side = sheet.shape[0]
    small = lambda k: np.asarray(Image.fromarray(sheet[:, k * side:(k + 1) * side]).resize((48, 48), Image.NEAREST))
    return small(0), small(1)


@pytest.mark.parametrize("method", ["atm", "aredit", "varedit", "editar"])
def test_demo_shows_the_asked_edit(method, tmp_path, pins):
    source, edited = _demo_panels(method, tmp_path)
    check_pinned(pins, f"demo {method} source", source)
    check_pinned(pins, f"demo {method} edit", edited)
    assert scene(source) == SOURCE
    assert scene(edited) == TARGET


def test_the_no_download_workflows_save_their_48_px_results_enlarged_with_crisp_pixels():
    saved = []
    [name] = [f for f in os.listdir(os.path.join(ROOT, "workflows")) if f.startswith("01") and f.endswith(".json")]
    api = ui_to_api(json.load(open(os.path.join(ROOT, "workflows", name))))
    out = run_graph(api, {"SaveImage": lambda images, filename_prefix: saved.append((filename_prefix, images)) or (),
                          "PreviewImage": lambda images: ()})
    assert sorted(p for p, _ in saved) == ["shapes_edit", "shapes_source"]
    for prefix, images in saved:
        small = out["10" if prefix == "shapes_edit" else "9"][0]  # the 48 px decode the file was made from
        factor = images.shape[1] // world.SIZE
        assert images.shape[1:3] == (world.SIZE * factor, world.SIZE * factor) and factor * world.SIZE >= 384
        assert torch.equal(images, small.repeat_interleave(factor, 1).repeat_interleave(factor, 2))
