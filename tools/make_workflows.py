"""Writes the example workflows in workflows/ (ComfyUI UI format) from compact descriptions.

Widget values are laid out from each node's INPUT_TYPES, in the order the ComfyUI front end uses, so
the files stay in step with the nodes. Run from the repository root: python tools/make_workflows.py
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ComfyUI's own nodes used by our workflows: inputs (name, type) and widgets in front-end order.
BUILTIN = {
    "SaveImage": {"inputs": [("images", "IMAGE")], "widgets": ["filename_prefix"], "outputs": []},
    "PreviewImage": {"inputs": [("images", "IMAGE")], "widgets": [], "outputs": []},
    "LoadImage": {"inputs": [], "widgets": ["image", "upload"], "outputs": [("IMAGE", "IMAGE"), ("MASK", "MASK")]},
    "MaskToImage": {"inputs": [("mask", "MASK")], "widgets": [], "outputs": [("IMAGE", "IMAGE")]},
}


def load_pack():
    spec = importlib.util.spec_from_file_location("ar_edit_pack", os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ar_edit_pack"] = mod
    spec.loader.exec_module(mod)
    return mod


def node_io(mappings, type_name):
    """(inputs [(name, type)], widgets [(name, spec)], outputs [(name, type)]) of a node type."""
    if type_name in BUILTIN:
        b = BUILTIN[type_name]
        return b["inputs"], [(w, ("STRING", {})) for w in b["widgets"]], b["outputs"]
    cls = mappings[type_name]
    types = cls.INPUT_TYPES()
    specs = {**types.get("required", {}), **types.get("optional", {})}
    widgets = [(n, s) for n, s in specs.items() if isinstance(s[0], list) or s[0] in ("INT", "FLOAT", "STRING", "BOOLEAN")]
    inputs = [(n, s[0]) for n, s in specs.items() if (n, s) not in widgets]
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    return inputs, widgets, list(zip(names, cls.RETURN_TYPES))


def build(mappings, title, nodes, edges):
    """nodes: [(id, type, (x, y), {widget: value})]; edges: [(src_id, src_output_name, dst_id, dst_input_name)]."""
    by_id = {n[0]: n for n in nodes}
    links, ui_nodes = [], []
    io = {nid: node_io(mappings, t) for nid, t, _, _ in nodes}
    for i, (src, out_name, dst, in_name) in enumerate(edges, start=1):
        outs = io[src][2]
        slot = [n for n, _ in outs].index(out_name)
        dst_slot = [n for n, _ in io[dst][0]].index(in_name)
        links.append([i, src, slot, dst, dst_slot, outs[slot][1]])
    # execution order: a node after everything feeding it
    order, placed = {}, set()
    while len(placed) < len(nodes):
        for nid, *_ in nodes:
            if nid not in placed and all(l[1] in placed for l in links if l[3] == nid):
                order[nid] = len(placed)
                placed.add(nid)
    for nid, type_name, pos, values in nodes:
        inputs, widgets, outputs = io[nid]
        widgets_values = []
        for name, spec in widgets:
            if name not in values:
                opts = spec[1] if len(spec) > 1 else {}
                if "default" not in opts and not isinstance(spec[0], list):
                    raise KeyError(f"{title}: node {nid} ({type_name}) needs a value for {name}")
                values = {**values, name: opts.get("default", spec[0][0] if isinstance(spec[0], list) else None)}
            widgets_values.append(values[name])
            if len(spec) > 1 and spec[1].get("control_after_generate"):
                widgets_values.append("fixed")
        ui_nodes.append({
            "id": nid, "type": type_name, "pos": list(pos), "size": [320, 60 + 26 * (len(widgets) + len(inputs))],
            "flags": {}, "order": order[nid], "mode": 0,
            "inputs": [{"name": n, "type": t, "link": next((l[0] for l in links if l[3] == nid and l[4] == k), None)}
                       for k, (n, t) in enumerate(inputs)],
            "outputs": [{"name": n, "type": t, "links": [l[0] for l in links if l[1] == nid and l[2] == k],
                         "slot_index": k} for k, (n, t) in enumerate(outputs)],
            "properties": {"Node name for S&R": type_name},
            "widgets_values": widgets_values,
        })
    return {"last_node_id": max(by_id), "last_link_id": len(links), "nodes": ui_nodes, "links": links,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}, "title": title},
            "version": 0.4}


# The embedded models' sampling (core.shapes.bench.EMBEDDED_SAMPLING: cfg 1.5, no top-k / top-p).
EMBEDDED_SAMPLING = {"cfg_scale": 1.5, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
# The embedded Infinity-architecture model's (core.shapes.bench.EMBEDDED_INFINITY_SAMPLING / EMBEDDED_AREDIT).
EMBEDDED_INFINITY_SAMPLING = {"cfg": 1.0, "tau": 0.5, "top_p": 0.97}
EMBEDDED_AREDIT = {"gamma": 0, "threshold": 0.8}


def llamagen_loaders(model="t2i_XL_stage2_512.pt", tokenizer="vq_ds16_t2i.pt"):
    return [
        (1, "ARE_ModelLoader", (40, 60), {"model_name": model}),
        (2, "ARE_TokenizerLoader", (40, 240), {"tokenizer_name": tokenizer}),
        (3, "ARE_TextEncoderLoader", (40, 380), {"encoder_name": "flan-t5-xl"}),
    ]


def infinity_loaders(model="infinity_2b_reg.pth", vae="infinity_vae_d32reg.pth"):
    return [
        (1, "ARE_ModelLoader", (40, 60), {"model_name": model}),
        (2, "ARE_TokenizerLoader", (40, 240), {"tokenizer_name": vae}),
        (3, "ARE_TextEncoderLoader", (40, 380), {"encoder_name": "flan-t5-xl"}),
    ]


def infinity_prompt(nid, pos, prompt):
    """AR Text Encode with the Infinity model connected (edges added by the caller)."""
    return (nid, "ARE_TextEncode", pos, {"prompt": prompt})


def atm_generated_source(loaders, source_prompt, edit_prompt, generate_values, edit_values, prefix):
    """(nodes, edges): generate from a prompt, cache it as the source, edit it with ATM; save both images
    and preview the changed-token mask. `loaders` are nodes 1-3 (model, tokenizer, text encoder)."""
    nodes = loaders + [
        (4, "ARE_TextEncode", (420, 300), {"prompt": source_prompt}),
        (5, "ARE_Generate", (820, 60), generate_values),
        (6, "ARE_SourceCache", (1200, 60), {}),
        (7, "ARE_TextEncode", (420, 520), {"prompt": edit_prompt}),
        (8, "ARE_ATMEdit", (1200, 240), edit_values),
        (9, "ARE_TokensToImage", (1600, 60), {}),
        (10, "ARE_TokensToImage", (1600, 240), {}),
        (11, "SaveImage", (1960, 60), {"filename_prefix": f"{prefix}_source"}),
        (12, "SaveImage", (1960, 360), {"filename_prefix": f"{prefix}_edit"}),
        (13, "MaskToImage", (1600, 520), {}),
        (14, "PreviewImage", (1960, 660), {}),
    ]
    edges = [(3, "text_encoder", 4, "text_encoder"), (3, "text_encoder", 7, "text_encoder"),
             (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
             (5, "tokens", 6, "tokens"), (2, "tokenizer", 6, "tokenizer"),
             (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
             (2, "tokenizer", 9, "tokenizer"), (5, "tokens", 9, "tokens"),
             (2, "tokenizer", 10, "tokenizer"), (8, "tokens", 10, "tokens"),
             (9, "image", 11, "images"), (10, "image", 12, "images"),
             (8, "changed_mask", 13, "mask"), (13, "IMAGE", 14, "images")]
    return nodes, edges


def aredit_generated_source(loaders, source_prompt, edit_prompt, generate_values, sampling_values, edit_values, prefix):
    """(nodes, edges): generate with Infinity, cache it as the AREdit source, edit it with a target prompt; save
    both images and preview the adaptive edit mask. `sampling_values` go to the generate and cache nodes alike
    (equal settings make the cache free)."""
    nodes = loaders + [
        infinity_prompt(4, (420, 300), source_prompt),
        (5, "ARE_InfinityGenerate", (820, 60), {**generate_values, **sampling_values}),
        (6, "ARE_AREditSource", (1200, 60), dict(sampling_values)),
        infinity_prompt(7, (420, 560), edit_prompt),
        (8, "ARE_AREdit", (1200, 360), edit_values),
        (9, "ARE_TokensToImage", (1600, 60), {}),
        (10, "ARE_TokensToImage", (1600, 300), {}),
        (11, "SaveImage", (1960, 60), {"filename_prefix": f"{prefix}_source"}),
        (12, "SaveImage", (1960, 360), {"filename_prefix": f"{prefix}_edit"}),
        (13, "MaskToImage", (1600, 560), {}),
        (14, "PreviewImage", (1960, 660), {}),
    ]
    edges = [(3, "text_encoder", 4, "text_encoder"), (1, "model", 4, "model"), (3, "text_encoder", 7, "text_encoder"),
             (1, "model", 7, "model"), (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
             (1, "model", 6, "model"), (5, "tokens", 6, "tokens"),
             (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
             (2, "tokenizer", 9, "tokenizer"), (5, "tokens", 9, "tokens"),
             (2, "tokenizer", 10, "tokenizer"), (8, "tokens", 10, "tokens"),
             (9, "image", 11, "images"), (10, "image", 12, "images"),
             (8, "edit_mask", 13, "mask"), (13, "IMAGE", 14, "images")]
    return nodes, edges


WORKFLOWS = {
    "llamagen_text_to_image": (
        "LlamaGen text-to-image",
        llamagen_loaders() + [
            (4, "ARE_TextEncode", (420, 380), {"prompt": "a photo of a red fox sitting in fresh snow, golden hour"}),
            (5, "ARE_Generate", (820, 60), {"seed": 42}),
            (6, "ARE_TokensToImage", (1200, 60), {}),
            (7, "SaveImage", (1540, 60), {"filename_prefix": "llamagen"}),
        ],
        [(3, "text_encoder", 4, "text_encoder"), (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
         (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens"), (6, "image", 7, "images")],
    ),
    "embedded_atm_edit": (
        "Embedded ShapesWorld models (no download): generate a scene, then edit it with anchor token matching",
        *atm_generated_source(
            [(1, "ARE_ModelLoader", (40, 60), {"model_name": "(embedded) shapes-t2i"}),
             (2, "ARE_TokenizerLoader", (40, 240), {"tokenizer_name": "(embedded) shapes-vq"}),
             (3, "ARE_TextEncoderLoader", (40, 380), {"encoder_name": "(embedded) shapes-words"})],
            "a red circle at the top left and a small blue square in the center on a white background",
            "a red circle at the top left and a small yellow star in the center on a white background",
            {"seed": 0, **EMBEDDED_SAMPLING}, {"seed": 0, "candidates": "sampled", **EMBEDDED_SAMPLING}, "shapes"),
    ),
    "embedded_aredit_edit": (
        "Embedded ShapesWorld models (no download): generate a scene with the Infinity-architecture model, then "
        "edit it with AREdit",
        *aredit_generated_source(
            [(1, "ARE_ModelLoader", (40, 60), {"model_name": "(embedded) shapes-infinity"}),
             (2, "ARE_TokenizerLoader", (40, 240), {"tokenizer_name": "(embedded) shapes-infinity-vae"}),
             (3, "ARE_TextEncoderLoader", (40, 380), {"encoder_name": "(embedded) shapes-words"})],
            "a red circle at the top left and a small blue square in the center on a white background",
            "a red circle at the top left and a small yellow star in the center on a white background",
            {"seed": 0, "resolution": "48"}, EMBEDDED_INFINITY_SAMPLING, {"seed": 0, **EMBEDDED_AREDIT}, "shapes_aredit"),
    ),
    "atm_edit_generated_source": (
        "ISLock / Anchor Token Matching: edit a generated image",
        *atm_generated_source(llamagen_loaders(), "a photo of a cat sitting on a wooden bench in a garden",
                              "a photo of a dog sitting on a wooden bench in a garden", {"seed": 7}, {"seed": 7}, "atm"),
    ),
    "atm_edit_real_image": (
        "ISLock / Anchor Token Matching: edit a real photo",
        llamagen_loaders() + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_ImageToTokens", (420, 560), {"size": 512}),
            (6, "ARE_SourceCache", (820, 560), {}),
            (7, "ARE_TextEncode", (420, 300), {"prompt": "a watercolor painting of the same scene"}),
            (8, "ARE_ATMEdit", (1200, 240), {"seed": 0, "use_source_seed": False}),
            (9, "ARE_TokensToImage", (1600, 240), {}),
            (10, "SaveImage", (1960, 240), {"filename_prefix": "atm_real_edit"}),
            (11, "ARE_TokensToImage", (1200, 680), {}),
            (12, "PreviewImage", (1600, 680), {}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"), (5, "tokens", 6, "tokens"),
         (2, "tokenizer", 6, "tokenizer"), (3, "text_encoder", 7, "text_encoder"),
         (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
         (2, "tokenizer", 9, "tokenizer"), (8, "tokens", 9, "tokens"), (9, "image", 10, "images"),
         (2, "tokenizer", 11, "tokenizer"), (5, "tokens", 11, "tokens"), (11, "image", 12, "images")],
    ),
    "atm_masked_edit": (
        "ISLock / Anchor Token Matching: edit only the masked region (paint the mask in the image's mask editor)",
        llamagen_loaders() + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_ImageToTokens", (420, 560), {"size": 512}),
            (6, "ARE_SourceCache", (820, 560), {}),
            (7, "ARE_TextEncode", (420, 300), {"prompt": "a bouquet of red roses on the table"}),
            (8, "ARE_ATMEdit", (1200, 240), {"seed": 0, "use_source_seed": False}),
            (9, "ARE_TokensToImage", (1600, 240), {}),
            (10, "SaveImage", (1960, 240), {"filename_prefix": "atm_masked_edit"}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"), (5, "tokens", 6, "tokens"),
         (2, "tokenizer", 6, "tokenizer"), (3, "text_encoder", 7, "text_encoder"),
         (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
         (4, "MASK", 8, "mask"), (2, "tokenizer", 9, "tokenizer"), (8, "tokens", 9, "tokens"),
         (9, "image", 10, "images")],
    ),
    "atm_tau_sweep_grid": (
        "ISLock / Anchor Token Matching: tau sweep as one batch, with a labelled grid",
        llamagen_loaders() + [
            (4, "ARE_TextEncode", (420, 300), {"prompt": "a photo of a cat sitting on a wooden bench in a garden"}),
            (5, "ARE_Generate", (820, 60), {"seed": 7}),
            (6, "ARE_SourceCache", (1200, 60), {}),
            (7, "ARE_TextEncode", (420, 520), {"prompt": "a photo of a dog sitting on a wooden bench in a garden"}),
            (8, "ARE_ATMSweep", (1200, 240), {"tau_values": "0.25, 0.5, 1.0, 2.0", "cfg_values": "7.5"}),
            (9, "SaveImage", (1600, 240), {"filename_prefix": "atm_tau_sweep"}),
        ],
        [(3, "text_encoder", 4, "text_encoder"), (3, "text_encoder", 7, "text_encoder"),
         (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
         (5, "tokens", 6, "tokens"), (2, "tokenizer", 6, "tokenizer"),
         (1, "model", 8, "model"), (2, "tokenizer", 8, "tokenizer"), (6, "source", 8, "source"),
         (7, "conditioning", 8, "conditioning"), (8, "grid", 9, "images")],
    ),
    "editar_instruction_edit": (
        "EditAR: edit a photo by instruction",
        llamagen_loaders(model="editar_release.pt") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_EditAR", (460, 240), {"instruction": "turn the scene into a snowy winter day", "seed": 0}),
            (6, "ARE_TokensToImage", (880, 240), {}),
            (7, "SaveImage", (1240, 240), {"filename_prefix": "editar_edit"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens"),
         (6, "image", 7, "images")],
    ),
    "editar_depth_to_image": (
        "EditAR: depth map (loaded from disk, or from any depth preprocessor node) to image",
        llamagen_loaders(model="editar_release.pt") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_EditAR", (460, 240), {"instruction": "a cozy living room with a fireplace, warm light",
                                           "task": "depth", "seed": 0}),
            (6, "ARE_TokensToImage", (880, 240), {}),
            (7, "SaveImage", (1240, 240), {"filename_prefix": "editar_depth"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens"),
         (6, "image", 7, "images")],
    ),
    "editar_cfg_sweep_grid": (
        "EditAR: seeds x guidance scales as one batch, with a labelled grid",
        llamagen_loaders(model="editar_release.pt") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_EditARSweep", (460, 240), {"instruction": "make it look like an oil painting",
                                                "seed_values": "0, 1", "text_cfg_values": "2.0, 3.0, 5.0"}),
            (6, "SaveImage", (880, 240), {"filename_prefix": "editar_sweep"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (5, "grid", 6, "images")],
    ),
    "infinity_text_to_image": (
        "Infinity text-to-image (next-scale, bitwise)",
        infinity_loaders() + [
            infinity_prompt(4, (420, 380), "a photo of a red fox sitting in fresh snow, golden hour"),
            (5, "ARE_InfinityGenerate", (820, 60), {"seed": 42}),
            (6, "ARE_TokensToImage", (1200, 60), {}),
            (7, "SaveImage", (1540, 60), {"filename_prefix": "infinity"}),
        ],
        [(3, "text_encoder", 4, "text_encoder"), (1, "model", 4, "model"), (1, "model", 5, "model"),
         (4, "conditioning", 5, "conditioning"), (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens"),
         (6, "image", 7, "images")],
    ),
    "aredit_generated_source": (
        "AREdit: edit a generated Infinity image (the source cache is free for generated tokens)",
        *aredit_generated_source(infinity_loaders(), "a photo of a cat sitting on a wooden bench in a garden",
                                 "a photo of a dog sitting on a wooden bench in a garden",
                                 {"seed": 7, "resolution": "512"}, {}, {"seed": 7}, "aredit"),
    ),
    "aredit_real_image": (
        "AREdit: edit a real photo (describe the photo in the source prompt)",
        infinity_loaders() + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_ImageToTokens", (420, 560), {"size": 512}),
            infinity_prompt(6, (420, 300), "a photo of a living room with a grey sofa"),
            (7, "ARE_AREditSource", (820, 560), {}),
            infinity_prompt(8, (820, 300), "a photo of a living room with a red leather sofa"),
            (9, "ARE_AREdit", (1200, 300), {"seed": 0, "use_source_seed": False}),
            (10, "ARE_TokensToImage", (1600, 300), {}),
            (11, "SaveImage", (1960, 300), {"filename_prefix": "aredit_real_edit"}),
            (12, "ARE_TokensToImage", (1200, 680), {}),
            (13, "PreviewImage", (1600, 680), {}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"),
         (3, "text_encoder", 6, "text_encoder"), (1, "model", 6, "model"),
         (3, "text_encoder", 8, "text_encoder"), (1, "model", 8, "model"),
         (1, "model", 7, "model"), (5, "tokens", 7, "tokens"), (6, "conditioning", 7, "source_conditioning"),
         (1, "model", 9, "model"), (7, "source", 9, "source"), (8, "conditioning", 9, "conditioning"),
         (2, "tokenizer", 10, "tokenizer"), (9, "tokens", 10, "tokens"), (10, "image", 11, "images"),
         (2, "tokenizer", 12, "tokenizer"), (5, "tokens", 12, "tokens"), (12, "image", 13, "images")],
    ),
    "aredit_masked_edit": (
        "AREdit: edit only the masked region of a photo (paint the mask in the image's mask editor)",
        infinity_loaders() + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_ImageToTokens", (420, 560), {"size": 512}),
            infinity_prompt(6, (420, 300), "a photo of a table with a vase"),
            (7, "ARE_AREditSource", (820, 560), {}),
            infinity_prompt(8, (820, 300), "a photo of a table with a bouquet of red roses"),
            (9, "ARE_AREdit", (1200, 300), {"seed": 0, "use_source_seed": False}),
            (10, "ARE_TokensToImage", (1600, 300), {}),
            (11, "SaveImage", (1960, 300), {"filename_prefix": "aredit_masked_edit"}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"),
         (3, "text_encoder", 6, "text_encoder"), (1, "model", 6, "model"),
         (3, "text_encoder", 8, "text_encoder"), (1, "model", 8, "model"),
         (1, "model", 7, "model"), (5, "tokens", 7, "tokens"), (6, "conditioning", 7, "source_conditioning"),
         (1, "model", 9, "model"), (7, "source", 9, "source"), (8, "conditioning", 9, "conditioning"),
         (4, "MASK", 9, "mask"), (2, "tokenizer", 10, "tokenizer"), (9, "tokens", 10, "tokens"),
         (10, "image", 11, "images")],
    ),
    "aredit_gamma_threshold_sweep_grid": (
        "AREdit: gamma x threshold sweep as one batch over one source cache, with a labelled grid",
        infinity_loaders() + [
            infinity_prompt(4, (420, 300), "a photo of a cat sitting on a wooden bench in a garden"),
            (5, "ARE_InfinityGenerate", (820, 60), {"seed": 7, "resolution": "512"}),
            (6, "ARE_AREditSource", (1200, 60), {}),
            infinity_prompt(7, (420, 560), "a photo of a dog sitting on a wooden bench in a garden"),
            (8, "ARE_AREditSweep", (1200, 360), {"gamma_values": "1, 2, 3", "threshold_values": "0.0, 0.1, 0.3"}),
            (9, "SaveImage", (1600, 360), {"filename_prefix": "aredit_sweep"}),
        ],
        [(3, "text_encoder", 4, "text_encoder"), (1, "model", 4, "model"), (3, "text_encoder", 7, "text_encoder"),
         (1, "model", 7, "model"), (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
         (1, "model", 6, "model"), (5, "tokens", 6, "tokens"),
         (1, "model", 8, "model"), (2, "tokenizer", 8, "tokenizer"), (6, "source", 8, "source"),
         (7, "conditioning", 8, "conditioning"), (8, "grid", 9, "images")],
    ),
    "varedit_instruction_edit": (
        "VAREdit: edit a photo by instruction (Infinity backbone, Scale-Aligned Reference)",
        infinity_loaders(model="2B-512.pth") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_VAREdit", (460, 240), {"instruction": "make it a snowy winter day", "seed": 0}),
            (6, "SaveImage", (880, 240), {"filename_prefix": "varedit_edit"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (5, "image", 6, "images")],
    ),
    "varedit_masked_edit": (
        "VAREdit: edit only the masked region (paint the mask in the image's mask editor)",
        infinity_loaders(model="2B-512.pth") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_VAREdit", (460, 240), {"instruction": "replace the vase with a bouquet of red roses", "seed": 0}),
            (6, "SaveImage", (880, 240), {"filename_prefix": "varedit_masked_edit"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (4, "MASK", 5, "mask"), (5, "image", 6, "images")],
    ),
    "varedit_cfg_sweep_grid": (
        "VAREdit: seeds x cfg scales as one batch, with a labelled grid",
        infinity_loaders(model="2B-512.pth") + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_VAREditSweep", (460, 240), {"instruction": "make it look like an oil painting"}),
            (6, "SaveImage", (880, 240), {"filename_prefix": "varedit_sweep"}),
        ],
        [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
         (4, "IMAGE", 5, "image"), (5, "grid", 6, "images")],
    ),
}


def main():
    pack = load_pack()
    from ar_edit_pack.core.shapes import bench  # the workflows must carry the settings the benchmark measured

    if (EMBEDDED_INFINITY_SAMPLING != bench.EMBEDDED_INFINITY_SAMPLING.to_dict()
            or EMBEDDED_AREDIT != bench.EMBEDDED_AREDIT.to_dict()
            or EMBEDDED_SAMPLING != bench.EMBEDDED_SAMPLING.to_dict()):
        raise SystemExit("make_workflows.py's embedded settings differ from core.shapes.bench's: update them")
    os.makedirs(os.path.join(ROOT, "workflows"), exist_ok=True)
    for name, (title, nodes, edges) in WORKFLOWS.items():
        wf = build(pack.NODE_CLASS_MAPPINGS, title, nodes, edges)
        with open(os.path.join(ROOT, "workflows", name + ".json"), "w") as f:
            json.dump(wf, f, indent=1)
            f.write("\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
