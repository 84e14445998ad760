"""ShapesWorld: a procedural scene world with exact ground truth, for training and measuring editing.

A scene is 1-3 objects (circle, square, triangle, star; six colours; large or small) in distinct cells
of a 3x3 layout on a background (four colours or "checkered": a checkerboard of 16 px squares), and in each empty cell a faint texture
(plain, stripes or dots) that no caption mentions: like the unmentioned details of a real photo, it is what
an editor must preserve and what regenerating from an edited prompt re-rolls. Rendered without anti-aliasing at
48x48 px so that every pixel is exactly known. Each layout cell is 16 px, exactly one token of a stride-16
VQ tokenizer: a scene is a 3x3 token grid, which keeps the embedded models small enough to train on a CPU. Each scene has an English caption, and any scene can be
edited in the five ways the ISLock paper evaluates (object replacement, attribute change, addition,
removal, background change), giving the edit prompt, the edited image and the changed-pixel mask.
`parse_image` reads a rendered or generated image back into objects, so "does the image show what the
caption says" is a measured fact. Everything is deterministic given a seed.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import numpy as np

SIZE = 48  # image side in pixels
CELL = SIZE // 3  # 3x3 layout cells
SHAPES = ("circle", "square", "triangle", "star")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 200, 30),
          "purple": (140, 50, 190), "black": (25, 25, 25)}
BACKGROUNDS = {"white": (245, 245, 245), "gray": (150, 150, 150), "pink": (250, 195, 210),
               "sky blue": (165, 205, 240), "checkered": None}
CHECKER = ((245, 245, 245), (190, 190, 190))  # 16 px squares: one layout cell each
SIZES = {"large": 14, "small": 9}
ROWS, COLS = ("top", "middle", "bottom"), ("left", "center", "right")
EDIT_KINDS = ("replace", "attribute", "add", "remove", "background")
MIN_PIXELS = 12  # fewer foreground pixels than this in a cell: no object there
DECORS = ("plain", "stripes", "dots")  # uncaptioned texture of an empty cell
DECOR_SHADE = 24  # per-channel darkening of texture pixels (72 summed: below the parser's object threshold)
NO_DECOR = (0,) * 9


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str  # "large" | "small"
    cell: int  # 0..8, row-major

    def phrase(self) -> str:
        size = "small " if self.size == "small" else ""
        return f"a {size}{self.color} {self.shape} {position_phrase(self.cell)}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: str
    decor: tuple[int, ...] = NO_DECOR  # per cell, index into DECORS; 0 wherever an object is

    def __post_init__(self):
        if len(self.decor) != 9 or any(self.decor[o.cell] for o in self.objects):
            raise ValueError("decor: nine entries, 0 (plain) in every cell that holds an object")

    def captioned(self) -> "Scene":
        """What the caption determines: objects in cell order and the background (no texture)."""
        return Scene(tuple(sorted(self.objects, key=lambda o: o.cell)), self.background)

    def caption(self) -> str:
        parts = " and ".join(o.phrase() for o in sorted(self.objects, key=lambda o: o.cell))
        bg = "a checkered background" if self.background == "checkered" else f"a {self.background} background"
        return f"{parts} on {bg}" if parts else bg

    def object_at(self, cell: int) -> Obj | None:
        return next((o for o in self.objects if o.cell == cell), None)


def position_phrase(cell: int) -> str:
    r, c = divmod(cell, 3)
    if (r, c) == (1, 1):
        return "in the center"
    if r == 1:
        return f"on the {COLS[c]}"
    if c == 1:
        return f"at the {ROWS[r]}"
    return f"at the {ROWS[r]} {COLS[c]}"


_POSITIONS = {position_phrase(c): c for c in range(9)}
_OBJECT = (rf"a (small |large )?({'|'.join(COLORS)}) ({'|'.join(SHAPES)}) "
           rf"({'|'.join(sorted(_POSITIONS, key=len, reverse=True))})")
_BACKGROUND = rf"an? ({'|'.join(BACKGROUNDS)}) background"
EXAMPLE_CAPTION = "a red circle at the top left and a small blue square in the center on a white background"
EXAMPLE_EDITED = "a red circle at the top left and a small yellow star in the center on a white background"  # the demo's edit


def parse_caption(text: str) -> Scene:
    """A caption in the world's grammar -> the scene it describes (objects and background; no texture). Anything
    else is a ValueError that says what the grammar is: the embedded models understand nothing else."""
    s = " ".join(re.findall(r"[a-z]+", text.lower()))
    head, sep, bg = s.rpartition(" on ") if " on " in s and not re.fullmatch(_BACKGROUND, s) else ("", "", s)
    bg_match = re.fullmatch(_BACKGROUND, bg)
    phrases = head.split(" and ") if sep else []
    objects, matches = [], [re.fullmatch(_OBJECT, p) for p in phrases]
    if bg_match is None or (sep and not phrases) or not all(matches):
        bad = next((p for p, m in zip(phrases, matches) if m is None), None)
        what = f"cannot read {bad!r} as an object" if bad else "it must end with the background"
        raise ValueError(f"{text!r} is not a ShapesWorld caption ({what}): the embedded models read captions like "
                         f"{EXAMPLE_CAPTION!r} (objects: 'a [small|large] <colour> <shape> <position>', joined by 'and'; "
                         f"then 'on a <background> background')")
    for m in matches:
        cell = _POSITIONS[m.group(4)]
        if any(o.cell == cell for o in objects):
            raise ValueError(f"{text!r} puts two objects {m.group(4)}: each position holds one object")
        objects.append(Obj(m.group(3), m.group(2), "small" if m.group(1) == "small " else "large", cell))
    return Scene(tuple(objects), bg_match.group(1))


UNSAID_WORDS = ("large",)  # an object is large unless said "small": the captions trained on never say it


def without_unsaid(text: str) -> str:
    """A caption as the embedded models were trained on it: "a large red circle" -> "a red circle"."""
    return re.sub(rf"\b(?:{'|'.join(UNSAID_WORDS)})\s+", "", text, flags=re.IGNORECASE)


def vocabulary() -> list[str]:
    """Every word a caption can contain (the embedded word-level text encoder's vocabulary)."""
    words = {"a", "and", "on", "background", "small", "in", "the", "at"}
    words |= set(SHAPES) | {w for c in COLORS for w in c.split()} | {w for b in BACKGROUNDS for w in b.split()}
    words |= {"top", "bottom"} | set(COLS)
    return sorted(words)


# ---- rendering -----------------------------------------------------------------------------------------

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5


def _star_mask(cx, cy, r):
    # 5-pointed star: inside test against the polygon of 10 vertices (alternating radii)
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return _polygon_mask(np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1))


