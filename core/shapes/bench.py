"""ShapesEdit: measured quality of the embedded models and of editing methods, with exact ground truth.

- VQ reconstruction PSNR on held-out scenes.
- Text-to-image: share of generated images whose parsed objects (shape, colour, cell) equal the caption's.
- Edits (real-image setting: the source is the ground-truth render, VQ-encoded): background PSNR and SSIM
  outside the ground-truth changed-pixel mask, edit success (the parser finds the requested change),
  structure (objects the edit should not touch parse unchanged), and exact match of the whole scene.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..defaults import defaults
from ..infinity.aredit import AREditSettings
from ..infinity.generate import InfinitySampling
from ..infinity.scales import scale_schedule
from ..llamagen.atm import ATMSettings
from ..llamagen.editar import EditARGuidance, task_prompt
from ..llamagen.vq import to_unit_range
from ..pipelines import editar, infinity, janus, llamagen, lumina, varedit
from ..sampling import SamplingSettings
from . import instructions, world

# The embedded Infinity-architecture models code a 48 px scene (3x3 tokens of 16 px) on three scales. Their tuned
# settings (and the LlamaGen-architecture and editors' ones) are in the model files' metadata (core.defaults).
EMBEDDED_INFINITY_SCHEDULE = scale_schedule(world.SIZE)


def to_model(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> [B, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_image(images: np.ndarray) -> torch.Tensor:
    """uint8 renders [B, H, W, 3] -> IMAGE [B, H, W, 3] in 0..1 (what the pipelines take)."""
    return torch.from_numpy(np.ascontiguousarray(images)).float() / 255


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """a, b [B, 3, H, W] in 0..1; mask [B, H, W] bool (pixels to count). -> [B] dB (capped at 60)."""
    err = (a - b).pow(2).mean(1)
    m = torch.ones_like(err, dtype=torch.bool) if mask is None else mask
    mse = (err * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)
    return (10 * torch.log10(1.0 / mse.clamp(min=1e-6))).clamp(max=60.0)


def ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM (Gaussian 11x11, sigma 1.5, per channel) over the pixels of `mask`. -> [B]."""
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None]) / (g.sum() ** 2)
    w = w.expand(3, 1, 11, 11).to(a)
    blur = lambda x: F.conv2d(F.pad(x, (5, 5, 5, 5), mode="reflect"), w, groups=3)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    s = s.mean(1)
    m = torch.ones_like(s, dtype=torch.bool) if mask is None else mask
    return (s * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)


@torch.inference_mode()
def vq_psnr(vq, n: int = 200, seed: int = 10_000) -> float:
    rng = random.Random(seed)
    images = np.stack([world.render(world.random_scene(rng)) for _ in range(n)])
    x = to_model(images).to(next(vq.parameters()).device)
    rec = torch.cat([to_unit_range(vq.decode(vq.encode(x[i:i + 50]))) for i in range(0, n, 50)])
    return float(psnr(rec.cpu(), (x.cpu() + 1) / 2).mean())


def _same_scene(parsed: world.Scene, scene: world.Scene) -> bool:
    """Objects (in any order), background and every cell's texture."""
    return parsed.captioned() == scene.captioned() and parsed.decor == scene.decor


def _objects_match(parsed: world.Scene, scene: world.Scene) -> bool:
    key = lambda s: sorted((o.cell, o.shape, o.color) for o in s.objects)
    return key(parsed) == key(scene)


def _add_matches(counts: tuple[int, int], scenes: list[world.Scene], parsed: list[world.Scene]) -> tuple[int, int]:
    """(objects that match, whole captioned scenes that match) so far, plus this chunk's."""
    objects, exact = counts
    for scene, p in zip(scenes, parsed):
        objects += _objects_match(p, scene)
        exact += p.captioned() == scene.captioned()
    return objects, exact


