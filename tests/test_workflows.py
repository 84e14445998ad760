"""Every shipped workflow loads against the registered nodes and runs end to end on tiny models."""
import glob
import json
import os
import shutil

import pytest
import torch

from ar_edit_pack import NODE_CLASS_MAPPINGS

from conftest import ROOT
from graph import VIRTUAL, input_specs, run_graph, ui_to_api, widget_names
from tiny_models import (TINY_HEADS, save_official_pt, save_tiny_chameleon_vqgan, save_tiny_janus, save_tiny_lumina, tiny_gpt,
                         tiny_infinity, tiny_infinity_vae, tiny_vq)

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
BUILTIN = {  # ComfyUI's own nodes: input types, widget names, output types
    "SaveImage": ({"images": "IMAGE"}, ["filename_prefix"], []),
    "PreviewImage": ({"images": "IMAGE"}, [], []),
    "LoadImage": ({}, ["image", "upload"], ["IMAGE", "MASK"]),
    "MaskToImage": ({"mask": "MASK"}, [], ["IMAGE"]),
    "PrimitiveStringMultiline": ({}, ["value"], ["STRING"]),
}


def workflow(prefix: str) -> str:
    """The shipped workflow whose file name (its title in ComfyUI's template browser) starts with `prefix`."""
    found = [p for p in WORKFLOWS if os.path.basename(p).startswith(prefix)]
    assert len(found) == 1, (prefix, found)
    return found[0]


def test_there_are_workflows():
    assert WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_is_valid_against_the_nodes(path):
    wf = json.load(open(path))
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert wf["last_node_id"] >= max(nodes) and wf["last_link_id"] >= max((l[0] for l in wf["links"]), default=0)
    for link_id, src, src_slot, dst, dst_slot, typ in wf["links"]:
        assert nodes[src]["outputs"][src_slot]["type"] == typ and link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["type"] == typ and nodes[dst]["inputs"][dst_slot]["link"] == link_id
    for node in wf["nodes"]:
        t = node["type"]
        if t in VIRTUAL:
            continue
        if t in BUILTIN:
            ins, widgets, outs = BUILTIN[t]
            assert {i["name"]: i["type"] for i in node["inputs"]} == ins
            assert len(node["widgets_values"]) == len(widgets) and [o["type"] for o in node["outputs"]] == outs
            continue
        assert t in NODE_CLASS_MAPPINGS, f"unknown node type {t}"
        cls = NODE_CLASS_MAPPINGS[t]
        specs = input_specs(t)
        linked = {i["name"] for i in node["inputs"] if i["link"] is not None}
        required = cls.INPUT_TYPES()["required"]
        for name, spec in required.items():
            if (name, spec) not in widget_names(t):
                assert name in linked, f"{t}: required input {name} is not connected"
        for i in node["inputs"]:
            assert i["type"] == specs[i["name"]][0]
        assert [o["type"] for o in node["outputs"]] == list(cls.RETURN_TYPES)
        values = list(node["widgets_values"])
        for name, spec in widget_names(t):
            value = values.pop(0)
            kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
            if isinstance(kind, list):
                assert value in kind, f"{t}.{name}: {value!r} is not one of the choices"
            elif kind in ("INT", "FLOAT"):
                assert isinstance(value, (int, float)) and opts["min"] <= value <= opts["max"], (t, name, value)
                if kind == "INT":
                    assert isinstance(value, int)
            elif kind == "BOOLEAN":
                assert isinstance(value, bool)
            elif kind == "STRING":
                assert isinstance(value, str)
            if opts.get("control_after_generate"):
                assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")
        assert not values, f"{t}: {len(values)} widget values too many"