def _polygon_mask(pts):
    inside = np.zeros((SIZE, SIZE), bool)
    n = len(pts)
    for i in range(n):  # even-odd rule over the polygon's edges (vectorised over pixels)
        (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
        crosses = ((y1 > _YY) != (y2 > _YY)) & (_XX < (x2 - x1) * (_YY - y1) / (y2 - y1 + 1e-12) + x1)
        inside ^= crosses
    return inside


def object_mask(o: Obj) -> np.ndarray:
    r_idx, c_idx = divmod(o.cell, 3)
    cx, cy = c_idx * CELL + CELL / 2, r_idx * CELL + CELL / 2
    s = SIZES[o.size]
    h = s / 2
    if o.shape == "circle":
        return (_XX - cx) ** 2 + (_YY - cy) ** 2 <= h * h
    if o.shape == "square":
        return (np.abs(_XX - cx) <= h) & (np.abs(_YY - cy) <= h)
    if o.shape == "triangle":
        return _polygon_mask(np.array([[cx, cy - h], [cx + h, cy + h], [cx - h, cy + h]]))
    if o.shape == "star":
        return _star_mask(cx, cy + s * 0.05, h * 1.08)
    raise ValueError(o.shape)


_CELL_YY, _CELL_XX = np.mgrid[0:CELL, 0:CELL]
DECOR_MASKS = (np.zeros((CELL, CELL), bool),  # plain
               (_CELL_XX + _CELL_YY) % 6 < 2,  # diagonal stripes
               (_CELL_XX % 4 == 1) & (_CELL_YY % 4 == 1))  # dots


def background_image(background: str) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: the bare background (no texture, no objects)."""
    if background == "checkered":
        check = ((_YY // 16).astype(int) + (_XX // 16).astype(int)) % 2
        return np.where(check[..., None] == 0, CHECKER[0], CHECKER[1]).astype(np.uint8)
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = BACKGROUNDS[background]
    return img


def render(scene: Scene) -> np.ndarray:
    """-> uint8 [SIZE, SIZE, 3]."""
    img = background_image(scene.background)
    for cell, d in enumerate(scene.decor):
        if d:
            r, c = divmod(cell, 3)
            patch = img[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL]
            patch[DECOR_MASKS[d]] -= DECOR_SHADE
    for o in scene.objects:
        img[object_mask(o)] = COLORS[o.color]
    return img


# ---- cell classes (the tokenizer's ground truth) -------------------------------------------------------

def _cell_background(scene: Scene, cell: int) -> tuple:
    if scene.background == "checkered":
        r, c = divmod(cell, 3)
        return CHECKER[(r + c) % 2]
    return BACKGROUNDS[scene.background]


def _background_colors() -> list[tuple]:
    # distinct colours a cell's background can have (the checker's light squares equal plain white)
    colors = [v for v in BACKGROUNDS.values() if v is not None] + list(CHECKER)
    return list(dict.fromkeys(colors))


def cell_classes() -> list[tuple]:
    """Every distinct 16x16 cell content as (background colour, (shape, colour, size) or None, decor), in a
    fixed order. Cells are aligned to the stride-16 token grid, so a scene is exactly nine of these."""
    contents = [(None, d) for d in range(len(DECORS))] + [((s, c, z), 0) for s in SHAPES for c in COLORS for z in SIZES]
    return [(bg, o, d) for bg in _background_colors() for o, d in contents]


_CLASS_INDEX: dict = {}


def cell_labels(scene: Scene) -> list[int]:
    """The class (index into cell_classes()) of each of the nine cells, row-major."""
    if not _CLASS_INDEX:
        _CLASS_INDEX.update({k: i for i, k in enumerate(cell_classes())})
    labels = []
    for cell in range(9):
        o = scene.object_at(cell)
        obj = None if o is None else (o.shape, o.color, o.size)
        labels.append(_CLASS_INDEX[(_cell_background(scene, cell), obj, scene.decor[cell])])
    return labels


def scene_from_labels(labels) -> Scene:
    """The inverse of cell_labels: nine class indices -> the Scene (background by majority of the cells'
    background colours, checkered when they alternate the checker's colours; a texture under an object is
    dropped)."""
    classes = cell_classes()
    cells = [classes[int(i)] for i in labels]
    colors = [bg for bg, _, _ in cells]
    checker = [_cell_background(Scene((), "checkered"), c) for c in range(9)]
    if sum(a == b for a, b in zip(colors, checker)) > sum(a == colors[4] for a in colors) and CHECKER[1] in colors:
        background = "checkered"
    else:
        common = max(set(colors), key=colors.count)
        background = next(k for k, v in BACKGROUNDS.items() if v == common) if common in BACKGROUNDS.values() else "gray"
    objects = tuple(Obj(o[0], o[1], o[2], cell) for cell, (_, o, _) in enumerate(cells) if o is not None)
    decor = tuple(0 if o is not None else d for _, o, d in cells)
    return Scene(objects, background, decor)


def with_textures(scene: Scene, seed: int) -> Scene:
    """The scene with seeded faint textures in its empty cells (seed 0: plain cells), as AR Shapes Scene draws it."""
    if not seed:
        return scene
    rng = random.Random(seed)
    taken = {o.cell for o in scene.objects}
    return Scene(scene.objects, scene.background, tuple(0 if c in taken else rng.randrange(len(DECORS)) for c in range(9)))


# ---- sampling scenes and edits -------------------------------------------------------------------------

def random_scene(rng: random.Random, max_objects: int = 3) -> Scene:
    n = rng.randint(1, max_objects)
    cells = rng.sample(range(9), n)
    objs = tuple(Obj(rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(SIZES)), c) for c in cells)
    background = rng.choice(list(BACKGROUNDS))
    decor = tuple(0 if c in cells else rng.randrange(len(DECORS)) for c in range(9))
    return Scene(objs, background, decor)


@dataclass(frozen=True)
class Edit:
    kind: str
    source: Scene
    target: Scene
    detail: str  # what changed, for reports

    @property
    def prompt(self) -> str:
        return self.target.caption()

    def changed_mask(self) -> np.ndarray:
        """bool [SIZE, SIZE]: pixels that differ between source and target renders, and the whole cell of a
        removed object (the texture that appears there is not determined by anything)."""
        mask = (render(self.source) != render(self.target)).any(-1)
        for o in self.source.objects:
            if self.target.object_at(o.cell) is None:
                r, c = divmod(o.cell, 3)
                mask[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = True
        return mask


def random_edit(rng: random.Random, scene: Scene, kind: str) -> Edit:
    objs = list(scene.objects)
    if kind == "replace":
        i = rng.randrange(len(objs))
        new = replace(objs[i], shape=rng.choice([s for s in SHAPES if s != objs[i].shape]))
        detail = f"{objs[i].shape} -> {new.shape}"
        objs[i] = new
    elif kind == "attribute":
        i = rng.randrange(len(objs))
        if rng.random() < 0.7:
            new = replace(objs[i], color=rng.choice([c for c in COLORS if c != objs[i].color]))
            detail = f"color {objs[i].color} -> {new.color}"
        else:
            new = replace(objs[i], size="small" if objs[i].size == "large" else "large")
            detail = f"size {objs[i].size} -> {new.size}"
        objs[i] = new
    elif kind == "add":
        free = [c for c in range(9) if scene.object_at(c) is None]
        new = Obj(rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(SIZES)), rng.choice(free))
        objs.append(new)
        detail = f"add {new.phrase()}"
        decor = list(scene.decor)
        decor[new.cell] = 0
        return Edit(kind, scene, Scene(tuple(objs), scene.background, tuple(decor)), detail)
    elif kind == "remove":
        if len(objs) < 2:
            raise ValueError("removal needs a scene with at least two objects")
        i = rng.randrange(len(objs))
        detail = f"remove {objs[i].phrase()}"
        objs.pop(i)  # the freed cell is plain in the ground truth (and masked: see Edit.changed_mask)
    elif kind == "background":
        new_bg = rng.choice([b for b in BACKGROUNDS if b != scene.background])
        detail = f"background {scene.background} -> {new_bg}"
        return Edit(kind, scene, Scene(scene.objects, new_bg, scene.decor), detail)
    else:
        raise ValueError(f"edit kind must be one of {EDIT_KINDS}")
    return Edit(kind, scene, Scene(tuple(objs), scene.background, scene.decor), detail)


def edit_cases(n: int, seed: int = 0) -> list[Edit]:
    """n seeded edit cases, the kinds in rotation (ShapesEdit benchmark)."""
    rng = random.Random(seed)
    cases = []
    while len(cases) < n:
        kind = EDIT_KINDS[len(cases) % len(EDIT_KINDS)]
        scene = random_scene(rng)
        if (kind == "remove" and len(scene.objects) < 2) or (kind == "add" and len(scene.objects) >= 3):
            continue
        cases.append(random_edit(rng, scene, kind))
    return cases


# ---- parsing images back into scenes -------------------------------------------------------------------

def _nearest(color: np.ndarray, table: dict) -> tuple[str, float]:
    names = [k for k, v in table.items() if v is not None]
    d = [float(np.abs(color - np.array(table[k], np.float32)).sum()) for k in names]
    j = int(np.argmin(d))
    return names[j], d[j]


def parse_image(img: np.ndarray) -> Scene:
    """Read an image [SIZE, SIZE, 3] (uint8 or float 0..1) back into a Scene (best effort, deterministic)."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    f = img.astype(np.float32)
    # Background from the image's outer pixel ring (objects never reach it), one median per cell edge so
    # that textures do not sway it: checkered if the edges alternate the two checker colours.
    edges = []  # (cell, median colour)
    for cell in range(9):
        r, c = divmod(cell, 3)
        rows, cols = slice(r * CELL, (r + 1) * CELL), slice(c * CELL, (c + 1) * CELL)
        for ring in ([f[0, cols]] if r == 0 else []) + ([f[-1, cols]] if r == 2 else []) + \
                    ([f[rows, 0]] if c == 0 else []) + ([f[rows, -1]] if c == 2 else []):
            edges.append((cell, np.median(ring, 0)))
    checker = {"light": CHECKER[0], "dark": CHECKER[1]}
    nearest_checker = [(cell, *_nearest(m, checker)) for cell, m in edges]
    if all(name == ("light", "dark")[sum(divmod(cell, 3)) % 2] and dist < 60 for cell, name, dist in nearest_checker):
        background = "checkered"
        bg_img = background_image("checkered").astype(np.float32)
    else:
        background, _ = _nearest(np.median(np.stack([m for _, m in edges]), 0), BACKGROUNDS)
        bg_img = np.broadcast_to(np.array(BACKGROUNDS[background], np.float32), f.shape)
    fg = np.abs(f - bg_img).sum(-1) > 110  # far from the background's expected colour (textures are 72 off)
    objects, decor = [], [0] * 9
    for cell in range(9):
        r, c = divmod(cell, 3)
        sl = (slice(r * CELL, (r + 1) * CELL), slice(c * CELL, (c + 1) * CELL))
        m = fg[sl]
        if m.sum() < MIN_PIXELS:
            decor[cell] = _nearest_decor(f[sl], bg_img[sl])
            continue
        color, dist = _nearest(np.median(f[sl][m], 0), COLORS)
        m = m & (np.abs(f[sl] - np.array(COLORS[color], np.float32)).sum(-1) < 150)
        if m.sum() < MIN_PIXELS:
            decor[cell] = _nearest_decor(f[sl], bg_img[sl])
            continue
        # Shape and size: the nearest template (objects sit at the centre of their cell), compared on the
        # pixels' coverage (0 = background colour, 1 = object colour) so that a soft edge still counts.
        target = np.array(COLORS[color], np.float32) - bg_img[sl]
        coverage = np.clip(((f[sl] - bg_img[sl]) * target).sum(-1) / np.maximum((target * target).sum(-1), 1), 0, 1)
        shape, size = min(_templates(), key=lambda key: float(((coverage - _templates()[key]) ** 2).sum()))
        if _iou(m, _templates()[(shape, size)]) < 0.3:
            decor[cell] = _nearest_decor(f[sl], bg_img[sl])
            continue
        objects.append(Obj(shape, color, size, cell))
    return Scene(tuple(objects), background, tuple(decor))


def _nearest_decor(cell: np.ndarray, bg: np.ndarray) -> int:
    """The texture whose render is closest to an empty cell's pixels (float [CELL, CELL, 3] each)."""
    errors = [np.abs(cell - (bg - DECOR_SHADE * m[..., None])).mean() for m in DECOR_MASKS]
    return int(np.argmin(errors))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


_TEMPLATE_CACHE: dict = {}


def _templates() -> dict:
    """(shape, size) -> bool mask of one cell with that object, rendered in cell 0."""
    if not _TEMPLATE_CACHE:
        for shape in SHAPES:
            for size in SIZES:
                _TEMPLATE_CACHE[(shape, size)] = object_mask(Obj(shape, "black", size, 0))[:CELL, :CELL]
    return _TEMPLATE_CACHE
