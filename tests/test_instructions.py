"""ShapesWorld instructions and control maps (what the embedded editors learn), the instruction encoder's
layout, and the view nodes that show results."""
import numpy as np
import pytest
import torch

from ar_edit_pack.core.shapes import instructions, world
from ar_edit_pack.core.text.word_encoder import WordEncoderConfig, WordEncoderNet, WordTextEncoder


def test_every_phrasing_reads_back_to_the_edit_target():
    for edit in world.edit_cases(300, seed=5):
        phrasings = instructions.instructions(edit)
        assert len(phrasings) == 3 and len(set(phrasings)) == 3
        for text in phrasings:
            assert instructions.apply_instruction(edit.source, text) == edit.target.captioned(), text
            assert instructions.check_prompt(text) == "edit"


def test_a_twin_object_is_named_by_its_position():
    twins = world.Scene((world.Obj("circle", "red", "large", 0), world.Obj("circle", "red", "small", 8)), "white")
    edit = world.Edit("remove", twins, world.Scene(twins.objects[:1], "white"), "")
    assert instructions.instructions(edit)[0] == "remove the red circle at the bottom right"
    with pytest.raises(ValueError, match="2 red circles; say which"):
        instructions.apply_instruction(twins, "remove the red circle")
    with pytest.raises(ValueError, match="has no blue square"):
        instructions.apply_instruction(twins, "remove the blue square")


@pytest.mark.parametrize("text", ["remove red the circle", "make the background red", "replace the red circle",
                                  "a red circle on a white background", "add a red circle"])
def test_text_outside_the_grammar_is_refused(text):
    with pytest.raises(ValueError, match="not an instruction the embedded editors read"):
        instructions.check_prompt(text)


def test_control_prompts_are_checked_as_captions():
    caption = "a small purple circle at the bottom left on a pink background"
    prefix = "Given the canny edge image, generate an image following the description: "
    assert instructions.check_prompt(prefix + caption) == "canny"
    with pytest.raises(ValueError, match="not a ShapesWorld caption"):
        instructions.check_prompt(prefix + "a purple blob")


def test_the_vocabulary_covers_every_prompt_the_editors_read():
    vocab = set(instructions.vocabulary())
    words = lambda t: set(t.lower().replace(":", " ").replace(",", " ").split())
    for edit in world.edit_cases(200, seed=6):
        for text in instructions.instructions(edit):
            assert words(text) <= vocab
    from ar_edit_pack.core.llamagen.editar import task_prompt
    for task in ("canny", "segmentation"):
        assert words(task_prompt(task, world.EXAMPLE_CAPTION)) <= vocab
    assert "depth" not in vocab  # the embedded editor has no depth task: the encoder says so


def test_control_maps_keep_shape_size_and_position_only():
    a = world.Scene((world.Obj("star", "red", "small", 2),), "pink")
    b = world.Scene((world.Obj("star", "blue", "small", 2),), "gray")
    c = world.Scene((world.Obj("star", "red", "large", 2),), "pink")
    for draw in (instructions.edge_map, instructions.segmentation_map):
        assert np.array_equal(draw(a), draw(b))  # colours and background are the caption's to say
        assert not np.array_equal(draw(a), draw(c))
    seg = instructions.segmentation_map(a)
    assert tuple(seg[world.CELL // 2, 2 * world.CELL + world.CELL // 2]) == world.COLORS["yellow"]  # stars are yellow


def test_the_embedded_vq_codes_each_control_shape_apart():
    """The editor can only read an edge / segmentation map if each (shape, size) gets tokens of its own."""
    from ar_edit_pack.core.files.loaders import load_vq
    from ar_edit_pack.core.shapes.bench import to_model
    from ar_edit_pack.core.shapes.embedded import embedded_path

    vq = load_vq(embedded_path("vq"))
    for draw in (instructions.edge_map, instructions.segmentation_map):
        codes = {}
        scenes = [world.Scene((world.Obj(s, "red", z, cell),), "white") for s in world.SHAPES for z in world.SIZES
                  for cell in range(9)]
        ids = vq.encode(to_model(np.stack([draw(s) for s in scenes])))
        for s, grid in zip(scenes, ids.flatten(1)):
            o = s.objects[0]
            codes.setdefault((o.shape, o.size), set()).add(int(grid[o.cell]))
        empty = set(vq.encode(to_model(draw(world.Scene((), "white"))[None])).flatten().tolist())
        groups = list(codes.values()) + [empty]
        assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:]), draw.__name__


def _encoder(grammar=None):
    torch.manual_seed(0)
    net = WordEncoderNet(WordEncoderConfig(vocab=tuple(instructions.vocabulary()), dim=16, n_layer=1, n_head=2,
                                           max_length=12)).eval()
    return WordTextEncoder(net, "test", grammar, "instructions")


