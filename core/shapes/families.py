"""Hard ShapesEdit families: the cases the plain benchmark draws too rarely to measure.

Each family is a seeded stream of edits (same `world.Edit` as the benchmark) that forces one difficulty:

- `twins`: two identical objects (shape, colour, size), one of them edited, so an instruction names it by its
  position ("remove the red circle at the top left") and a prompt must keep the other;
- `kept top-left`: an object in the top-left cell that the edit leaves alone (the first token an editor writes);
- `three objects`: three objects, one edited (replace, attribute, remove, background);
- `recoloured replace`: a new shape in a new colour ("replace the blue square with a yellow star");
- `checkered`: a background changed to or from the checkerboard, or another edit on it;
- `untextured`: a source whose empty cells carry no texture (every edit kind).

The kinds rotate within a family, as in `world.edit_cases`, so a family's figure is not one kind's.
"""
from __future__ import annotations

import random
from dataclasses import replace

from . import world
from .instructions import recoloured_replace

FAMILIES = ("twins", "kept top-left", "three objects", "recoloured replace", "checkered", "untextured")
_KINDS = {
    "twins": ("replace", "attribute", "remove"),
    "kept top-left": world.EDIT_KINDS,
    "three objects": ("replace", "attribute", "remove", "background"),
    "recoloured replace": ("replace",),
    "checkered": ("background", "background", "replace", "attribute", "add", "remove"),
    "untextured": world.EDIT_KINDS,
}


def _scene(rng: random.Random, family: str, kind: str) -> world.Scene:
    scene = world.random_scene(rng, 3)
    objects, background = list(scene.objects), scene.background
    if family == "twins":
        n = rng.choice((2, 3))
        cells = rng.sample(range(9), n)
        twin = world.Obj(rng.choice(world.SHAPES), rng.choice(list(world.COLORS)), rng.choice(list(world.SIZES)), 0)
        objects = [replace(twin, cell=cells[0]), replace(twin, cell=cells[1])]
        if n == 3:  # a third object that is not a third twin
            while True:
                o = world.Obj(rng.choice(world.SHAPES), rng.choice(list(world.COLORS)), rng.choice(list(world.SIZES)), cells[2])
                if (o.shape, o.color) != (twin.shape, twin.color):
                    break
            objects.append(o)
    elif family == "kept top-left":
        if all(o.cell != 0 for o in objects):
            objects[0] = replace(objects[0], cell=0)
        if len(objects) < 2 and kind in ("replace", "attribute", "remove"):
            cell = rng.choice(range(1, 9))
            objects.append(world.Obj(rng.choice(world.SHAPES), rng.choice(list(world.COLORS)), rng.choice(list(world.SIZES)), cell))
        if kind == "add" and len(objects) >= 3:
            objects = [o for o in objects if o.cell == 0] + [o for o in objects if o.cell != 0][:1]
    elif family == "three objects":
        cells = rng.sample(range(9), 3)
        objects = [world.Obj(rng.choice(world.SHAPES), rng.choice(list(world.COLORS)), rng.choice(list(world.SIZES)), c)
                   for c in cells]
    elif family == "checkered":
        background = "checkered" if kind != "background" or rng.random() < 0.5 else \
            rng.choice([b for b in world.BACKGROUNDS if b != "checkered"])
    if kind == "remove" and len(objects) < 2:
        cell = rng.choice([c for c in range(9) if all(o.cell != c for o in objects)])
        objects.append(world.Obj(rng.choice(world.SHAPES), rng.choice(list(world.COLORS)), rng.choice(list(world.SIZES)), cell))
    if kind == "add" and len(objects) >= 3:
        objects = objects[:2]
    cells = {o.cell for o in objects}
    decor = [0 if c in cells or family == "untextured" else rng.randrange(len(world.DECORS)) for c in range(9)]
    return world.Scene(tuple(objects), background, tuple(decor))


def _edit(rng: random.Random, family: str, kind: str, scene: world.Scene) -> world.Edit | None:
    """An edit of `kind` on `scene` that has the family's difficulty, or None to draw again."""
    if family == "checkered" and kind == "background":
        if scene.background == "checkered":
            new = rng.choice([b for b in world.BACKGROUNDS if b != "checkered"])
        else:
            new = "checkered"
        return world.Edit(kind, scene, replace(scene, background=new), f"background {scene.background} -> {new}")
    edit = world.random_edit(rng, scene, kind)
    if family == "recoloured replace":
        return recoloured_replace(rng, edit)
    changed = [o for o in scene.objects if edit.target.object_at(o.cell) != o]
    if family == "twins":
        twins = [o for o in scene.objects if sum((p.shape, p.color, p.size) == (o.shape, o.color, o.size)
                                                 for p in scene.objects) == 2]
        return edit if changed and changed[0] in twins else None
    if family == "kept top-left":
        return edit if scene.object_at(0) is not None and edit.target.object_at(0) == scene.object_at(0) else None
    return edit


def family_edit(rng: random.Random, family: str, kind: str | None = None) -> world.Edit:
    """One edit of the family (of `kind`, else one of the family's kinds at random), drawn from `rng`."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    kind = kind or rng.choice(_KINDS[family])
    while True:
        edit = _edit(rng, family, kind, _scene(rng, family, kind))
        if edit is not None:
            return edit


def family_cases(family: str, n: int, seed: int = 0) -> list[world.Edit]:
    """n seeded edits of one hard family, the family's kinds in rotation (its own stream per family and seed)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    rng, kinds = random.Random(f"{family}/{seed}"), _KINDS[family]
    return [family_edit(rng, family, kinds[i % len(kinds)]) for i in range(n)]


def is_in_family(family: str, edit: world.Edit) -> bool:
    """Whether an edit has the family's difficulty (what the tests check every generated case against)."""
    src, tgt = edit.source, edit.target
    changed = [o for o in src.objects if tgt.object_at(o.cell) != o]
    if family == "twins":
        return bool(changed) and sum((o.shape, o.color, o.size) == (changed[0].shape, changed[0].color, changed[0].size)
                                     for o in src.objects) == 2
    if family == "kept top-left":
        return src.object_at(0) is not None and tgt.object_at(0) == src.object_at(0)
    if family == "three objects":
        return len(src.objects) == 3
    if family == "recoloured replace":
        return edit.kind == "replace" and all(tgt.object_at(o.cell).color != o.color for o in changed) and bool(changed)
    if family == "checkered":
        return "checkered" in (src.background, tgt.background)
    if family == "untextured":
        return not any(src.decor)
    raise ValueError(f"unknown family {family!r}")
