"""Writes the example workflows in workflows/ (ComfyUI UI format) from compact descriptions.

Widget values are laid out from each node's INPUT_TYPES, in the order the ComfyUI front end uses, so
the files stay in step with the nodes. Run from the repository root: python tools/make_workflows.py
"""
from __future__ import annotations

import dataclasses
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ComfyUI's own nodes used by our workflows: inputs (name, type) and widgets in front-end order.
BUILTIN = {
    "SaveImage": {"inputs": [("images", "IMAGE")], "widgets": ["filename_prefix"], "outputs": []},
    "PreviewImage": {"inputs": [("images", "IMAGE")], "widgets": [], "outputs": []},
    "LoadImage": {"inputs": [], "widgets": ["image", "upload"], "outputs": [("IMAGE", "IMAGE"), ("MASK", "MASK")]},
    "MaskToImage": {"inputs": [("mask", "MASK")], "widgets": [], "outputs": [("IMAGE", "IMAGE")]},
    # ComfyUI's "String (Multiline)": a caption or instruction typed once, linked to every node that reads it
    "PrimitiveStringMultiline": {"inputs": [], "widgets": ["value"], "outputs": [("STRING", "STRING")]},
}


def load_pack():
    import ar_edit_pack

    return ar_edit_pack


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


# Stage of each node type: the columns a workflow is laid out in, each framed by a group.
STAGE_OF = {
    **{node: 0 for node in ("ARE_LlamaGenLoader", "ARE_EditARLoader", "ARE_InfinityLoader", "ARE_VAREditLoader",
                            "ARE_VQLoader", "ARE_BSQVAELoader", "ARE_TextEncoderLoader", "ARE_LuminaLoader",
                            "ARE_ChameleonVQGANLoader", "ARE_JanusLoader")},
    "ARE_LuminaGenerate": 1, "ARE_LuminaImageToCodes": 1, "ARE_LuminaEdit": 2, "ARE_LuminaCodesToImage": 3,
    "ARE_JanusGenerate": 1, "ARE_JanusEdit": 2, "ARE_JanusSweep": 2,
    "LoadImage": 1, "ARE_ShapesScene": 1, "PrimitiveStringMultiline": 1, "ARE_ImageToTokens": 1, "ARE_ImageToBits": 1, "ARE_SourceCache": 1,
    "ARE_AREditSource": 1,
    "ARE_ClassLabel": 1, "ARE_Generate": 1, "ARE_InfinityGenerate": 1,
    "ARE_ATMEdit": 2, "ARE_ATMSweep": 2, "ARE_AREdit": 2, "ARE_AREditSweep": 2, "ARE_EditAR": 2, "ARE_EditARSweep": 2,
    "ARE_VAREdit": 2, "ARE_VAREditSweep": 2,
    "ARE_TokensToImage": 3, "ARE_BitsToImage": 3, "ARE_CompareGrid": 3, "ARE_MaskOverlay": 3, "ARE_Enlarge": 3,
    "SaveImage": 4, "PreviewImage": 4,  # a column of their own, each with room for its picture
}
SHOWS_PICTURE = ("SaveImage", "PreviewImage", "LoadImage")  # Load Image draws the chosen picture inside itself
PICTURE_ROOM = 300  # px of node height a shown picture takes, so no node below covers it
TEXT_BOX = 60  # px more a multiline text widget takes than a one-line widget
GENERATORS = ("ARE_Generate", "ARE_InfinityGenerate", "ARE_LuminaGenerate")
LOADERS = tuple(t for t, stage in STAGE_OF.items() if stage == 0)
EDIT_STAGES = ("1. Models", "2. Source", "3. Edit", "4. Output", "5. Results")
GENERATE_STAGES = ("1. Models", "2. Prompt", "3. Generate", "4. Output", "5. Results")
STAGE_COLORS = ("#3f789e", "#8A8", "#b58b2a", "#a1309b", "#2a8a78")
STAGES = len(STAGE_COLORS)
NOTE_HEIGHT, COLUMN, NODE_WIDTH, GAP = 170, 420, 340, 56  # GAP: room for the next node's title and its source badge
GROUP_TITLE, NODE_TITLE = 44, 30  # px the front end draws above a group's area / above a node's pos


def _stages(nodes, edges) -> dict[int, int]:
    """Node id -> column. Prompts sit with what reads them; a text-to-image workflow's generate node is its
    third stage (it has no edit)."""
    kind = {nid: t for nid, t, _, _ in nodes}
    editing = any(STAGE_OF.get(t) == 2 for t in kind.values())
    stage = {}
    for nid, t in kind.items():
        if t in ("ARE_TextEncode", "ARE_InfinityTextEncode"):
            readers = [STAGE_OF.get(kind[dst]) for src, _, dst, _ in edges if src == nid]
            stage[nid] = (1 if 1 in readers else 2) if editing else 1
        elif t in GENERATORS and not editing:
            stage[nid] = 2
        else:
            stage[nid] = STAGE_OF[t]
    return stage


def note_text(what: str, first: str, files: list[tuple[str, str]]) -> str:
    """The note every workflow opens with: what it does, the files it needs, what to do first."""
    from ar_edit_pack.core.files.model_files import KNOWN_FILES

    from ar_edit_pack.core.shapes import instructions, world

    downloads = [(kind, name) for kind, name in files if not name.startswith("(embedded)")]
    if not downloads:
        needs = ("Nothing to download: it runs on the embedded ShapesWorld models that ship with the pack (48 px "
                 "scenes). The words they know: " + ", ".join(world.SHAPES) + "; " + ", ".join(world.COLORS) +
                 "; small or large (the default, may go unsaid); " +
                 ", ".join(world.position_phrase(c) for c in range(9)) + "; backgrounds " +
                 ", ".join(world.BACKGROUNDS) + f". A caption: \"{world.EXAMPLE_CAPTION}\"; an instruction: "
                 f"\"{instructions.EXAMPLE_INSTRUCTION}\", \"make the red circle green\", \"remove the blue "
                 "square\", \"change the background to gray\".")
    else:
        parts = [f"{name} (~{KNOWN_FILES[name].approx_gb:g} GB, models/{kind})" if name in KNOWN_FILES
                 else f"{name} (models/{kind})" for kind, name in downloads]
        needs = ("Needs " + ", ".join(parts) + ": downloaded on the first run, or beforehand with "
                 "`python -m ar_edit_pack models --workflow <this file> --download` (once `pip install -e` of the "
                 "pack's folder has made the command available).")
    return f"{what}\n\n{needs}\n\nFirst: {first}"


