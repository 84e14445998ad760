"""Instructions and control maps for ShapesWorld: what the embedded instruction editors (EditAR and VAREdit
architectures) are trained and measured on.

- `instructions(edit)`: the phrasings of one edit ("replace the blue square with a yellow star", "make the
  red circle small", "add a small green triangle at the bottom right", "remove the blue square", "change the
  background to gray"). An object is named by colour and shape, plus its position when another object of the
  same colour and shape would make that ambiguous.
- `apply_instruction(scene, text)`: the inverse: the scene an instruction asks for (objects and background),
  or a ValueError saying what the grammar is. `check_prompt` is the grammar the embedded instruction text
  encoder enforces (instructions, or EditAR's canny / segmentation templates around a caption).
- `edge_map(scene)` / `segmentation_map(scene)`: control images for EditAR's edge- and segmentation-to-image
  tasks. The edge map is a line drawing (2 px dark outlines on gray); the segmentation map fills each object
  with its shape's class colour on white. Both keep exactly what a caption does not say (shape, size,
  position) and drop what it does (colours, background); the embedded VQ codes each (shape, size) of them to
  its own tokens (tested), so an editor can read them.
"""
from __future__ import annotations

import random
import re
from dataclasses import replace

import numpy as np

from . import world

# EditAR's prompt templates for the control tasks, as the embedded encoder reads them (core.llamagen.editar).
CONTROL_PREFIXES = {
    "canny": "given the canny edge image generate an image following the description",
    "segmentation": "given the segmentation mask generate an image following the description",
}
EDGE_COLOR, EDGE_BACKGROUND, EDGE_WIDTH = (25, 25, 25), (150, 150, 150), 2
SEGMENT_COLORS = {"circle": "red", "square": "green", "triangle": "blue", "star": "yellow"}  # class palette
SEGMENT_BACKGROUND = (245, 245, 245)
EXAMPLE_INSTRUCTION = "replace the blue square with a yellow star"

_REPLACE = ("replace {ref} with a {color} {shape}", "turn {ref} into a {shape}", "change {ref} to a {shape}")
_REPLACE_RECOLOURED = ("replace {ref} with a {color} {shape}", "turn {ref} into a {color} {shape}",
                       "change {ref} to a {color} {shape}")  # a new shape in a new colour
_COLOR = ("make {ref} {color}", "paint {ref} {color}", "change the color of {ref} to {color}")
_SIZE = {"small": ("make {ref} small", "make {ref} smaller", "shrink {ref}"),
         "large": ("make {ref} large", "make {ref} bigger", "enlarge {ref}")}
_ADD = ("add {obj}", "put {obj}", "draw {obj}")
_REMOVE = ("remove {ref}", "delete {ref}", "erase {ref}")
_BACKGROUND = ("change the background to {bg}", "make the background {bg}", "turn the background {bg}")