@pytest.fixture()
def tiny_models_dir(tmp_path, t5_dir, monkeypatch):
    root = tmp_path / "models"
    for d in ("autoregressive", "vq", "text_encoders"):
        (root / d).mkdir(parents=True)
    save_official_pt(tiny_gpt(), str(root / "autoregressive" / "t2i_tiny_64.pt"))
    save_official_pt(tiny_vq(), str(root / "vq" / "vq_tiny.pt"))
    from test_editar import tiny_editar
    save_official_pt(tiny_editar(), str(root / "autoregressive" / "editar_tiny_64.pt"))
    shutil.copytree(t5_dir, root / "text_encoders" / "tiny-t5")
    torch.save(tiny_infinity().state_dict(), root / "autoregressive" / "infinity_tiny.pth")  # plain, as the 2B file
    torch.save({"vae": tiny_infinity_vae().state_dict()}, root / "vq" / "infinity_vae_tiny.pth")
    torch.save(tiny_infinity().state_dict(), root / "autoregressive" / "varedit_tiny.pth")
    save_tiny_lumina(root / "autoregressive" / "lumina-tiny")
    save_tiny_janus(root / "autoregressive" / "janus-tiny")
    save_tiny_chameleon_vqgan(root / "vq" / "chameleon-tiny")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(root))
    return root


SUBSTITUTE = {  # run shipped workflows on the tiny models (the real files cannot be downloaded here), each family's
    "ARE_LlamaGenLoader": {"model_name": "t2i_tiny_64.pt", "n_head": TINY_HEADS},  # a custom size: stated
    "ARE_EditARLoader": {"model_name": "editar_tiny_64.pt", "n_head": TINY_HEADS},
    "ARE_VQLoader": {"tokenizer_name": "vq_tiny.pt"},
    "ARE_TextEncoderLoader": {"encoder_name": "tiny-t5"},
    "ARE_ImageToTokens": {"size": 64},
    "ARE_InfinityLoader": {"model_name": "infinity_tiny.pth"},
    "ARE_VAREditLoader": {"model_name": "varedit_tiny.pth"},
    "ARE_BSQVAELoader": {"tokenizer_name": "infinity_vae_tiny.pth"},
    "ARE_InfinityGenerate": {"resolution": "256"},  # 256 px keeps the tiny Infinity runs at 7 scales
    "ARE_ImageToBits": {"size": 256},
    "ARE_LuminaLoader": {"model_name": "lumina-tiny"},
    "ARE_ChameleonVQGANLoader": {"vqgan_name": "chameleon-tiny"},
    "ARE_LuminaGenerate": {"width": 64, "height": 64, "prompt": "a red circle"},  # the tiny tokenizer's words
    "ARE_LuminaEdit": {"prompt": "a blue circle"},
    "ARE_JanusLoader": {"model_name": "janus-tiny"},
}


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_runs_end_to_end_on_tiny_models(path, tiny_models_dir):
    api = ui_to_api(json.load(open(path)), {t: w for t, (_, w, _) in BUILTIN.items()})
    loaders = [n for n in api.values() if n["class_type"].endswith("Loader")]
    shipped = all(any(str(v).startswith("(embedded)") for v in n["inputs"].values()) for n in loaders)
    for node in ([] if shipped else api.values()):  # the embedded models ship with the pack: run those as they are
        node["inputs"].update(SUBSTITUTE.get(node["class_type"], {}))
    saved = []
    mask = torch.zeros(1, 80, 96)
    mask[:, 20:60, 30:70] = 1
    builtins = {
        "SaveImage": lambda images, filename_prefix: saved.append(images) or (),
        "PreviewImage": lambda images: saved.append(images) or (),
        "LoadImage": lambda image, upload: (torch.rand(1, 80, 96, 3), mask),
        "MaskToImage": lambda mask: (mask[..., None].expand(*mask.shape, 3),),
    }
    run_graph(api, builtins)
    assert saved
    for images in saved:
        assert images.dim() == 4 and images.shape[-1] == 3 and images.min() >= 0 and images.max() <= 1