def _enlarge_small_saves(nodes, edges):
    """On the embedded models (48 px results), every Save Image gets its pictures through AR Enlarge, so the saved
    files (and the node's picture) are large enough to see; official-size workflows save as they are."""
    embedded = all(not isinstance(v, str) or not v or v.startswith("(embedded)") for _, t, _, vals in nodes
                   if t in LOADERS for v in list(vals.values())[:1])
    if not embedded:
        return nodes, edges
    nodes, out, next_id = list(nodes), [], max(n[0] for n in nodes) + 1
    kind = {n[0]: n[1] for n in nodes}
    for src, out_name, dst, in_name in edges:
        if kind[dst] == "SaveImage" and in_name == "images" and kind[src] not in ("ARE_CompareGrid", "ARE_MaskOverlay"):
            nodes.append((next_id, "ARE_Enlarge", (0, 0), {}))
            out += [(src, out_name, next_id, "image"), (next_id, "image", dst, "images")]
            next_id += 1
        else:
            out.append((src, out_name, dst, in_name))
    return nodes, out


def build(mappings, title, nodes, edges, what="", first="Press Run."):
    """nodes: [(id, type, (x, y), {widget: value, "_title": optional node title})]; edges: [(src_id,
    src_output_name, dst_id, dst_input_name)]; an edge into a widget's name links that widget (its value stays,
    as the front end keeps it). Nodes are laid out in stage columns (models / source / edit / output), each
    framed by a group, under a note (`what` it does, the files it needs, what to do `first`). The (x, y) given
    are ignored."""
    nodes, edges = _enlarge_small_saves(nodes, edges)
    by_id = {n[0]: n for n in nodes}
    links, ui_nodes = [], []
    io = {nid: node_io(mappings, t) for nid, t, _, _ in nodes}
    # sockets: the node's inputs, then each linked widget (the front end's widget input, after the plain ones)
    sockets = {nid: list(io[nid][0]) for nid in io}
    for _, _, dst, in_name in edges:
        widget = dict(io[dst][1]).get(in_name)
        if widget is not None and in_name not in [n for n, _ in sockets[dst]]:
            sockets[dst].append((in_name, widget[0]))
    for i, (src, out_name, dst, in_name) in enumerate(edges, start=1):
        outs = io[src][2]
        slot = [n for n, _ in outs].index(out_name)
        dst_slot = [n for n, _ in sockets[dst]].index(in_name)
        links.append([i, src, slot, dst, dst_slot, outs[slot][1]])
    # execution order: a node after everything feeding it
    order, placed = {}, set()
    while len(placed) < len(nodes):
        for nid, *_ in nodes:
            if nid not in placed and all(l[1] in placed for l in links if l[3] == nid):
                order[nid] = len(placed)
                placed.add(nid)
    stage = _stages(nodes, edges)
    # a group's title bar (from NOTE_HEIGHT + 40) and each node's own title bar (drawn above its pos) both clear
    first_y = NOTE_HEIGHT + 40 + GROUP_TITLE + NODE_TITLE
    column_y = {c: first_y for c in range(STAGES)}
    column_w = {c: NODE_WIDTH - 20 for c in range(STAGES)}
    # the Results column opens with what compares (Preview Image), the saved pictures under it
    for nid, type_name, _, values in sorted(nodes, key=lambda n: n[1] == "SaveImage"):
        _, widgets, outputs = io[nid]
        inputs = sockets[nid]
        values = dict(values)
        node_title = values.pop("_title", None)
        width = values.pop("_width", NODE_WIDTH - 20)  # a wide node (a strip of results) widens its column's group
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
        controls = sum(1 for _, spec in widgets if len(spec) > 1 and spec[1].get("control_after_generate"))
        text_box = any(w[0] in ("prompt", "instruction", "caption", "labels", "value") for w in widgets)
        height = 60 + 26 * (len(widgets) + controls + len(io[nid][0])) + (TEXT_BOX if text_box else 0)
        height += max(PICTURE_ROOM, width * 3 // 4) if type_name in SHOWS_PICTURE else 0
        col = stage[nid]
        column_w[col] = max(column_w[col], width)
        pos = [40 + col * COLUMN, column_y[col]]
        column_y[col] += height + GAP
        widget_names = {w for w, _ in widgets}
        ui_nodes.append({
            "id": nid, "type": type_name, "pos": pos, "size": [width, height],
            "flags": {}, "order": order[nid], "mode": 0,
            "inputs": [{"name": n, "type": t, **({"widget": {"name": n}} if n in widget_names else {}),
                        "link": next((l[0] for l in links if l[3] == nid and l[4] == k), None)}
                       for k, (n, t) in enumerate(inputs)],
            "outputs": [{"name": n, "type": t, "links": [l[0] for l in links if l[1] == nid and l[2] == k],
                         "slot_index": k} for k, (n, t) in enumerate(outputs)],
            "properties": {"Node name for S&R": type_name},
            "widgets_values": widgets_values,
            **({"title": node_title} if node_title else {}),
        })
    names = EDIT_STAGES if any(stage[n] == 2 and by_id[n][1] not in GENERATORS
                               for n in stage) else GENERATE_STAGES
    used = [c for c in range(STAGES) if column_y[c] > first_y]
    groups = [{"id": k + 1, "title": names[c], "bounding": [20 + c * COLUMN, NOTE_HEIGHT + 40, column_w[c] + 40,
                                                            column_y[c] - NOTE_HEIGHT - 40],
               "color": STAGE_COLORS[c], "font_size": 24, "flags": {}} for k, c in enumerate(used)]
    from ar_edit_pack.core.files.model_files import workflow_files

    note_id = max(by_id) + 1
    wf = {"nodes": ui_nodes}
    ui_nodes.append({"id": note_id, "type": "Note", "pos": [20, 20], "size": [STAGES * COLUMN - 40, NOTE_HEIGHT],
                     "flags": {}, "order": len(nodes), "mode": 0, "inputs": [], "outputs": [],
                     "properties": {"text": ""}, "color": "#432", "bgcolor": "#653",
                     "widgets_values": [note_text(what or title, first, workflow_files(wf))]})
    return {"last_node_id": note_id, "last_link_id": len(links), "nodes": ui_nodes, "links": links,
            "groups": groups, "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "title": title},
            "version": 0.4}


def _embedded(family: str, *kinds: str, drop: tuple[str, ...] = ()) -> dict:
    """The embedded `family` model's own settings (its file's metadata), as the widgets name them."""
    from ar_edit_pack.core.shapes.embedded import embedded_defaults

    out = {}
    for kind in kinds:
        out.update({k: v for k, v in dataclasses.asdict(embedded_defaults(family, kind)).items() if k not in drop})
    return out


# The embedded models' tuned settings, written into the workflows as explicit widget values (what the benchmark
# measured), read from the model files.
EMBEDDED_SAMPLING = _embedded("llamagen", "sampling")
EMBEDDED_INFINITY_SAMPLING = _embedded("infinity", "sampling")
EMBEDDED_AREDIT = _embedded("infinity", "aredit")
EMBEDDED_EDITAR = _embedded("editar", "editar", "sampling", drop=("cfg_scale",))
EMBEDDED_VAREDIT = _embedded("varedit", "sampling")
EMBEDDED_LUMINA = _embedded("lumina", "sampling", "atm")
EMBEDDED_JANUS = _embedded("janus", "sampling", "atm")
from ar_edit_pack.core.shapes import bench as _bench, instructions as _instructions, world as _world  # noqa: E402

SHAPES_SOURCE, SHAPES_TARGET = _world.EXAMPLE_CAPTION, _world.EXAMPLE_EDITED
SHAPES_INSTRUCTION = _instructions.EXAMPLE_INSTRUCTION
SHAPES_TEXTURE_SEED = _bench.SHOWCASE_TEXTURE_SEED  # faint textures in the empty cells: the details an edit should keep


# Each family's loader node (the graph editor connects a model only to the nodes of its family).
LOADER_NODE = {"llamagen": "ARE_LlamaGenLoader", "editar": "ARE_EditARLoader", "infinity": "ARE_InfinityLoader",
               "varedit": "ARE_VAREditLoader", "vq": "ARE_VQLoader", "bsq_vae": "ARE_BSQVAELoader"}


def loader(kind: str, name: str) -> str:
    """The loader node type of a model file: its family's."""
    from ar_edit_pack.core.files.model_files import name_family
    from ar_edit_pack.core.shapes.embedded import CHOICE_FAMILY

    return LOADER_NODE[CHOICE_FAMILY.get(name) or name_family(kind, name)]


def model_loaders(model, tokenizer, encoder="flan-t5-xl", nid=1, x=40, y=60):
    """Nodes nid .. nid + 2: the model's, the tokenizer's and the text encoder's loaders."""
    return [(nid, loader("autoregressive", model), (x, y), {"model_name": model}),
            (nid + 1, loader("vq", tokenizer), (x, y + 180), {"tokenizer_name": tokenizer}),
            (nid + 2, "ARE_TextEncoderLoader", (x, y + 320), {"encoder_name": encoder})]


def llamagen_loaders(model="t2i_XL_stage2_512.pt", tokenizer="vq_ds16_t2i.pt"):
    return model_loaders(model, tokenizer)


def infinity_loaders(model="infinity_2b_reg.pth", vae="infinity_vae_d32reg.pth"):
    return model_loaders(model, vae)


def infinity_prompt(nid, pos, prompt):
    return (nid, "ARE_InfinityTextEncode", pos, {"prompt": prompt})


def _compare(nodes, edges, label):
    """Add a labelled, enlarged source | edit view (nodes 9 and 10 are the decoded source and edit)."""
    return (nodes + [(15, "ARE_CompareGrid", (1960, 900), {"labels": f"source\n{label}"}),
                     (16, "PreviewImage", (2300, 900), {})],
            edges + [(9, "image", 15, "image_1"), (10, "image", 15, "image_2"), (15, "grid", 16, "images")])


def atm_generated_source(loaders, source_prompt, edit_prompt, generate_values, edit_values, prefix, compare=False):
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
        (13, "ARE_MaskOverlay", (1600, 520), {}),
        (14, "PreviewImage", (1960, 660), {}),
    ]
    edges = [(3, "text_encoder", 4, "text_encoder"), (3, "text_encoder", 7, "text_encoder"),
             (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
             (5, "tokens", 6, "tokens"), (2, "tokenizer", 6, "tokenizer"),
             (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
             (2, "tokenizer", 9, "tokenizer"), (5, "tokens", 9, "tokens"),
             (2, "tokenizer", 10, "tokenizer"), (8, "tokens", 10, "tokens"),
             (9, "image", 11, "images"), (10, "image", 12, "images"),
             (10, "image", 13, "image"), (8, "changed_mask", 13, "mask"), (13, "image", 14, "images"),
             (2, "tokenizer", 5, "preview_tokenizer"), (2, "tokenizer", 8, "preview_tokenizer")]  # live previews
    return _compare(nodes, edges, "ATM edit") if compare else (nodes, edges)


def aredit_generated_source(loaders, source_prompt, edit_prompt, generate_values, sampling_values, edit_values, prefix,
                            compare=False):
    """(nodes, edges): generate with Infinity, cache it as the AREdit source, edit it with a target prompt; save
    both images and preview the adaptive edit mask. `sampling_values` go to the generate and cache nodes alike
    (equal settings make the cache free)."""
    nodes = loaders + [
        infinity_prompt(4, (420, 300), source_prompt),
        (5, "ARE_InfinityGenerate", (820, 60), {**generate_values, **sampling_values}),
        (6, "ARE_AREditSource", (1200, 60), dict(sampling_values)),
        infinity_prompt(7, (420, 560), edit_prompt),
        (8, "ARE_AREdit", (1200, 360), edit_values),
        (9, "ARE_BitsToImage", (1600, 60), {}),
        (10, "ARE_BitsToImage", (1600, 300), {}),
        (11, "SaveImage", (1960, 60), {"filename_prefix": f"{prefix}_source"}),
        (12, "SaveImage", (1960, 360), {"filename_prefix": f"{prefix}_edit"}),
        (13, "ARE_MaskOverlay", (1600, 560), {}),
        (14, "PreviewImage", (1960, 660), {}),
    ]
    edges = [(3, "text_encoder", 4, "text_encoder"), (3, "text_encoder", 7, "text_encoder"),
             (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
             (1, "model", 6, "model"), (5, "tokens", 6, "tokens"),
             (1, "model", 8, "model"), (6, "source", 8, "source"), (7, "conditioning", 8, "conditioning"),
             (2, "tokenizer", 9, "tokenizer"), (5, "tokens", 9, "tokens"),
             (2, "tokenizer", 10, "tokenizer"), (8, "tokens", 10, "tokens"),
             (9, "image", 11, "images"), (10, "image", 12, "images"),
             (10, "image", 13, "image"), (8, "edit_mask", 13, "mask"), (13, "image", 14, "images"),
             (2, "tokenizer", 5, "preview_vae"), (2, "tokenizer", 8, "preview_vae")]  # live previews
    return _compare(nodes, edges, "AREdit edit") if compare else (nodes, edges)


def embedded_loaders(nid, model, tokenizer, encoder, x=40, y=60):
    return model_loaders(f"(embedded) {model}", f"(embedded) {tokenizer}", f"(embedded) {encoder}", nid, x, y)


def embedded_editor(method):
    """(nodes, edges): a ShapesWorld scene edited by instruction with an embedded editor, shown side by side."""
    scene = (4, "ARE_ShapesScene", (40, 560), {"caption": SHAPES_SOURCE, "texture_seed": SHAPES_TEXTURE_SEED})
    if method == "editar":
        nodes = embedded_loaders(1, "shapes-editar", "shapes-vq", "shapes-instructions") + [scene,
            (5, "ARE_EditAR", (460, 240), {"instruction": SHAPES_INSTRUCTION, "seed": 0, **EMBEDDED_EDITAR}),
            (6, "ARE_TokensToImage", (880, 240), {})]
        edges = [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
                 (4, "image", 5, "image"), (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens")]
        edited, label = (6, "image"), "EditAR edit"
    else:
        nodes = embedded_loaders(1, "shapes-varedit", "shapes-infinity-vae", "shapes-instructions") + [scene,
            (5, "ARE_VAREdit", (460, 240), {"instruction": SHAPES_INSTRUCTION, "seed": 0, **EMBEDDED_VAREDIT})]
        edges = [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
                 (4, "image", 5, "image")]
        edited, label = (5, "image"), "VAREdit edit"
    nodes += [(7, "SaveImage", (1240, 240), {"filename_prefix": f"shapes_{method}"}),
              (8, "ARE_CompareGrid", (1240, 520), {"labels": f"source\n{label}"}),
              (9, "PreviewImage", (1600, 520), {})]
    edges += [(edited[0], edited[1], 7, "images"), (4, "image", 8, "image_1"), (edited[0], edited[1], 8, "image_2"),
              (8, "grid", 9, "images")]
    return nodes, edges


def embedded_from_edges():
    caption = "a green star at the top right and a small purple circle at the bottom left on a pink background"
    nodes = embedded_loaders(1, "shapes-editar", "shapes-vq", "shapes-instructions") + [
        (10, "PrimitiveStringMultiline", (0, 0), {"value": caption, "_title": "Caption (the scene and the picture)"}),
        (4, "ARE_ShapesScene", (40, 560), {"caption": caption, "texture_seed": 0}),
        (5, "ARE_EditAR", (460, 240), {"instruction": caption, "task": "canny", "seed": 0, **EMBEDDED_EDITAR}),
        (6, "ARE_TokensToImage", (880, 240), {}),
        (7, "SaveImage", (1240, 240), {"filename_prefix": "shapes_from_edges"}),
        (8, "ARE_CompareGrid", (1240, 520), {"labels": "edge map\nimage made from it"}),
        (9, "PreviewImage", (1600, 520), {})]
    edges = [(1, "model", 5, "model"), (2, "tokenizer", 5, "tokenizer"), (3, "text_encoder", 5, "text_encoder"),
             (4, "edge_map", 5, "image"), (2, "tokenizer", 6, "tokenizer"), (5, "tokens", 6, "tokens"),
             (6, "image", 7, "images"), (4, "edge_map", 8, "image_1"), (6, "image", 8, "image_2"), (8, "grid", 9, "images"),
             (10, "STRING", 4, "caption"), (10, "STRING", 5, "instruction")]
    return nodes, edges


def embedded_compare_methods():
    """All four methods on one ShapesWorld source: ATM and AREdit from the target caption, EditAR and VAREdit
    from the instruction; one labelled grid."""
    nodes = (embedded_loaders(1, "shapes-t2i", "shapes-vq", "shapes-words")
             + embedded_loaders(4, "shapes-infinity", "shapes-infinity-vae", "shapes-words", y=560)[:2]
             + [(6, "ARE_EditARLoader", (40, 1000), {"model_name": "(embedded) shapes-editar"}),
                (7, "ARE_VAREditLoader", (40, 1180), {"model_name": "(embedded) shapes-varedit"}),
                (8, "ARE_TextEncoderLoader", (40, 1360), {"encoder_name": "(embedded) shapes-instructions"}),
                (27, "PrimitiveStringMultiline", (0, 0), {"value": SHAPES_SOURCE, "_title": "Source caption"}),
                (28, "PrimitiveStringMultiline", (0, 0), {"value": SHAPES_TARGET, "_title": "Edited caption (ATM, AREdit)"}),
                (29, "PrimitiveStringMultiline", (0, 0), {"value": SHAPES_INSTRUCTION,
                                                         "_title": "Instruction (EditAR, VAREdit)"}),
                (10, "ARE_ShapesScene", (420, 60), {"caption": SHAPES_SOURCE, "texture_seed": SHAPES_TEXTURE_SEED}),
                # ATM (LlamaGen)
                (11, "ARE_TextEncode", (420, 300), {"prompt": SHAPES_TARGET}),
                (12, "ARE_ImageToTokens", (820, 60), {"size": 48}),
                (13, "ARE_SourceCache", (1200, 60), {}),
                (14, "ARE_ATMEdit", (1580, 60), {"seed": 0, "use_source_seed": False, "candidates": "sampled",
                                                 **EMBEDDED_SAMPLING}),
                (15, "ARE_TokensToImage", (1960, 60), {}),
                # AREdit (Infinity)
                (16, "ARE_InfinityTextEncode", (420, 560), {"prompt": SHAPES_SOURCE}),
                (17, "ARE_InfinityTextEncode", (420, 780), {"prompt": SHAPES_TARGET}),
                (18, "ARE_ImageToBits", (820, 560), {"size": 48}),
                (19, "ARE_AREditSource", (1200, 560), dict(EMBEDDED_INFINITY_SAMPLING)),
                (20, "ARE_AREdit", (1580, 560), {"seed": 0, "use_source_seed": False, **EMBEDDED_AREDIT}),
                (21, "ARE_BitsToImage", (1960, 560), {}),
                # EditAR and VAREdit (instruction)
                (22, "ARE_EditAR", (820, 1000), {"instruction": SHAPES_INSTRUCTION, "seed": 0, **EMBEDDED_EDITAR}),
                (23, "ARE_TokensToImage", (1200, 1000), {}),
                (24, "ARE_VAREdit", (820, 1300), {"instruction": SHAPES_INSTRUCTION, "seed": 0, **EMBEDDED_VAREDIT}),
                (25, "ARE_CompareGrid", (2340, 400), {"labels": "source\nATM\nAREdit\nEditAR\nVAREdit", "columns": 3}),
                (26, "SaveImage", (2700, 400), {"filename_prefix": "shapes_compare", "_width": 560})])
    edges = [(3, "text_encoder", 11, "text_encoder"), (10, "image", 12, "image"), (2, "tokenizer", 12, "tokenizer"),
             (12, "tokens", 13, "tokens"), (2, "tokenizer", 13, "tokenizer"),
             (1, "model", 14, "model"), (13, "source", 14, "source"), (11, "conditioning", 14, "conditioning"),
             (2, "tokenizer", 15, "tokenizer"), (14, "tokens", 15, "tokens"),
             (3, "text_encoder", 16, "text_encoder"), (3, "text_encoder", 17, "text_encoder"),
             (10, "image", 18, "image"), (5, "tokenizer", 18, "tokenizer"),
             (4, "model", 19, "model"), (18, "tokens", 19, "tokens"), (16, "conditioning", 19, "source_conditioning"),
             (4, "model", 20, "model"), (19, "source", 20, "source"), (17, "conditioning", 20, "conditioning"),
             (5, "tokenizer", 21, "tokenizer"), (20, "tokens", 21, "tokens"),
             (6, "model", 22, "model"), (2, "tokenizer", 22, "tokenizer"), (8, "text_encoder", 22, "text_encoder"),
             (10, "image", 22, "image"), (2, "tokenizer", 23, "tokenizer"), (22, "tokens", 23, "tokens"),
             (7, "model", 24, "model"), (5, "tokenizer", 24, "tokenizer"), (8, "text_encoder", 24, "text_encoder"),
             (10, "image", 24, "image"),
             (10, "image", 25, "image_1"), (15, "image", 25, "image_2"), (21, "image", 25, "image_3"),
             (23, "image", 25, "image_4"), (24, "image", 25, "image_5"), (25, "grid", 26, "images"),
             (27, "STRING", 10, "caption"), (27, "STRING", 16, "prompt"), (28, "STRING", 11, "prompt"),
             (28, "STRING", 17, "prompt"), (29, "STRING", 22, "instruction"), (29, "STRING", 24, "instruction")]
    return nodes, edges


def lumina_generated_source(model, vqgan, source_prompt, edit_prompt, size, prefix):
    """(nodes, edges): Lumina-mGPT draws the source, ATM edits it; both saved, side by side, and where it changed."""
    nodes = [
        (1, "ARE_LuminaLoader", (40, 60), {"model_name": model}),
        (2, "ARE_ChameleonVQGANLoader", (40, 260), {"vqgan_name": vqgan}),
        (3, "ARE_LuminaGenerate", (420, 60), {"prompt": source_prompt, "width": size, "height": size, "seed": 0}),
        (4, "ARE_LuminaEdit", (820, 60), {"prompt": edit_prompt, "seed": 0}),
        (9, "ARE_LuminaCodesToImage", (1200, 60), {}),
        (10, "ARE_LuminaCodesToImage", (1200, 240), {}),
        (11, "SaveImage", (1600, 60), {"filename_prefix": f"{prefix}_source"}),
        (12, "SaveImage", (1600, 360), {"filename_prefix": f"{prefix}_edit"}),
        (13, "ARE_MaskOverlay", (1200, 520), {}),
        (14, "PreviewImage", (1600, 660), {}),
    ]
    edges = [(1, "model", 3, "model"), (1, "model", 4, "model"), (3, "codes", 4, "source"),
             (2, "vqgan", 9, "vqgan"), (3, "codes", 9, "codes"), (2, "vqgan", 10, "vqgan"), (4, "codes", 10, "codes"),
             (9, "image", 11, "images"), (10, "image", 12, "images"),
             (10, "image", 13, "image"), (4, "changed_mask", 13, "mask"), (13, "image", 14, "images"),
             (2, "vqgan", 3, "preview_vqgan"), (2, "vqgan", 4, "preview_vqgan")]  # live previews
    return _compare(nodes, edges, "ATM edit")


def janus_generated_source(model, source_prompt, edit_prompt, prefix):
    """(nodes, edges): Janus-Pro draws the source, ATM edits it; both saved, side by side, and where it changed. The
    loader's tokenizer (Janus-Pro's VQ-16) serves the shared token nodes."""
    nodes = [
        (1, "ARE_JanusLoader", (40, 60), {"model_name": model}),
        (3, "ARE_JanusGenerate", (420, 60), {"prompt": source_prompt, "seed": 0}),
        (5, "ARE_SourceCache", (420, 400), {}),
        (4, "ARE_JanusEdit", (820, 60), {"prompt": edit_prompt, "seed": 0}),
        (9, "ARE_TokensToImage", (1200, 60), {}),
        (10, "ARE_TokensToImage", (1200, 240), {}),
        (11, "SaveImage", (1600, 60), {"filename_prefix": f"{prefix}_source"}),
        (12, "SaveImage", (1600, 360), {"filename_prefix": f"{prefix}_edit"}),
        (13, "ARE_MaskOverlay", (1200, 520), {}),
        (14, "PreviewImage", (1600, 660), {}),
    ]
    edges = [(1, "model", 3, "model"), (1, "model", 4, "model"), (3, "tokens", 5, "tokens"),
             (1, "tokenizer", 5, "tokenizer"), (5, "source", 4, "source"),
             (1, "tokenizer", 9, "tokenizer"), (3, "tokens", 9, "tokens"), (1, "tokenizer", 10, "tokenizer"),
             (4, "tokens", 10, "tokens"), (9, "image", 11, "images"), (10, "image", 12, "images"),
             (10, "image", 13, "image"), (4, "changed_mask", 13, "mask"), (13, "image", 14, "images"),
             (1, "tokenizer", 3, "preview_tokenizer"), (1, "tokenizer", 4, "preview_tokenizer")]  # live previews
    return _compare(nodes, edges, "ATM edit")


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
            embedded_loaders(1, "shapes-t2i", "shapes-vq", "shapes-words"),
            "a red circle at the top left and a small blue square in the center on a white background",
            "a red circle at the top left and a small yellow star in the center on a white background",
            {"seed": 0, **EMBEDDED_SAMPLING}, {"seed": 0, "candidates": "sampled", **EMBEDDED_SAMPLING}, "shapes",
            compare=True),
    ),
    "embedded_lumina_atm_edit": (
        "Embedded ShapesWorld models (no download): a scene drawn by the Lumina-mGPT-architecture model, edited with "
        "anchor token matching",
        *lumina_generated_source("(embedded) shapes-lumina", "(embedded) shapes-chameleon-vqgan", SHAPES_SOURCE,
                                 SHAPES_TARGET, 48, "shapes_lumina"),
    ),
    "lumina_atm_edit": (
        "Lumina-mGPT: generate a picture, then edit it with anchor token matching (ISLock)",
        *lumina_generated_source("Lumina-mGPT-7B-768", "chameleon", "a photo of a red fox sitting in fresh snow, "
                                 "golden hour", "a photo of a white arctic fox sitting in fresh snow, golden hour",
                                 768, "lumina"),
    ),
    "embedded_janus_atm_edit": (
        "Embedded ShapesWorld model (no download): a scene drawn by the Janus-Pro-architecture model, edited with "
        "anchor token matching",
        *janus_generated_source("(embedded) shapes-janus", SHAPES_SOURCE, SHAPES_TARGET, "shapes_janus"),
    ),
    "janus_atm_edit": (
        "Janus-Pro: generate a picture, then edit it with anchor token matching",
        *janus_generated_source("Janus-Pro-7B", "a photo of a red fox sitting in fresh snow, golden hour",
                                "a photo of a white arctic fox sitting in fresh snow, golden hour", "janus"),
    ),
    "janus_atm_photo": (
        "Janus-Pro: edit a photo with anchor token matching",
        [(1, "ARE_JanusLoader", (40, 60), {"model_name": "Janus-Pro-7B"}),
         (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
         (5, "ARE_ImageToTokens", (420, 560), {"size": 384}),
         (6, "ARE_SourceCache", (420, 820), {}),
         (8, "ARE_JanusEdit", (820, 60), {"prompt": "a watercolor painting of the same scene", "seed": 0,
                                          "use_source_seed": False}),
         (9, "ARE_TokensToImage", (1200, 60), {}),
         (10, "ARE_TokensToImage", (1200, 240), {}),
         (11, "SaveImage", (1600, 60), {"filename_prefix": "janus_photo_edit"}),
         (12, "PreviewImage", (1600, 360), {})],
        [(4, "IMAGE", 5, "image"), (1, "tokenizer", 5, "tokenizer"), (5, "tokens", 6, "tokens"),
         (1, "tokenizer", 6, "tokenizer"), (1, "model", 8, "model"), (6, "source", 8, "source"),
         (1, "tokenizer", 8, "preview_tokenizer"), (1, "tokenizer", 9, "tokenizer"), (8, "tokens", 9, "tokens"),
         (1, "tokenizer", 10, "tokenizer"), (5, "tokens", 10, "tokens"), (9, "image", 11, "images"),
         (10, "image", 12, "images")],
    ),
    "janus_atm_sweep": (
        "Janus-Pro: a sweep of anchor token matching settings as one batch, with a labelled grid",
        [(1, "ARE_JanusLoader", (40, 60), {"model_name": "Janus-Pro-7B"}),
         (3, "ARE_JanusGenerate", (420, 60), {"prompt": "a photo of a red fox sitting in fresh snow, golden hour",
                                              "seed": 0}),
         (5, "ARE_SourceCache", (420, 400), {}),
         (4, "ARE_JanusSweep", (820, 60), {"prompt": "a photo of a white arctic fox sitting in fresh snow, golden hour",
                                           "tau_values": "0.5, 1.0, 1.5", "cfg_values": "-1"}),
         (11, "SaveImage", (1600, 60), {"filename_prefix": "janus_sweep"})],
        [(1, "model", 3, "model"), (3, "tokens", 5, "tokens"), (1, "tokenizer", 5, "tokenizer"),
         (1, "model", 4, "model"), (1, "tokenizer", 4, "tokenizer"), (5, "source", 4, "source"),
         (4, "grid", 11, "images"), (1, "tokenizer", 3, "preview_tokenizer")],
    ),
    "embedded_aredit_edit": (
        "Embedded ShapesWorld models (no download): generate a scene with the Infinity-architecture model, then "
        "edit it with AREdit",
        *aredit_generated_source(
            embedded_loaders(1, "shapes-infinity", "shapes-infinity-vae", "shapes-words"),
            "a red circle at the top left and a small blue square in the center on a white background",
            "a red circle at the top left and a small yellow star in the center on a white background",
            {"seed": 0, "resolution": "48"}, EMBEDDED_INFINITY_SAMPLING, {"seed": 0, **EMBEDDED_AREDIT}, "shapes_aredit",
            compare=True),
    ),
    "embedded_editar_edit": (
        "Embedded ShapesWorld models (no download): edit a scene by instruction with the EditAR-architecture editor",
        *embedded_editor("editar"),
    ),
    "embedded_editar_from_edges": (
        "Embedded ShapesWorld models (no download): turn an edge map and a caption into an image with EditAR",
        *embedded_from_edges(),
    ),
    "embedded_varedit_edit": (
        "Embedded ShapesWorld models (no download): edit a scene by instruction with the VAREdit-architecture editor",
        *embedded_editor("varedit"),
    ),
    "embedded_compare_methods": (
        "Embedded ShapesWorld models (no download): one edit by all four methods (ATM, AREdit, EditAR, VAREdit), "
        "side by side",
        *embedded_compare_methods(),
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
            (6, "ARE_BitsToImage", (1200, 60), {}),
            (7, "SaveImage", (1540, 60), {"filename_prefix": "infinity"}),
        ],
        [(3, "text_encoder", 4, "text_encoder"), (1, "model", 5, "model"),
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
            (5, "ARE_ImageToBits", (420, 560), {"size": 512}),
            infinity_prompt(6, (420, 300), "a photo of a living room with a grey sofa"),
            (7, "ARE_AREditSource", (820, 560), {}),
            infinity_prompt(8, (820, 300), "a photo of a living room with a red leather sofa"),
            (9, "ARE_AREdit", (1200, 300), {"seed": 0, "use_source_seed": False}),
            (10, "ARE_BitsToImage", (1600, 300), {}),
            (11, "SaveImage", (1960, 300), {"filename_prefix": "aredit_real_edit"}),
            (12, "ARE_BitsToImage", (1200, 680), {}),
            (13, "PreviewImage", (1600, 680), {}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"),
         (3, "text_encoder", 6, "text_encoder"), (3, "text_encoder", 8, "text_encoder"),
         (1, "model", 7, "model"), (5, "tokens", 7, "tokens"), (6, "conditioning", 7, "source_conditioning"),
         (1, "model", 9, "model"), (7, "source", 9, "source"), (8, "conditioning", 9, "conditioning"),
         (2, "tokenizer", 10, "tokenizer"), (9, "tokens", 10, "tokens"), (10, "image", 11, "images"),
         (2, "tokenizer", 12, "tokenizer"), (5, "tokens", 12, "tokens"), (12, "image", 13, "images")],
    ),
    "aredit_masked_edit": (
        "AREdit: edit only the masked region of a photo (paint the mask in the image's mask editor)",
        infinity_loaders() + [
            (4, "LoadImage", (40, 560), {"image": "example.png", "upload": "image"}),
            (5, "ARE_ImageToBits", (420, 560), {"size": 512}),
            infinity_prompt(6, (420, 300), "a photo of a table with a vase"),
            (7, "ARE_AREditSource", (820, 560), {}),
            infinity_prompt(8, (820, 300), "a photo of a table with a bouquet of red roses"),
            (9, "ARE_AREdit", (1200, 300), {"seed": 0, "use_source_seed": False}),
            (10, "ARE_BitsToImage", (1600, 300), {}),
            (11, "SaveImage", (1960, 300), {"filename_prefix": "aredit_masked_edit"}),
        ],
        [(4, "IMAGE", 5, "image"), (2, "tokenizer", 5, "tokenizer"),
         (3, "text_encoder", 6, "text_encoder"), (3, "text_encoder", 8, "text_encoder"),
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
        [(3, "text_encoder", 4, "text_encoder"), (3, "text_encoder", 7, "text_encoder"), (1, "model", 5, "model"), (4, "conditioning", 5, "conditioning"),
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

PHOTO = "choose your picture in Load Image (click 'choose file to upload')."
PAINT = ("choose your picture in Load Image, then paint the area that may change: right-click Load Image > Open in "
         "MaskEditor, paint, Save. An unpainted mask stops with a message.")
# Workflow key -> (file name = the title ComfyUI's template browser shows, what it does, what to do first). The
# no-download ones come first and say so (the browser lists a pack's templates in no fixed order).
INFO = {
    "embedded_atm_edit": ("01 No download - ATM edit (embedded LlamaGen models)",
                          "Makes a ShapesWorld scene from a caption, then edits it with Anchor Token Matching (ISLock): "
                          "the edited caption is redrawn, but every token that can stay as it was stays.",
                          "press Run. Then change the edited caption (the second AR Text Encode) and run again."),
    "embedded_lumina_atm_edit": ("07 No download - ATM edit on the Lumina-mGPT architecture (embedded)",
                                 "Draws a ShapesWorld scene with the Lumina-mGPT-architecture model (Chameleon "
                                 "transformer and VQGAN), then edits it with Anchor Token Matching, the ISLock "
                                 "paper's second backbone, on the cosine of first-layer embeddings. The -1 widgets take the model's "
                                 f"own settings, chosen on validation cases (cfg {EMBEDDED_LUMINA['cfg_scale']:g}, K "
                                 f"{EMBEDDED_LUMINA['K']}, tau {EMBEDDED_LUMINA['tau']:g}; the paper's K 100 "
                                 "and Lumina's cfg 4 are for the 7B files).",
                                 "press Run. Then change the edit prompt (AR Lumina Edit) and run again."),
    "lumina_atm_edit": ("50 Lumina-mGPT ATM edit of a generated picture",
                        "Lumina-mGPT-7B-768 draws a picture from the first prompt; Anchor Token Matching redraws it "
                        "under the second, keeping every code that can stay (K 100, tau 0.4, as the ISLock paper).",
                        "press Run (the 14 GB model downloads on first use; Meta's VQGAN must be put in "
                        "models/vq/chameleon by hand: vqgan.ckpt and vqgan.yaml from the Chameleon weights)."),
    "embedded_janus_atm_edit": ("08 No download - ATM edit on the Janus-Pro architecture (embedded)",
                                "Draws a ShapesWorld scene with the Janus-Pro-architecture model (DeepSeek's layout: "
                                "a small Llama with Janus-Pro's image head and LlamaGen's VQ-16 inside), then edits it "
                                "with Anchor Token Matching. The -1 widgets take the model's own settings, chosen on "
                                f"validation cases (cfg {EMBEDDED_JANUS['cfg_scale']:g}, K {EMBEDDED_JANUS['K']}, tau "
                                f"{EMBEDDED_JANUS['tau']:g}; the 7B files use Janus-Pro's cfg 5 and K 150).",
                                "press Run. Then change the edit prompt (AR Janus Edit) and run again."),
    "janus_atm_edit": ("60 Janus-Pro ATM edit of a generated picture",
                       "Janus-Pro-7B draws a 384 px picture from the first prompt (its own prompt format and guidance, "
                       "cfg 5); Anchor Token Matching redraws it under the second, keeping every code that can stay "
                       "(K 150, alpha 0.6, tau 1, as on LlamaGen: the same VQ-16 codes).",
                       "press Run (the 14.8 GB folder downloads on first use; Janus-Pro-1B, 4.2 GB, is the smaller "
                       "choice in the loader). Then change the edit prompt (AR Janus Edit) and run again."),
    "janus_atm_photo": ("61 Janus-Pro ATM edit of a photo",
                        "Edits your photo (fitted to 384 px) with Janus-Pro and Anchor Token Matching from a prompt "
                        "that describes the result: every code that can stay as it was stays.", PHOTO),
    "janus_atm_sweep": ("62 Janus-Pro ATM sweep of tau as one batch, with a grid",
                        "Janus-Pro draws a picture, then tries several closeness thresholds (tau) of the edit in one "
                        "batch and shows them in a labelled grid.",
                        "write both prompts and the values to try, then press Run."),
    "embedded_aredit_edit": ("02 No download - AREdit edit (embedded Infinity models)",
                             "Makes a ShapesWorld scene with the next-scale Infinity-architecture model, then edits it "
                             "with AREdit: only the bits the edited caption disagrees with are redrawn.",
                             "press Run. Then change the edited caption and run again."),
    "embedded_editar_edit": ("03 No download - EditAR instruction edit (embedded)",
                             "Draws a ShapesWorld scene and edits it by an instruction with the EditAR-architecture "
                             "editor (source, then the edit, side by side).",
                             "press Run. Then write another instruction, e.g. 'make the red circle small'."),
    "embedded_editar_from_edges": ("04 No download - EditAR edge map to image (embedded)",
                                   "Turns an edge map (outlines) and a caption into a picture with the EditAR-architecture "
                                   "editor: the outlines fix shapes, sizes and places, the caption the colours.",
                                   "press Run. Then change the caption in the Caption box: the scene and EditAR both read it."),
    "embedded_varedit_edit": ("05 No download - VAREdit instruction edit (embedded)",
                              "Draws a ShapesWorld scene and edits it by an instruction with the VAREdit-architecture "
                              "editor (next-scale, with the source as a scale-aligned reference).",
                              "press Run. Then write another instruction, e.g. 'change the background to gray'."),
    "embedded_compare_methods": ("06 No download - one edit by all four methods (embedded)",
                                 "One ShapesWorld scene edited by ATM and AREdit (from the edited caption) and by EditAR "
                                 "and VAREdit (from the instruction), side by side: which method suits this edit?",
                                 "press Run. To try another edit, change the three text boxes on the left: the source "
                                 "caption, the edited caption and the instruction (each read by every node that needs "
                                 "it)."),
    "llamagen_text_to_image": ("10 LlamaGen text to image", "Makes a picture from a prompt with LlamaGen (next-token).",
                               "write your prompt and press Run."),
    "atm_edit_generated_source": ("11 ATM edit of a generated picture (LlamaGen)",
                                  "Makes a picture from a prompt, then edits it with Anchor Token Matching (ISLock) "
                                  "from an edited prompt, keeping what the edit does not touch.",
                                  "write both prompts (the same sentence with your change) and press Run."),
    "atm_edit_real_image": ("12 ATM edit of a photo (LlamaGen)",
                            "Edits your photo with Anchor Token Matching from a prompt that describes the result.",
                            PHOTO),
    "atm_masked_edit": ("13 ATM edit inside a painted mask (LlamaGen)",
                        "Edits only the painted area of your photo with Anchor Token Matching.", PAINT),
    "atm_tau_sweep_grid": ("14 ATM sweep of tau as one batch, with a grid (LlamaGen)",
                           "Tries several closeness thresholds (tau) in one batch and shows them in a labelled grid.",
                           "write both prompts and the values to try, then press Run."),
    "infinity_text_to_image": ("20 Infinity text to image", "Makes a picture from a prompt with Infinity (next-scale).",
                               "write your prompt and press Run."),
    "aredit_generated_source": ("21 AREdit edit of a generated picture (Infinity)",
                                "Makes a picture with Infinity, then edits it with AREdit from an edited prompt.",
                                "write both prompts and press Run."),
    "aredit_real_image": ("22 AREdit edit of a photo (Infinity)",
                          "Edits your photo with AREdit: describe the photo in the first prompt, the result in the "
                          "second.", PHOTO),
    "aredit_masked_edit": ("23 AREdit edit inside a painted mask (Infinity)",
                           "Edits only the painted area of your photo with AREdit.", PAINT),
    "aredit_gamma_threshold_sweep_grid": ("24 AREdit sweep of gamma and threshold, with a grid (Infinity)",
                                          "Tries several AREdit settings on one cached source in one batch, in a "
                                          "labelled grid.", "write both prompts and the values to try, then press Run."),
    "editar_instruction_edit": ("30 EditAR instruction edit", "Edits your photo by an instruction with EditAR.", PHOTO),
    "editar_depth_to_image": ("31 EditAR depth map to picture",
                              "Makes a picture from a depth map (from disk or a depth preprocessor node) and a "
                              "description with EditAR.", "choose the depth map in Load Image and describe the picture."),
    "editar_cfg_sweep_grid": ("32 EditAR guidance sweep, with a grid",
                              "Tries several seeds and guidance scales of EditAR in one batch, in a labelled grid.", PHOTO),
    "varedit_instruction_edit": ("40 VAREdit instruction edit", "Edits your photo by an instruction with VAREdit.", PHOTO),
    "varedit_masked_edit": ("41 VAREdit edit inside a painted mask", "Edits only the painted area of your photo with "
                            "VAREdit.", PAINT),
    "varedit_cfg_sweep_grid": ("42 VAREdit guidance sweep, with a grid",
                               "Tries several seeds and guidance scales of VAREdit in one batch, in a labelled grid.", PHOTO),
}


def main():
    pack = load_pack()
    folder = os.path.join(ROOT, "workflows")
    os.makedirs(folder, exist_ok=True)
    if set(INFO) != set(WORKFLOWS):
        raise SystemExit(f"INFO and WORKFLOWS differ: {sorted(set(INFO) ^ set(WORKFLOWS))}")
    names = {INFO[key][0] + ".json" for key in WORKFLOWS}
    for stale in [f for f in os.listdir(folder) if f.endswith(".json") and f not in names]:
        os.remove(os.path.join(folder, stale))  # the folder is generated: renamed workflows leave no twin
    for key, (title, nodes, edges) in WORKFLOWS.items():
        file_name, what, first = INFO[key]
        wf = build(pack.NODE_CLASS_MAPPINGS, title, nodes, edges, what, first)
        with open(os.path.join(folder, file_name + ".json"), "w") as f:
            json.dump(wf, f, indent=1)
            f.write("\n")
        print("wrote", file_name)


if __name__ == "__main__":
    main()
