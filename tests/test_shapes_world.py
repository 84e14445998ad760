import os
import random

import numpy as np
import pytest
import torch

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.shapes import world
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.shapes.bench import psnr, ssim
from ar_edit_pack.core.text.word_encoder import WordEncoderConfig, WordEncoderNet, WordTextEncoder


def sorted_scene(s):
    return world.Scene(tuple(sorted(s.objects, key=lambda o: o.cell)), s.background, s.decor)


def test_render_is_deterministic_and_parses_back_exactly():
    rng = random.Random(0)
    for _ in range(300):
        scene = world.random_scene(rng)
        img = world.render(scene)
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8
        assert np.array_equal(img, world.render(scene))
        assert world.parse_image(img) == sorted_scene(scene)
        assert world.parse_image(img.astype(np.float32) / 255) == sorted_scene(scene)


def test_parser_tells_every_shape_colour_and_size_apart():
    for shape in world.SHAPES:
        for color in world.COLORS:
            for size in world.SIZES:
                for bg in world.BACKGROUNDS:
                    s = world.Scene((world.Obj(shape, color, size, 4),), bg)
                    assert world.parse_image(world.render(s)) == s


def test_cell_classes_are_the_token_grid_ground_truth():
    # Each 16 px cell is exactly one class's patch wherever it sits, and distinct classes look different:
    # the embedded tokenizer is trained on these labels, so both facts must hold.
    classes = world.cell_classes()
    patches = {}
    rng = random.Random(3)
    for _ in range(400):
        scene = world.random_scene(rng)
        img = world.render(scene)
        for cell, label in enumerate(world.cell_labels(scene)):
            r, c = divmod(cell, 3)
            patch = img[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16]
            if label in patches:
                assert np.array_equal(patches[label], patch), classes[label]
            patches[label] = patch
    assert len(patches) > 200
    seen = {}
    for label, patch in patches.items():
        key = patch.tobytes()
        assert key not in seen, (classes[label], classes[seen.get(key, label)])
        seen[key] = label
    # the checker's light squares are plain white cells: one class, not two
    white = world.Scene((), "white")
    checkered = world.Scene((), "checkered")
    assert world.cell_labels(checkered)[0] == world.cell_labels(white)[0] != world.cell_labels(checkered)[1]


def test_captions_use_only_the_vocabulary():
    vocab = set(world.vocabulary())
    rng = random.Random(1)
    for _ in range(200):
        cap = world.random_scene(rng).caption()
        assert set(cap.split()) <= vocab, cap
    s = world.Scene((world.Obj("circle", "red", "large", 0), world.Obj("square", "blue", "small", 8)), "white")
    assert s.caption() == "a red circle at the top left and a small blue square at the bottom right on a white background"


def test_large_may_be_said_and_reads_as_the_unsaid_default():
    from ar_edit_pack.core.shapes import embedded
    from ar_edit_pack.core.pipelines import lumina
    from ar_edit_pack.core.shapes.embedded import EMBEDDED_DIR, LUMINA_CHOICES

    plain = "a red circle at the top left and a small blue square in the center on a white background"
    said = "a Large red circle at the top left and a small blue square in the center on a white background"
    assert world.parse_caption(said) == world.parse_caption(plain) and world.parse_caption(said).objects[0].size == "large"
    with pytest.raises(ValueError, match="a \\[small\\|large\\]"):
        world.parse_caption("a huge red circle at the top left on a white background")
    _, text, _ = embedded.load_embedded()
    assert torch.equal(text.encode([said]).features, text.encode([plain]).features)
    with pytest.raises(ValueError, match="does not know 'huge'"):
        text.encode(["a huge red circle at the top left on a white background"])
    model = lumina.load_lumina(os.path.join(EMBEDDED_DIR, LUMINA_CHOICES["autoregressive"][1]))
    assert lumina.encode_prompts(model, [said], 96, 96) == lumina.encode_prompts(model, [plain], 96, 96)


@pytest.mark.parametrize("kind", world.EDIT_KINDS)
def test_edits_change_exactly_what_they_say(kind):
    cases = [c for c in world.edit_cases(50, seed=3) if c.kind == kind]
    assert len(cases) == 10
    for e in cases:
        mask = e.changed_mask()
        src, tgt = world.render(e.source), world.render(e.target)
        assert mask.any() and np.array_equal(src[~mask], tgt[~mask])
        assert e.prompt == e.target.caption() != e.source.caption()
        moved = [c for c in range(9) if e.source.object_at(c) != e.target.object_at(c)]
        if kind == "background":
            assert not moved and e.source.background != e.target.background
        else:
            assert len(moved) == 1 and e.source.background == e.target.background
            if kind == "add":
                assert e.source.object_at(moved[0]) is None
            if kind == "remove":
                assert e.target.object_at(moved[0]) is None
                r, c = divmod(moved[0], 3)
                assert mask[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].all()  # the freed cell's texture is open
        # the uncaptioned texture of every cell the edit does not touch is kept
        assert all(e.source.decor[c] == e.target.decor[c] for c in range(9) if c not in moved)


