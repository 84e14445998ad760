"""Infinity's next-scale schedules: which token grids (h, w) are generated, coarse to fine.

Square images use 1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64 tokens per side (16 px per token): all 13
scales for 1024 px, the first 10 for 512 px, the first 7 for 256 px. Other aspect ratios use the
template with the nearest height/width ratio (below, and each one transposed for the inverse ratio).
"""
from __future__ import annotations

STRIDE = 16  # pixels per token side at the finest scale
# Scales per resolution tier: how many of a template's 13 grids are used.
TIER_SCALES = {256: 7, 512: 10, 768: 12, 1024: 13}
# Tiers of no official template: the embedded ShapesWorld models' 48 px scenes (3x3 tokens), square only.
SMALL_TIERS = {48: [(1, 1), (2, 2), (3, 3)]}
RESOLUTIONS = sorted([*SMALL_TIERS, *TIER_SCALES])
OFFICIAL_RESOLUTIONS = tuple(sorted(TIER_SCALES))  # what the released models make; a file may store its own


def parse_resolution(value, supported=RESOLUTIONS, auto: int | None = None) -> int:
    """A resolution tier from a widget or the API ("512", 512) -> int, or a clear error naming the choices.
    "auto": `auto` if given, else the largest supported tier (the model's own, for a file of one tier)."""
    if str(value).strip() == "auto":
        return auto if auto is not None else max(supported)
    try:
        r = int(str(value).strip())
    except ValueError:
        raise ValueError(f"resolution must be a number, one of {list(supported)}; got {value!r}") from None
    if r not in supported:
        raise ValueError(f"resolution {r} is not one this model makes: choose one of {list(supported)}")
    return r


def parse_aspect(value: str) -> float:
    """"width:height" ("1:1", "16:9", "3:4") -> height / width. A bare number is read as height / width (what
    earlier versions offered: "0.333")."""
    text = str(value).strip()
    try:
        if ":" in text:
            w, h = (float(v) for v in text.split(":"))
            ratio = h / w
        else:
            ratio = float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"aspect_ratio must be width:height, like 1:1, 4:3 or 3:4; got {value!r}") from None
    if not 0.1 <= ratio <= 10:
        raise ValueError(f"aspect_ratio {value!r} is outside 1:10 .. 10:1")
    return ratio


# height/width ratio -> the 13 (h, w) grids of that template (ratios >= 1; the inverses are transposed).
_TEMPLATES = {
    1.000: [(1, 1), (2, 2), (4, 4), (6, 6), (8, 8), (12, 12), (16, 16), (20, 20), (24, 24), (32, 32), (40, 40), (48, 48), (64, 64)],
    1.250: [(1, 1), (2, 2), (3, 3), (5, 4), (10, 8), (15, 12), (20, 16), (25, 20), (30, 24), (35, 28), (45, 36), (55, 44), (70, 56)],
    1.333: [(1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (28, 21), (36, 27), (48, 36), (60, 45), (72, 54)],
    1.500: [(1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32), (63, 42), (78, 52)],
    1.750: [(1, 1), (2, 2), (3, 3), (7, 4), (11, 6), (14, 8), (21, 12), (28, 16), (35, 20), (42, 24), (56, 32), (70, 40), (84, 48)],
    2.000: [(1, 1), (2, 2), (4, 2), (6, 3), (10, 5), (16, 8), (22, 11), (30, 15), (38, 19), (46, 23), (60, 30), (74, 37), (90, 45)],
    2.500: [(1, 1), (2, 2), (5, 2), (10, 4), (15, 6), (20, 8), (25, 10), (30, 12), (40, 16), (50, 20), (65, 26), (80, 32), (100, 40)],
    3.000: [(1, 1), (2, 2), (6, 2), (9, 3), (15, 5), (21, 7), (27, 9), (36, 12), (45, 15), (54, 18), (72, 24), (90, 30), (111, 37)],
}


def _all_templates() -> dict[float, list[tuple[int, int]]]:
    out = dict(_TEMPLATES)
    for ratio, grids in _TEMPLATES.items():
        if ratio != 1.0:
            out[int(1 / ratio * 1000) / 1000] = [(w, h) for h, w in grids]  # the key rounding upstream uses
    return out


TEMPLATES = _all_templates()


def nearest_ratio(h_div_w: float) -> float:
    if not h_div_w > 0:
        raise ValueError(f"height/width ratio must be positive, got {h_div_w}")
    return min(TEMPLATES, key=lambda r: abs(r - h_div_w))


def scale_schedule(resolution: int = 1024, h_div_w: float = 1.0) -> list[tuple[int, int]]:
    """[(h, w), ...] coarse to fine for a resolution tier and the nearest aspect-ratio template."""
    if resolution in SMALL_TIERS:
        if nearest_ratio(h_div_w) != 1.0:
            raise ValueError(f"the {resolution} px tier (the embedded models' size) is square only")
        return list(SMALL_TIERS[resolution])
    if resolution not in TIER_SCALES:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    return TEMPLATES[nearest_ratio(h_div_w)][:TIER_SCALES[resolution]]


def tier_of(schedule: list[tuple[int, int]]) -> int | None:
    """The resolution tier whose schedule (for some aspect template) this is, or None."""
    schedule = [tuple(hw) for hw in schedule]
    for tier, grids in SMALL_TIERS.items():
        if schedule == list(grids):
            return tier
    for tier, n in TIER_SCALES.items():
        if len(schedule) == n and any(grids[:n] == schedule for grids in TEMPLATES.values()):
            return tier
    return None


def image_size_for(schedule: list[tuple[int, int]]) -> tuple[int, int]:
    """(height, width) in pixels of the finest scale."""
    h, w = schedule[-1]
    return h * STRIDE, w * STRIDE


def total_tokens(schedule: list[tuple[int, int]]) -> int:
    return sum(h * w for h, w in schedule)


def reference_grid(schedule: list[tuple[int, int]]) -> tuple[int, int]:
    """The grid Infinity's RoPE positions are normalised by: the last (1024 px) grid of the template the
    schedule is a prefix of (a schedule of no template: its own last grid)."""
    schedule = [tuple(s) for s in schedule]
    for grids in TEMPLATES.values():
        if grids[:len(schedule)] == schedule:
            return grids[-1]
    return schedule[-1]


def schedule_for_image(height: int, width: int, resolution: int) -> list[tuple[int, int]]:
    """The schedule an image of this shape is coded with at a resolution tier (nearest aspect template)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return scale_schedule(resolution, height / width)