@torch.inference_mode()
def t2i_accuracy(gpt, text, vq, n: int = 200, seed: int = 20_000, sampling: SamplingSettings | None = None,
                 batch: int = 100) -> dict:
    sampling = sampling or defaults(gpt, "sampling")
    rng = random.Random(seed)
    scenes = [world.random_scene(rng) for _ in range(n)]
    ok_objects = ok_exact = 0
    for start in range(0, n, batch):
        chunk = scenes[start:start + batch]
        cond = llamagen.text_condition(text, [s.caption() for s in chunk])
        tokens = llamagen.generate(gpt, cond, sampling, list(range(seed + start, seed + start + len(chunk))))
        images = llamagen.decode(vq, tokens).permute(0, 2, 3, 1).cpu().numpy()
        ok_objects, ok_exact = _add_matches((ok_objects, ok_exact), chunk, [world.parse_image(i) for i in images])
    return {"objects_match": ok_objects / n, "exact_scene": ok_exact / n, "n": n}


@dataclass
class EditScores:
    kind: str
    bg_psnr: float
    bg_ssim: float
    success: bool
    structure: float  # share of untouched objects that parse unchanged (nan if none)
    exact: bool  # parsed scene equals the target, uncaptioned textures included


def _success(edit: world.Edit, parsed: world.Scene) -> bool:
    if edit.kind == "background":
        return parsed.background == edit.target.background
    changed = [c for c in range(9) if edit.source.object_at(c) != edit.target.object_at(c)]
    return all(parsed.object_at(c) == edit.target.object_at(c) for c in changed)


def _structure(edit: world.Edit, parsed: world.Scene) -> float:
    kept = [o for o in edit.target.objects if edit.source.object_at(o.cell) == o]
    if not kept:
        return float("nan")
    return sum(parsed.object_at(o.cell) == o for o in kept) / len(kept)


def _exact(edit: world.Edit, parsed: world.Scene) -> bool:
    """The parsed scene is the target: objects, background, and the texture of every cell the edit leaves
    determined (a removed object's cell may show any texture)."""
    freed = {o.cell for o in edit.source.objects if edit.target.object_at(o.cell) is None}
    return parsed.captioned() == edit.target.captioned() and all(
        parsed.decor[c] == edit.target.decor[c] for c in range(9) if c not in freed)


@torch.inference_mode()
def edit_benchmark(gpt, text, vq, cases: list[world.Edit], method: str, atm: ATMSettings | None = None,
                   sampling: SamplingSettings | None = None, seed: int = 0, batch: int = 100) -> list[EditScores]:
    sampling = sampling or defaults(gpt, "sampling")
    atm = atm or defaults(gpt, "atm")
    scores: list[EditScores] = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        src = np.stack([world.render(e.source) for e in chunk])
        cache = llamagen.source_cache(llamagen.encode(vq, to_image(src), gpt.cfg.image_size), vq)
        cond = llamagen.text_condition(text, [e.prompt for e in chunk])
        seeds = list(range(seed + start, seed + start + len(chunk)))
        result = llamagen.edit(gpt, cache, cond, sampling, atm, seeds, method)
        scores += score_edits(chunk, src, llamagen.decode(vq, result.tokens).cpu())
    return scores


def score_edits(chunk: list[world.Edit], src: np.ndarray, out: torch.Tensor,
                parsed_scenes: list[world.Scene] | None = None) -> list[EditScores]:
    """Edited images `out` [B, 3, H, W] in 0..1 against the source renders `src` (uint8 [B, H, W, 3]); the
    scenes they show are parsed from them unless given."""
    ref = torch.from_numpy(src).permute(0, 3, 1, 2).float() / 255
    keep = torch.from_numpy(np.stack([~e.changed_mask() for e in chunk]))
    p, s = psnr(out, ref, keep), ssim(out, ref, keep)
    images = out.permute(0, 2, 3, 1).numpy()
    scores = []
    for k, e in enumerate(chunk):
        parsed = world.parse_image(images[k]) if parsed_scenes is None else parsed_scenes[k]
        scores.append(EditScores(e.kind, float(p[k]), float(s[k]), _success(e, parsed), _structure(e, parsed),
                                 _exact(e, parsed)))
    return scores