def test_texture_is_uncaptioned_and_parsed_back():
    rng = random.Random(4)
    scenes = [world.random_scene(rng) for _ in range(200)]
    assert len({s.decor for s in scenes}) > 100 and all(s.decor[o.cell] == 0 for s in scenes for o in s.objects)
    a = scenes[0]
    b = world.Scene(a.objects, a.background, tuple((d + 1) % 3 if a.object_at(c) is None else 0
                                                   for c, d in enumerate(a.decor)))
    assert a.caption() == b.caption() and a.captioned() == b.captioned() and a != b
    assert world.parse_image(world.render(b)).decor == b.decor
    with pytest.raises(ValueError, match="decor"):
        world.Scene(a.objects, a.background, (1,) * 9)  # texture under an object


def test_edit_cases_are_seeded():
    a, b = world.edit_cases(20, seed=5), world.edit_cases(20, seed=5)
    assert [(e.kind, e.prompt) for e in a] == [(e.kind, e.prompt) for e in b]
    assert [e.prompt for e in a] != [e.prompt for e in world.edit_cases(20, seed=6)]


def test_psnr_and_ssim_respect_the_mask():
    a = torch.rand(2, 3, 32, 32)
    b = a.clone()
    b[:, :, :16] = 1 - b[:, :, :16]  # damage the top half only
    keep = torch.zeros(2, 32, 32, dtype=torch.bool)
    keep[:, 16:] = True
    assert (psnr(a, b, keep) == 60).all() and (psnr(a, b) < 20).all()
    assert ssim(a, a).allclose(torch.ones(2)) and (ssim(a, b) < 0.9).all()
    far = torch.zeros(2, 32, 32, dtype=torch.bool)
    far[:, 24:] = True  # away from the damage by more than the SSIM window
    assert ssim(a, b, far).allclose(torch.ones(2), atol=1e-4)


def word_encoder():
    torch.manual_seed(0)
    return WordTextEncoder(WordEncoderNet(WordEncoderConfig(vocab=tuple(world.vocabulary()), dim=16, n_layer=1,
                                                            n_head=2, max_length=32)).eval())


def test_word_encoder_layout_and_vocabulary_errors():
    enc = word_encoder()
    emb = enc.encode(["a red circle in the center on a white background", "a small star at the top"])
    assert emb.features.shape == (2, 32, 16)
    assert emb.mask[0].sum() == 10 and emb.mask[0, -10:].all() and emb.features[0, :-10].abs().sum() == 0
    with pytest.raises(ValueError, match="'dog'.*knows only"):
        enc.encode(["a red dog"])
    with pytest.raises(ValueError, match="at most 32"):
        enc.encode(["a " * 40])
    with pytest.raises(ValueError, match="empty"):
        enc.encode([""])


def test_word_encoder_round_trip(tmp_path):
    enc = word_encoder()
    path = tmp_path / "words.safetensors"
    loaders.save_model(enc.model, path)
    loaded = loaders.load_word_encoder(path)
    prompts = ["a green square on the left on a checkered background"]
    assert torch.equal(loaded.encode(prompts).features, enc.encode(prompts).features)
    with pytest.raises(CheckpointError, match="text encoder"):
        loaders.load_vq(path)


def test_labelled_grid_wraps_long_labels_to_the_cell():
    from ar_edit_pack.core.grid_image import labelled_grid

    images = torch.rand(4, 64, 64, 3)
    short = labelled_grid(images, ["a"] * 4, columns=2)
    long = labelled_grid(images, ["seed=0, text=2, image=1 | atm"] * 4, columns=2)
    assert short.shape[2] == long.shape[2] == 2 * 68 + 4  # widths fixed by the cells
    assert long.shape[1] > short.shape[1]  # wrapped onto more lines, not spilled sideways
    assert torch.equal(long[0, 4:68, 4:68], images[0].mul(255).round().div(255))  # the first cell's pixels
    with pytest.raises(ValueError, match="labels"):
        labelled_grid(images, ["a"], columns=2)


def test_scene_from_labels_inverts_cell_labels():
    rng = random.Random(7)
    for _ in range(500):
        scene = world.random_scene(rng)
        back = world.scene_from_labels(world.cell_labels(scene))
        assert back.captioned() == scene.captioned() and back.decor == scene.decor
    checkered = world.Scene((), "checkered")
    assert world.scene_from_labels(world.cell_labels(checkered)).background == "checkered"
