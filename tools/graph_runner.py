"""A minimal executor for ComfyUI graphs: runs the pack's nodes and workflows in tests and in
tools/make_thumbnails.py, outside ComfyUI.

It follows ComfyUI's semantics for what the pack uses: API-format graphs {id: {class_type, inputs}},
inputs either literals or [source_id, output_index]; UI-format workflows are converted with the
positional widget rules the ComfyUI front end uses (a seed widget with control_after_generate is
followed by one extra value).
"""
from __future__ import annotations

from ar_edit_pack import NODE_CLASS_MAPPINGS  # the pack, registered under this name by its importer

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
VIRTUAL = {"Note", "MarkdownNote"}
# ComfyUI's own nodes in the shipped workflows: widget names in front-end order, and what runs the pure ones here
BUILTIN_WIDGETS = {"SaveImage": ["filename_prefix"], "PreviewImage": [], "LoadImage": ["image", "upload"],
                   "MaskToImage": [], "PrimitiveStringMultiline": ["value"]}
PURE_BUILTINS = {"PrimitiveStringMultiline": lambda value: (value,)}


def is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES or kind == "COMBO"


def input_specs(class_type: str) -> dict:
    types = NODE_CLASS_MAPPINGS[class_type].INPUT_TYPES()
    return {**types.get("required", {}), **types.get("optional", {})}


def widget_names(class_type: str) -> list[tuple[str, tuple]]:
    return [(name, spec) for name, spec in input_specs(class_type).items() if is_widget(spec)]


def ui_to_api(workflow: dict, builtin_widgets: dict | None = None) -> dict:
    """A linked widget (a text typed once in a String node) takes its link; its own value, which the front end
    keeps in widgets_values, is skipped, as ComfyUI does."""
    builtin_widgets = {**BUILTIN_WIDGETS, **(builtin_widgets or {})}
    links = {l[0]: l for l in workflow["links"]}  # id -> [id, src, src_slot, dst, dst_slot, type]
    api = {}
    for node in workflow["nodes"]:
        ct = node["type"]
        if ct in VIRTUAL:
            continue  # front-end only (notes): never sent to the server
        inputs = {}
        for inp in node.get("inputs", []):
            if inp.get("link") is not None:
                _, src, slot, *_ = links[inp["link"]]
                inputs[inp["name"]] = [str(src), slot]
        values = list(node.get("widgets_values", []))
        if ct in builtin_widgets:
            inputs.update((k, v) for k, v in zip(builtin_widgets[ct], values) if k not in inputs)
            api[str(node["id"])] = {"class_type": ct, "inputs": inputs}
            continue
        for name, spec in widget_names(ct):
            if not values:  # a workflow saved before this widget existed: the front end gives it its default
                opts = spec[1] if len(spec) > 1 else {}
                inputs.setdefault(name, opts.get("default", spec[0][0] if isinstance(spec[0], list) else None))
                continue
            value = values.pop(0)
            inputs.setdefault(name, value)  # a linked widget keeps its link
            if len(spec) > 1 and spec[1].get("control_after_generate"):
                values.pop(0)
        api[str(node["id"])] = {"class_type": ct, "inputs": inputs}
    return api


class TypeMismatch(ValueError):
    pass


def check_types(api: dict) -> None:
    """ComfyUI's rule, checked before anything runs: a link's output type must be the input's declared type."""
    for node_id, node in api.items():
        if node["class_type"] not in NODE_CLASS_MAPPINGS:
            continue
        specs = input_specs(node["class_type"])
        for name, value in node["inputs"].items():
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
                continue
            source = api[value[0]]["class_type"]
            if source not in NODE_CLASS_MAPPINGS or name not in specs:
                continue
            given, wanted = NODE_CLASS_MAPPINGS[source].RETURN_TYPES[value[1]], specs[name][0]
            if given != wanted:
                raise TypeMismatch(f"node {node_id} ({node['class_type']}) input {name}: return type mismatch "
                                   f"between linked nodes, received_type({given}) mismatch input_type({wanted})")


def run_graph(api: dict, builtins: dict | None = None) -> dict:
    """Execute every node once (memoised); returns {node_id: outputs tuple}. `builtins` maps ComfyUI's
    own node types to stand-ins: callable(**inputs) -> outputs tuple."""
    results: dict[str, tuple] = {}
    builtins = {**PURE_BUILTINS, **(builtins or {})}
    check_types(api)

    def evaluate(node_id: str):
        if node_id in results:
            return results[node_id]
        node = api[node_id]
        kwargs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                kwargs[name] = evaluate(value[0])[value[1]]
            else:
                kwargs[name] = value
        if node["class_type"] in builtins:
            out = builtins[node["class_type"]](**kwargs)
        else:
            cls = NODE_CLASS_MAPPINGS[node["class_type"]]
            out = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):  # {"ui": ..., "result": (...)}
            out = out.get("result", ())
        results[node_id] = out
        return out

    for node_id in api:
        evaluate(node_id)
    return results