def vocabulary() -> list[str]:
    """Every word an instruction or a control prompt can contain (captions' words included)."""
    words = set(world.vocabulary()) | {"large", "an"}
    for templates in (_REPLACE, _COLOR, *_SIZE.values(), _ADD, _REMOVE, _BACKGROUND, tuple(CONTROL_PREFIXES.values())):
        for t in templates:
            words |= set(re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", t)))
    return sorted(words)


def reference(scene: world.Scene, obj: world.Obj) -> str:
    """'the red circle', with the position when another object has the same colour and shape."""
    twin = any(o.cell != obj.cell and (o.color, o.shape) == (obj.color, obj.shape) for o in scene.objects)
    return f"the {obj.color} {obj.shape}" + (f" {world.position_phrase(obj.cell)}" if twin else "")


def instructions(edit: world.Edit) -> list[str]:
    """Every phrasing of the edit (the first is the plainest)."""
    src, tgt = edit.source, edit.target
    if edit.kind == "background":
        return [t.format(bg=tgt.background) for t in _BACKGROUND]
    if edit.kind == "add":
        new = next(o for o in tgt.objects if src.object_at(o.cell) is None)
        return [t.format(obj=new.phrase()) for t in _ADD]
    if edit.kind == "remove":
        gone = next(o for o in src.objects if tgt.object_at(o.cell) is None)
        return [t.format(ref=reference(src, gone)) for t in _REMOVE]
    old = next(o for o in src.objects if tgt.object_at(o.cell) != o)
    new = tgt.object_at(old.cell)
    ref = reference(src, old)
    if new.shape != old.shape:
        forms = _REPLACE if new.color == old.color else _REPLACE_RECOLOURED
        return [t.format(ref=ref, color=new.color, shape=new.shape) for t in forms]
    if new.color != old.color:
        return [t.format(ref=ref, color=new.color) for t in _COLOR]
    return [t.format(ref=ref) for t in _SIZE[new.size]]


def recoloured_replace(rng: random.Random, edit: world.Edit) -> world.Edit:
    """A replacement that also changes the object's colour ("replace the blue square with a yellow star"): the
    benchmark's replacements keep the colour, but an instruction may well ask for both."""
    old = next(o for o in edit.source.objects if edit.target.object_at(o.cell) != o)
    new = replace(edit.target.object_at(old.cell), color=rng.choice([c for c in world.COLORS if c != old.color]))
    objects = tuple(new if o.cell == old.cell else o for o in edit.target.objects)
    return world.Edit("replace", edit.source, replace(edit.target, objects=objects), f"{edit.detail}, {old.color} -> {new.color}")


def instruction(edit: world.Edit, rng: random.Random | None = None) -> str:
    """One phrasing: random with `rng`, else the plainest."""
    options = instructions(edit)
    return rng.choice(options) if rng is not None else options[0]


# ---- reading instructions back --------------------------------------------------------------------------

_C, _S = "|".join(world.COLORS), "|".join(world.SHAPES)
_POS = "|".join(sorted((world.position_phrase(c) for c in range(9)), key=len, reverse=True))
_BG = "|".join(world.BACKGROUNDS)
_REF = rf"the (?P<color>{_C}) (?P<shape>{_S})(?: (?P<pos>{_POS}))?"
_PATTERNS = [
    ("background", rf"(?:change the background to|make the background|turn the background) (?P<bg>{_BG})"),
    ("replace", rf"replace {_REF} with an? (?P<new_color>{_C}) (?P<new_shape>{_S})"),
    ("replace", rf"turn {_REF} into an? (?:(?P<new_color>{_C}) )?(?P<new_shape>{_S})"),
    ("replace", rf"change {_REF} to an? (?:(?P<new_color>{_C}) )?(?P<new_shape>{_S})"),
    ("color", rf"(?:make|paint) {_REF} (?P<new_color>{_C})"),
    ("color", rf"change the color of {_REF} to (?P<new_color>{_C})"),
    ("size", rf"make {_REF} (?P<new_size>small|smaller|large|bigger)"),
    ("size", rf"(?P<verb>shrink|enlarge) {_REF}"),
    ("add", rf"(?:add|put|draw) (?P<obj>an? (?:small )?(?:{_C}) (?:{_S}) (?:{_POS}))"),
    ("remove", rf"(?:remove|delete|erase) {_REF}"),
]


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+", text.lower()))


def _grammar_error(text: str, why: str) -> ValueError:
    return ValueError(f"{text!r} is not an instruction the embedded editors read ({why}); they read instructions "
                      f"like {EXAMPLE_INSTRUCTION!r}, 'make the red circle small', 'add a small green triangle at "
                      f"the bottom right', 'remove the blue square', 'change the background to gray'")


def _match(text: str) -> tuple[str, dict]:
    s = _words(text)
    for kind, pattern in _PATTERNS:
        m = re.fullmatch(pattern, s)
        if m:
            return kind, {k: v for k, v in m.groupdict().items() if v is not None}
    raise _grammar_error(text, "no instruction form matches it")


def _find(scene: world.Scene, text: str, fields: dict) -> world.Obj:
    found = [o for o in scene.objects if (o.color, o.shape) == (fields["color"], fields["shape"])
             and ("pos" not in fields or world.position_phrase(o.cell) == fields["pos"])]
    what = f"the {fields['color']} {fields['shape']}" + (f" {fields['pos']}" if "pos" in fields else "")
    if not found:
        raise ValueError(f"{text!r}: the image has no {what[4:]}")
    if len(found) > 1:
        raise ValueError(f"{text!r}: the image has {len(found)} {fields['color']} {fields['shape']}s; say which "
                         f"(e.g. '{what} {world.position_phrase(found[0].cell)}')")
    return found[0]


def apply_instruction(scene: world.Scene, text: str) -> world.Scene:
    """The scene (objects and background, no texture) that an instruction asks for."""
    kind, f = _match(text)
    objs = list(scene.captioned().objects)
    if kind == "background":
        return world.Scene(tuple(objs), f["bg"])
    if kind == "add":
        new = world.parse_caption(f"{f['obj']} on a white background").objects[0]
        if scene.object_at(new.cell) is not None:
            raise ValueError(f"{text!r}: that position already holds {scene.object_at(new.cell).phrase()}")
        objs.append(new)
    else:
        old = _find(scene, text, f)
        i = objs.index(old)
        if kind == "remove":
            objs.pop(i)
        elif kind == "replace":
            objs[i] = replace(old, shape=f["new_shape"], color=f.get("new_color", old.color))
        elif kind == "color":
            objs[i] = replace(old, color=f["new_color"])
        else:
            small = f.get("new_size") in ("small", "smaller") or f.get("verb") == "shrink"
            objs[i] = replace(old, size="small" if small else "large")
    return world.Scene(tuple(sorted(objs, key=lambda o: o.cell)), scene.background)


def check_prompt(text: str) -> str:
    """The grammar of the embedded instruction encoder: an instruction, or a control task's template around
    a caption. -> the task ('edit', 'canny' or 'segmentation'); a ValueError otherwise."""
    s = _words(text)
    for task, prefix in CONTROL_PREFIXES.items():
        if s.startswith(prefix + " "):
            world.parse_caption(s[len(prefix) + 1:])
            return task
    _match(text)
    return "edit"


# ---- control maps ---------------------------------------------------------------------------------------

def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    inner = mask.copy()
    for _ in range(width):  # erode by one pixel (4-neighbourhood) per step
        inner[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
    return mask & ~inner


def edge_map(scene: world.Scene) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: every object's outline, 2 px dark lines on gray (a line drawing)."""
    img = np.empty((world.SIZE, world.SIZE, 3), np.uint8)
    img[:] = EDGE_BACKGROUND
    for o in scene.objects:
        img[_outline(world.object_mask(o), EDGE_WIDTH)] = EDGE_COLOR
    return img


def segmentation_map(scene: world.Scene) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: each object filled with its shape's class colour, on white."""
    img = np.empty((world.SIZE, world.SIZE, 3), np.uint8)
    img[:] = SEGMENT_BACKGROUND
    for o in scene.objects:
        img[world.object_mask(o)] = world.COLORS[SEGMENT_COLORS[o.shape]]
    return img


def control_map(task: str, scene: world.Scene) -> np.ndarray:
    if task == "canny":
        return edge_map(scene)
    if task == "segmentation":
        return segmentation_map(scene)
    raise ValueError(f"control task must be canny or segmentation, got {task!r}")