# ------------------------------------------------------------------------ Infinity architecture + AREdit

@torch.inference_mode()
def bsq_reconstruction(vae, n: int = 200, seed: int = 10_000) -> dict:
    """Held-out scenes through the BSQ VAE (encode, multi-scale quantise, decode), read from the decoded
    pixels: PSNR, and the share whose parsed scene (objects, background, textures) is the original."""
    rng = random.Random(seed)
    scenes = [world.random_scene(rng) for _ in range(n)]
    src = np.stack([world.render(s) for s in scenes])
    images = torch.cat([_decode_bits(vae, _encode_bits(vae, src[i:i + 50])) for i in range(0, n, 50)])
    exact = sum(_same_scene(world.parse_image(img), s) for img, s in zip(images.permute(0, 2, 3, 1).numpy(), scenes))
    ref = torch.from_numpy(src).permute(0, 3, 1, 2).float() / 255
    return {"psnr": float(psnr(images, ref).mean()), "exact_scene": exact / n, "n": n}


infinity_condition = infinity.text_condition


def _encode_bits(vae, images: np.ndarray) -> list[torch.Tensor]:
    """uint8 renders [B, H, W, 3] -> the VAE's bits on the embedded schedule, per scale [B, h, w, d]."""
    return vae.encode_bits(to_model(images).to(vae.device), EMBEDDED_INFINITY_SCHEDULE)


def _decode_bits(vae, bits: list[torch.Tensor]) -> torch.Tensor:
    return ((vae.decode_bits([b.to(vae.device) for b in bits]) + 1) / 2).cpu()


def _read(vae, bits: list[torch.Tensor]) -> tuple[torch.Tensor, list[world.Scene]]:
    """-> (images [B, 3, H, W] in 0..1, the scenes parsed from them): what the user sees."""
    images = _decode_bits(vae, bits)
    return images, [world.parse_image(img) for img in images.permute(0, 2, 3, 1).numpy()]


@torch.inference_mode()
def infinity_t2i_accuracy(model, text, vae, n: int = 200, seed: int = 20_000,
                          sampling: InfinitySampling | None = None, batch: int = 100) -> dict:
    sampling = sampling or defaults(model, "sampling")
    rng = random.Random(seed)
    scenes = [world.random_scene(rng) for _ in range(n)]
    ok_objects = ok_exact = 0
    for start in range(0, n, batch):
        chunk = scenes[start:start + batch]
        cond = infinity_condition(text, [s.caption() for s in chunk])
        seeds = torch.arange(seed + start, seed + start + len(chunk))
        tokens = infinity.generate(model, cond, EMBEDDED_INFINITY_SCHEDULE, sampling, seeds)
        ok_objects, ok_exact = _add_matches((ok_objects, ok_exact), chunk, _read(vae, tokens.bits)[1])
    return {"objects_match": ok_objects / n, "exact_scene": ok_exact / n, "n": n}


@torch.inference_mode()
def aredit_benchmark(model, text, vae, cases: list[world.Edit], settings: list[AREditSettings],
                     sampling: InfinitySampling | None = None, seed: int = 0, batch: int = 100) -> list[list[EditScores]]:
    """Real-image setting: each source render is VAE-encoded and cached once under its caption (one
    teacher-forced pass), then edited with every setting from that cache. -> scores per setting.
    gamma 0 with threshold < -1 is the plain target generation with the same seed (the naive baseline)."""
    sampling = sampling or defaults(model, "sampling")
    results: list[list[EditScores]] = [[] for _ in settings]
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        src = np.stack([world.render(e.source) for e in chunk])
        [(_, tokens)] = infinity.encode(vae, to_image(src), world.SIZE)
        cache = infinity.aredit_source(model, tokens, infinity_condition(text, [e.source.caption() for e in chunk]),
                                       sampling)
        target = infinity_condition(text, [e.prompt for e in chunk])
        seeds = torch.arange(seed + start, seed + start + len(chunk))
        for i, setting in enumerate(settings):
            edited = infinity.aredit(model, cache, target, setting, seeds)
            results[i] += score_edits(chunk, src, *_read(vae, edited.tokens.bits))
    return results