# What the no-download workflows show (parsed scenes, pinned pixels): tests/test_shipped_pictures.py


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_has_a_note_groups_and_a_thumbnail(path):
    """#18: each template explains itself (what, files, first step), frames its stages without overlap, and has a
    picture for ComfyUI's template browser."""
    from ar_edit_pack.core.files.model_files import KNOWN_FILES, workflow_files

    wf = json.load(open(path))
    notes = [n for n in wf["nodes"] if n["type"] in VIRTUAL]
    assert len(notes) == 1 and "First:" in notes[0]["widgets_values"][0]
    text = notes[0]["widgets_values"][0]
    files = workflow_files(wf)
    if all(name.startswith("(embedded)") for _, name in files):
        assert "Nothing to download" in text and os.path.basename(path).split(" - ")[0].endswith("No download")
    else:
        for kind, name in files:  # Meta's Chameleon VQGAN is not on the hub: named with its folder only
            assert (f"{name} (~{KNOWN_FILES[name].approx_gb:g} GB, models/{kind})" if name in KNOWN_FILES
                    else f"{name} (models/{kind})") in text
    if any(n["type"] == "LoadImage" and any(i["name"] == "MASK" and i["links"] for i in n["outputs"]) for n in wf["nodes"]):
        assert "paint" in text.lower()
    boxes = [g["bounding"] for g in wf["groups"]]
    assert len(boxes) >= 3
    for i, (x, y, w, h) in enumerate(boxes):
        for (x2, y2, w2, h2) in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "groups overlap"
    for node in wf["nodes"]:
        if node["type"] in VIRTUAL:
            continue
        (x, y), (w, h) = node["pos"], node["size"]
        inside = [g for g in boxes if g[0] <= x and x + w <= g[0] + g[2] and g[1] <= y and y + h <= g[1] + g[3]]
        assert len(inside) == 1, f"node {node['id']} ({node['type']}) is not in exactly one group"
    assert os.path.isfile(os.path.splitext(path)[0] + ".jpg"), "no thumbnail"


def test_a_workflow_saved_before_the_compile_widget_still_loads():
    """Workflows shared before `compile` existed lack its value; like the front end, it takes its default."""
    wf = json.load(open(os.path.join(ROOT, "workflows", "10 LlamaGen text to image.json")))
    node = next(n for n in wf["nodes"] if n["type"] == "ARE_Generate")
    assert node["widgets_values"][-1] == "auto"
    node["widgets_values"] = node["widgets_values"][:-1]
    api = ui_to_api(wf, {t: w for t, (_, w, _) in BUILTIN.items()})
    inputs = api[str(node["id"])]["inputs"]
    assert inputs["compile"] == "auto" and inputs["top_p"] == wf["nodes"][wf["nodes"].index(node)]["widgets_values"][-1]


@pytest.mark.parametrize("prefix, texts", [("04", 1), ("06", 3)])
def test_a_text_typed_once_reaches_every_node_that_reads_it(prefix, texts):
    """#27: one edit means typing its caption / instruction once, not into every node that reads it."""
    wf = json.load(open(workflow(prefix)))
    strings = {str(n["id"]): n for n in wf["nodes"] if n["type"] == "PrimitiveStringMultiline"}
    assert len(strings) == texts and all(n.get("title") for n in strings.values())
    for n in strings.values():
        n["widgets_values"][0] = f"typed in {n['title']}"
    api = ui_to_api(wf)
    readers = [(node_id, name, value) for node_id, node in api.items() for name, value in node["inputs"].items()
               if name in ("caption", "prompt", "instruction")]
    assert readers and all(isinstance(v, list) and v[0] in strings for _, _, v in readers)  # none typed of its own
    assert all(sum(v[0] == s for _, _, v in readers) >= (1 if texts == 1 else 2) for s in strings)
    values = run_graph({k: v for k, v in api.items() if k in strings})
    assert {values[s][0] for s in strings} == {f"typed in {n['title']}" for n in strings.values()}
