"""Writes the template-browser picture `<workflow>.jpg` beside every workflow in workflows/, each from a real run.

The no-download workflows run exactly as shipped. The others need files that cannot ship with the pack; they run
with each loader switched to the embedded model of the same family, their prompts to ShapesWorld captions and
instructions and their photo to a ShapesWorld scene, and their picture says so in a banner ("needs downloads").
Run from the repository root after tools/make_workflows.py: python tools/make_thumbnails.py
"""
from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_workflows import (EMBEDDED_AREDIT, EMBEDDED_EDITAR, EMBEDDED_INFINITY_SAMPLING, EMBEDDED_SAMPLING,  # noqa: E402
                            EMBEDDED_VAREDIT, SHAPES_INSTRUCTION, SHAPES_SOURCE, SHAPES_TARGET, SHAPES_TEXTURE_SEED,
                            load_pack)

load_pack()
from graph_runner import run_graph, ui_to_api  # noqa: E402

from ar_edit_pack.nodes.view import CompareGrid, ShapesScene  # noqa: E402

THUMB_SIDE = 400  # the browser shows a square card
EDIT_NODES = {"ARE_ATMEdit", "ARE_ATMSweep", "ARE_AREdit", "ARE_AREditSweep", "ARE_EditAR", "ARE_EditARSweep",
              "ARE_VAREdit", "ARE_VAREditSweep", "ARE_LuminaEdit", "ARE_LuminaSweep", "ARE_JanusEdit",
              "ARE_JanusSweep"}


# Each loader node's embedded model.
EMBEDDED_MODEL = {"ARE_LlamaGenLoader": "(embedded) shapes-t2i", "ARE_EditARLoader": "(embedded) shapes-editar",
                  "ARE_InfinityLoader": "(embedded) shapes-infinity", "ARE_VAREditLoader": "(embedded) shapes-varedit",
                  "ARE_VQLoader": "(embedded) shapes-vq", "ARE_BSQVAELoader": "(embedded) shapes-infinity-vae",
                  "ARE_LuminaLoader": "(embedded) shapes-lumina",
                  "ARE_ChameleonVQGANLoader": "(embedded) shapes-chameleon-vqgan",
                  "ARE_JanusLoader": "(embedded) shapes-janus"}


def on_embedded_models(api: dict) -> dict:
    """The same graph with the embedded models, ShapesWorld prompts and a ShapesWorld photo."""
    types = {n["class_type"] for n in api.values()}
    editor = "editar" if types & {"ARE_EditAR", "ARE_EditARSweep"} else (
        "varedit" if types & {"ARE_VAREdit", "ARE_VAREditSweep"} else None)
    readers = {nid: {api[dst]["class_type"] for dst, n in api.items() for v in n["inputs"].values()
                     if isinstance(v, list) and v[0] == nid} for nid in api}
    for nid, node in api.items():
        t, inputs = node["class_type"], node["inputs"]
        if t in EMBEDDED_MODEL:
            key = next(k for k in ("model_name", "tokenizer_name", "vqgan_name") if k in inputs)
            inputs[key] = EMBEDDED_MODEL[t]
        elif t == "ARE_LuminaGenerate":
            inputs.update(prompt=SHAPES_SOURCE, width=48, height=48)
        elif t == "ARE_JanusGenerate":
            inputs["prompt"] = SHAPES_SOURCE
        elif t in ("ARE_LuminaEdit", "ARE_JanusEdit", "ARE_JanusSweep"):
            inputs["prompt"] = SHAPES_TARGET
        elif t == "ARE_TextEncoderLoader":
            inputs["encoder_name"] = "(embedded) shapes-instructions" if editor else "(embedded) shapes-words"
        elif t in ("ARE_TextEncode", "ARE_InfinityTextEncode"):
            inputs["prompt"] = SHAPES_TARGET if readers[nid] & EDIT_NODES else SHAPES_SOURCE
        elif t in ("ARE_Generate", "ARE_ATMEdit"):
            inputs.update({k: v for k, v in EMBEDDED_SAMPLING.items() if k in inputs})
            if t == "ARE_ATMEdit":
                inputs["candidates"] = "sampled"
        elif t == "ARE_ATMSweep":
            inputs.update(cfg_values="1.5", candidates="sampled", top_k=0)
        elif t in ("ARE_InfinityGenerate", "ARE_AREditSource"):
            inputs.update({k: v for k, v in EMBEDDED_INFINITY_SAMPLING.items() if k in inputs})
            if "resolution" in inputs:
                inputs["resolution"] = "auto"
        elif t == "ARE_AREdit":
            inputs.update(EMBEDDED_AREDIT)
        elif t == "ARE_AREditSweep":
            inputs.update(gamma_values="0, 1", threshold_values="0.5, 0.8")
        elif t in ("ARE_EditAR", "ARE_EditARSweep"):
            inputs.update({k: v for k, v in EMBEDDED_EDITAR.items() if k in inputs})
            control = inputs.get("task") == "depth"  # the embedded editor reads edge maps instead
            inputs.update(task="canny", instruction=SHAPES_SOURCE) if control else inputs.update(instruction=SHAPES_INSTRUCTION)
        elif t in ("ARE_VAREdit", "ARE_VAREditSweep"):
            inputs.update({k: v for k, v in EMBEDDED_VAREDIT.items() if k in inputs}, instruction=SHAPES_INSTRUCTION,
                          resolution="auto")
            if "cfg_values" in inputs:
                inputs["cfg_values"] = "1.0, 1.5, 3.0"
        elif t in ("ARE_ImageToTokens", "ARE_ImageToBits"):
            inputs["size"] = 48
    return api