def test_raw_features_are_right_padded_to_the_models_length():
    enc = _encoder()
    emb = enc.encode_raw(["remove the red circle", "make the background gray"], 16)
    assert emb.features.shape == (2, 16, 16)
    assert emb.mask[0].tolist() == [True] * 4 + [False] * 12 and emb.mask[1].sum() == 4
    assert emb.features[:, 12:].abs().sum() == 0  # beyond the encoder's own length: zero
    assert emb.features[0, 4:12].abs().sum() > 0  # pad slots as the encoder computes them (T5-like)
    short = enc.encode_raw(["remove the red circle"], 8)
    assert torch.equal(short.features[0], emb.features[0, :8])
    grad = enc.raw_features(["remove the red circle"], 8).features
    assert grad.requires_grad and torch.allclose(grad.detach(), short.features)


def test_the_instruction_encoder_enforces_its_grammar():
    enc = _encoder(instructions.check_prompt)
    with pytest.raises(ValueError, match="does not know 'blob'"):
        enc.encode_raw(["remove the red blob"], 12)
    with pytest.raises(ValueError, match="not an instruction"):
        enc.encode_raw(["remove red the circle"], 12)


# ---- view nodes -----------------------------------------------------------------------------------------

def test_shapes_scene_node_draws_the_caption():
    from ar_edit_pack.nodes.view import ShapesScene

    caption = "a small green triangle at the bottom right and a red star in the center on a sky blue background"
    image, edges, seg = ShapesScene().draw(caption, 0)
    assert image.shape == edges.shape == seg.shape == (1, 48, 48, 3)
    assert world.parse_image(image[0].numpy()).captioned() == world.parse_caption(caption).captioned()
    textured = world.parse_image(ShapesScene().draw(caption, 7)[0][0].numpy())
    assert textured.captioned() == world.parse_caption(caption).captioned() and any(textured.decor)
    with pytest.raises(ValueError, match="not a ShapesWorld caption"):
        ShapesScene().draw("a cat", 0)


def test_compare_grid_enlarges_crisply_and_labels():
    from ar_edit_pack.nodes.view import CompareGrid, enlarge

    a = torch.rand(1, 48, 48, 3)
    big = enlarge(a, 256)
    assert big.shape == (1, 288, 288, 3) and torch.equal(big[0, :6, :6], a[0, :1, :1].expand(6, 6, 3))
    (grid,) = CompareGrid().compare("source\nedit", 256, 0, image_1=a, image_3=torch.rand(2, 48, 48, 3))
    assert grid.shape[0] == 1 and grid.shape[2] > 2 * 288 and grid.shape[1] > 288  # two cells + label row
    with pytest.raises(ValueError, match="at least one image"):
        CompareGrid().compare("x", 256, 0)


def test_mask_overlay_tints_only_the_mask():
    from ar_edit_pack.nodes.view import MaskOverlay

    img = torch.full((1, 48, 48, 3), 0.5)
    mask = torch.zeros(1, 3, 3)
    mask[0, 1, 1] = 1
    (out,) = MaskOverlay().overlay(img, mask, 0.5, 96)
    assert out.shape == (1, 96, 96, 3)
    assert torch.equal(out[0, 0, 0], img[0, 0, 0]) and out[0, 48, 48, 0] > 0.6 and out[0, 48, 48, 1] < 0.4


def test_a_crossed_text_encoder_is_named_with_the_one_to_load():
    """The embedded models come with two word encoders; each node says which one it needs."""
    from ar_edit_pack.nodes.conditioning import TextEncode
    from ar_edit_pack.nodes.editar import EditAR
    from ar_edit_pack.nodes.loaders import EditARLoader, TextEncoderLoader, VQLoader

    (words,) = TextEncoderLoader().load("(embedded) shapes-words", "auto", "default")
    (instr,) = TextEncoderLoader().load("(embedded) shapes-instructions", "auto", "default")
    with pytest.raises(ValueError, match=r"load \(embedded\) shapes-words"):
        TextEncode().encode(instr, world.EXAMPLE_CAPTION, False)
    (model,) = EditARLoader().load("(embedded) shapes-editar", "auto", "auto")
    (vq,) = VQLoader().load("(embedded) shapes-vq", "fp32")
    image = torch.from_numpy(world.render(world.parse_caption(world.EXAMPLE_CAPTION)).astype(np.float32) / 255)[None]
    args = dict(model=model, tokenizer=vq, image=image, instruction="remove the red circle", task="edit", seed=0,
                text_cfg=1.5, image_cfg=1.0, temperature=1.0, top_k=0, top_p=1.0)
    with pytest.raises(ValueError, match=r"load \(embedded\) shapes-instructions"):
        EditAR().edit(text_encoder=words, **args)
    tokens, _ = EditAR().edit(text_encoder=instr, **args)
    assert tokens.tokens.shape == (1, 3, 3)