def summarize(scores: list[EditScores]) -> dict:
    """{kind or 'all': {bg_psnr, bg_ssim, success, structure, exact, n}} (means)."""
    groups = defaultdict(list)
    for s in scores:
        groups[s.kind].append(s)
        groups["all"].append(s)

    def mean(vals):
        vals = [v for v in vals if not (isinstance(v, float) and math.isnan(v))]
        return sum(vals) / len(vals) if vals else float("nan")

    return {k: {"bg_psnr": mean([s.bg_psnr for s in v]), "bg_ssim": mean([s.bg_ssim for s in v]),
                "success": mean([float(s.success) for s in v]), "structure": mean([s.structure for s in v]),
                "exact": mean([float(s.exact) for s in v]), "n": len(v)} for k, v in groups.items()}


def markdown_table(results: dict) -> str:
    """{row label: summarize(...)} -> one markdown table, every edit kind of every row."""
    kinds = ["all", *world.EDIT_KINDS]
    lines = ["| method | kind | bg PSNR | bg SSIM | success | structure | exact | n |", "|---|---|---|---|---|---|---|---|"]
    for method, summary in results.items():
        for k in kinds:
            if k in summary:
                r = summary[k]
                lines.append(f"| {method} | {k} | {r['bg_psnr']:.2f} | {r['bg_ssim']:.3f} | {r['success']:.1%} | "
                             f"{r['structure']:.1%} | {r['exact']:.1%} | {r['n']} |")
    return "\n".join(lines)