def _photo(api: dict):
    """LoadImage's stand-in: the ShapesWorld source scene (or its edge map for a map-to-image graph), and a mask
    over its centre cell (where the edit is)."""
    image_, edges, _ = ShapesScene().draw(SHAPES_SOURCE, SHAPES_TEXTURE_SEED)
    control = any(n["inputs"].get("task") == "canny" for n in api.values())
    mask = torch.zeros(1, 48, 48)
    mask[:, 16:32, 16:32] = 1
    return lambda image=None, upload=None: (edges if control else image_, mask)


GRID_NODES = {"ARE_CompareGrid": 0, "ARE_ATMSweep": 1, "ARE_AREditSweep": 1, "ARE_EditARSweep": 1, "ARE_VAREditSweep": 1,
              "ARE_LuminaSweep": 1, "ARE_JanusSweep": 1}


def _label(api: dict, node_id: str) -> str:
    """What a displayed picture is, from the node that made it."""
    t = api[node_id]["class_type"]
    if t == "ARE_MaskOverlay":
        return "where it changed"
    if t in ("ARE_TokensToImage", "ARE_BitsToImage", "ARE_LuminaCodesToImage"):
        src = api[node_id]["inputs"]["codes" if t == "ARE_LuminaCodesToImage" else "tokens"][0]
        editing = any(n["class_type"] in EDIT_NODES for n in api.values())
        return "edit" if api[src]["class_type"] in EDIT_NODES else ("source" if editing else "generated")
    return "edit" if t in EDIT_NODES else "source"


def shown_pictures(api: dict, results: dict) -> tuple[torch.Tensor | None, list[tuple[str, torch.Tensor]]]:
    """(the run's grid if it makes one, [(label, picture)] of everything it saves or previews)."""
    grid = next((results[nid][GRID_NODES[n["class_type"]]] for nid, n in api.items() if n["class_type"] in GRID_NODES),
                None)
    panels, seen = [], set()
    for n in api.values():
        if n["class_type"] in ("SaveImage", "PreviewImage"):
            src, slot = n["inputs"]["images"]
            if (src, slot) not in seen and api[src]["class_type"] not in GRID_NODES:
                seen.add((src, slot))
                panels.append((_label(api, src), results[src][slot][:1].cpu()))
    return grid, panels


def picture(grid: torch.Tensor | None, panels: list[tuple[str, torch.Tensor]], needs_downloads: bool) -> Image.Image:
    """The run's grid, else its pictures side by side (enlarged, labelled). Non-embedded workflows get a banner
    saying the picture is a stand-in."""
    if grid is None:
        order = {"source": 0, "generated": 0, "edit": 1, "where it changed": 2}
        panels = sorted(panels, key=lambda p: order.get(p[0], 3))[:3]
        (grid,) = CompareGrid().compare("\n".join(label for label, _ in panels), 128, 0,
                                        **{f"image_{i + 1}": t for i, (_, t) in enumerate(panels)})
    img = Image.fromarray((grid[0].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
    scale = THUMB_SIDE / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.NEAREST if scale >= 1 else Image.LANCZOS)
    card = Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (24, 24, 24))
    card.paste(img, ((THUMB_SIDE - img.width) // 2, (THUMB_SIDE - img.height) // 2))
    draw = ImageDraw.Draw(card)
    if needs_downloads:
        draw.rectangle([0, THUMB_SIDE - 44, THUMB_SIDE, THUMB_SIDE], fill=(150, 30, 30))
        draw.text((10, THUMB_SIDE - 38), "NEEDS MODEL DOWNLOADS", fill=(255, 255, 255))
        draw.text((10, THUMB_SIDE - 20), "picture: a run on the embedded stand-in models", fill=(255, 230, 230))
    else:
        draw.rectangle([0, 0, THUMB_SIDE, 26], fill=(30, 120, 50))
        draw.text((10, 7), "NO DOWNLOAD - runs on the embedded models", fill=(255, 255, 255))
    return card


def thumbnail(path: str) -> Image.Image:
    workflow = json.load(open(path))
    api = ui_to_api(workflow)
    loaders = {n["class_type"] for n in api.values() if n["class_type"].endswith("Loader")}
    no_stand_in = sorted(loaders - set(EMBEDDED_MODEL) - {"ARE_TextEncoderLoader"})
    if no_stand_in:  # a picture of another family's run would mislead: add the family's embedded set first
        raise SystemExit(f"{os.path.basename(path)}: no embedded stand-in for {', '.join(no_stand_in)}")
    embedded = all(str(n["inputs"].get(k, "(embedded)")).startswith("(embedded)") for n in api.values()
                   for k in ("model_name", "tokenizer_name", "encoder_name") if k in n["inputs"])
    if not embedded:
        api = on_embedded_models(api)
    torch.manual_seed(0)
    results = run_graph(api, {"SaveImage": lambda images, filename_prefix: (), "PreviewImage": lambda images: (),
                              "LoadImage": _photo(api)})
    return picture(*shown_pictures(api, results), not embedded)


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    for path in sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json"))):
        thumbnail(path).save(os.path.splitext(path)[0] + ".jpg", quality=90)
        print("wrote", os.path.basename(os.path.splitext(path)[0]) + ".jpg", flush=True)


if __name__ == "__main__":
    main()