def family_table(results: dict) -> str:
    """{row label: summarize(...) with a 'families' entry} -> one markdown table, a line per method and family."""
    lines = ["| method | family | bg PSNR | success | structure | exact | n |", "|---|---|---|---|---|---|---|"]
    for method, summary in results.items():
        for family, r in summary.get("families", {}).items():
            lines.append(f"| {method} | {family} | {r['bg_psnr']:.2f} | {r['success']:.1%} | {r['structure']:.1%} | "
                         f"{r['exact']:.1%} | {r['n']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------ instruction editors

def case_instruction(index: int, edit: world.Edit) -> str:
    """The benchmark's instruction for case `index`: the phrasings in rotation (every phrasing is measured)."""
    options = instructions.instructions(edit)
    return options[index % len(options)]


@torch.inference_mode()
def editar_images(model, text, vq, images: np.ndarray, prompts: list[str], seeds, text_cfg: float | None = None,
                  image_cfg: float | None = None,
                  sampling: SamplingSettings | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 renders (sources or control maps) [B, H, W, 3] + prompts, one seed each -> (their tokens [B, N], the
    edited tokens [B, N], the edited images [B, 3, H, W] in 0..1 on the CPU). Unset settings: the model's own."""
    guidance = _guidance(model, text_cfg, image_cfg)
    inputs = editar.prepare(model, vq, to_image(images))
    tokens = editar.edit(model, vq, text, inputs, prompts, seeds, guidance.text_cfg, guidance.image_cfg,
                         sampling or defaults(model, "sampling"))
    return inputs.flat, tokens.flat, llamagen.decode(vq, tokens).cpu()


def _guidance(model, text_cfg: float | None, image_cfg: float | None) -> EditARGuidance:
    own = defaults(model, "editar")
    return EditARGuidance(own.text_cfg if text_cfg is None else text_cfg,
                          own.image_cfg if image_cfg is None else image_cfg).validate()


SHOWCASE_TEXTURE_SEED = 3  # the no-download workflows' source: world.EXAMPLE_CAPTION, its empty cells textured


@torch.inference_mode()
def editar_showcase(model, text, vq, seeds: int = 50) -> dict:
    """The edit workflows 03 and 06 show (the blue square -> a yellow star, the red circle kept), every phrasing x
    `seeds` seeds: the share whose picture shows the target scene (objects and background), and whose textures
    are kept as well."""
    source = world.with_textures(world.parse_caption(world.EXAMPLE_CAPTION), SHOWCASE_TEXTURE_SEED)
    target = world.Scene(world.parse_caption(world.EXAMPLE_EDITED).objects, source.background, source.decor)  # same cells
    edit = world.Edit("replace", source, target, "showcase")
    prompts = [p for p in instructions.instructions(edit) for _ in range(seeds)]
    src = np.stack([world.render(source)] * len(prompts))
    seed_list = [k % seeds for k in range(len(prompts))]
    images = editar_images(model, text, vq, src, prompts, seed_list)[2].permute(0, 2, 3, 1).numpy()
    parsed = [world.parse_image(img) for img in images]
    per = {p: sum(s.captioned() == target.captioned() for s, q in zip(parsed, prompts) if q == p)
           for p in dict.fromkeys(prompts)}
    return {"right": sum(per.values()), "exact": sum(_exact(edit, s) for s in parsed), "n": len(prompts),
            "per_phrasing": per, "seeds": seeds}


@torch.inference_mode()
def editar_benchmark(model, text, vq, cases: list[world.Edit], text_cfg: float | None = None,
                     image_cfg: float | None = None, sampling: SamplingSettings | None = None,
                     seed: int = 0, batch: int = 100) -> list[EditScores]:
    """Each source render VQ-encoded, edited by its instruction (real-image setting), read from the pixels."""
    scores: list[EditScores] = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        src = np.stack([world.render(e.source) for e in chunk])
        prompts = [case_instruction(start + i, e) for i, e in enumerate(chunk)]
        seeds = list(range(seed + start, seed + start + len(chunk)))
        scores += score_edits(chunk, src, editar_images(model, text, vq, src, prompts, seeds, text_cfg, image_cfg, sampling)[2])
    return scores


@torch.inference_mode()
def control_accuracy(model, text, vq, task: str, n: int = 200, seed: int = 20_000,
                     text_cfg: float | None = None, sampling: SamplingSettings | None = None,
                     batch: int = 100) -> dict:
    """Edge / segmentation map + caption -> image: share of images whose parsed objects (cell, shape, colour)
    are the caption's, and whose whole captioned scene (sizes and background too) is."""
    rng = random.Random(seed)
    scenes = [world.random_scene(rng) for _ in range(n)]
    ok_objects = ok_exact = 0
    for start in range(0, n, batch):
        chunk = scenes[start:start + batch]
        maps = np.stack([instructions.control_map(task, s) for s in chunk])
        prompts = [task_prompt(task, s.caption()) for s in chunk]
        seeds = list(range(seed + start, seed + start + len(chunk)))
        images = editar_images(model, text, vq, maps, prompts, seeds, text_cfg, 1.0, sampling)[2]
        parsed = [world.parse_image(i) for i in images.permute(0, 2, 3, 1).numpy()]
        ok_objects, ok_exact = _add_matches((ok_objects, ok_exact), chunk, parsed)
    return {"objects_match": ok_objects / n, "exact_scene": ok_exact / n, "n": n}


@torch.inference_mode()
def varedit_benchmark(model, text, vae, cases: list[world.Edit], sampling: InfinitySampling | None = None,
                      seed: int = 0, batch: int = 100) -> list[EditScores]:
    """Each source render through the VAE encoder as VAREdit's source tokens, edited by its instruction."""
    sampling = sampling or defaults(model, "sampling")
    scores: list[EditScores] = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        src = np.stack([world.render(e.source) for e in chunk])
        seeds = torch.arange(seed + start, seed + start + len(chunk))
        edited = varedit.edit(model, vae, text, to_image(src), [case_instruction(start + i, e) for i, e in enumerate(chunk)],
                              world.SIZE, sampling, seeds)
        scores += score_edits(chunk, src, *_read(vae, edited.tokens.bits))
    return scores


def _caption_accuracy(draw, n: int, seed: int, batch: int) -> dict:
    """Text-to-image accuracy of `draw(captions, seeds)` -> pictures [B, H, W, 3] in 0..1 (numpy), on n seeded scenes."""
    rng = random.Random(seed)
    scenes = [world.random_scene(rng) for _ in range(n)]
    ok_objects = ok_exact = 0
    for start in range(0, n, batch):
        chunk = scenes[start:start + batch]
        images = draw([s.caption() for s in chunk], list(range(seed + start, seed + start + len(chunk))))
        ok_objects, ok_exact = _add_matches((ok_objects, ok_exact), chunk, [world.parse_image(i) for i in images])
    return {"objects_match": ok_objects / n, "exact_scene": ok_exact / n, "n": n}


def _caption_edits(edit, cases: list[world.Edit], seed: int, batch: int) -> list[EditScores]:
    """Scores of `edit(sources [B, H, W, 3] uint8, captions, seeds)` -> pictures [B, 3, H, W] in 0..1, case by case."""
    scores: list[EditScores] = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        src = np.stack([world.render(e.source) for e in chunk])
        out = edit(src, [e.prompt for e in chunk], list(range(seed + start, seed + start + len(chunk))))
        scores += score_edits(chunk, src, out)
    return scores


# ------------------------------------------------------------------------ Lumina-mGPT architecture + ATM

@torch.inference_mode()
def lumina_t2i_accuracy(model, vqgan, n: int = 200, seed: int = 20_000, sampling: SamplingSettings | None = None,
                        batch: int = 100) -> dict:
    return _caption_accuracy(lambda captions, seeds: lumina.decode(vqgan, lumina.generate(
        model, captions, world.SIZE, world.SIZE, seeds, sampling)).numpy(), n, seed, batch)


@torch.inference_mode()
def lumina_edit_benchmark(model, vqgan, cases: list[world.Edit], method: str, atm: ATMSettings | None = None,
                          sampling: SamplingSettings | None = None, seed: int = 0, batch: int = 100) -> list[EditScores]:
    """ATM (or naive) on the Lumina-mGPT-architecture model: each case's source encoded by its VQGAN, edited under
    the target caption, scored from the decoded pixels like every other row."""
    def edit(src, captions, seeds):
        cache = lumina.source_cache(model, lumina.encode(vqgan, to_image(src), world.SIZE))
        result = lumina.edit(model, cache, captions, seeds, method, sampling, atm)
        return lumina.decode(vqgan, result.tokens.view(len(src), *cache.grid)).permute(0, 3, 1, 2)
    return _caption_edits(edit, cases, seed, batch)


# ------------------------------------------------------------------------ Janus-Pro architecture + ATM

@torch.inference_mode()
def janus_t2i_accuracy(model, vq, n: int = 200, seed: int = 20_000, sampling: SamplingSettings | None = None,
                       batch: int = 100) -> dict:
    return _caption_accuracy(lambda captions, seeds: janus.decode(vq, janus.generate(
        model, captions, seeds, sampling).tokens).permute(0, 2, 3, 1).numpy(), n, seed, batch)


@torch.inference_mode()
def janus_edit_benchmark(model, vq, cases: list[world.Edit], method: str, atm: ATMSettings | None = None,
                         sampling: SamplingSettings | None = None, seed: int = 0, batch: int = 100) -> list[EditScores]:
    """ATM (or naive) on the Janus-Pro-architecture model: each case's source encoded by its VQ-16, edited under the
    target caption, scored from the decoded pixels like every other row."""
    def edit(src, captions, seeds):
        cache = janus.source_cache(janus.encode(vq, model, to_image(src)), vq)
        result = janus.edit(model, cache, captions, seeds, method, sampling, atm)
        return janus.decode(vq, result.tokens.view(len(src), *cache.grid))
    return _caption_edits(edit, cases, seed, batch)
