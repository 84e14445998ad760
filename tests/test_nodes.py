import shutil

import pytest
import torch

from ar_edit_pack import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from ar_edit_pack.core.files import loaders
from ar_edit_pack.nodes import comfy_bridge
from ar_edit_pack.nodes import types as socket_types

from graph import input_specs, run_graph
from tiny_models import TINY_HEADS, save_official_pt, tiny_gpt, tiny_vq

CUSTOM_TYPES = {getattr(socket_types, n) for n in dir(socket_types) if n.isupper() and n != "CATEGORY"
                and isinstance(getattr(socket_types, n), str)} | {"IMAGE", "MASK", "FLOAT"}


@pytest.fixture()
def models_dir(tmp_path, t5_dir, monkeypatch):
    """A ComfyUI-like models folder with tiny real files in the official formats."""
    root = tmp_path / "models"
    (root / "autoregressive").mkdir(parents=True)
    (root / "vq").mkdir()
    (root / "text_encoders").mkdir()
    save_official_pt(tiny_gpt(), str(root / "autoregressive" / "t2i_tiny_64.pt"))
    (root / "autoregressive" / "sub").mkdir()
    loaders.save_model(tiny_gpt(seed=3), str(root / "autoregressive" / "sub" / "other.safetensors"))
    save_official_pt(tiny_vq(), str(root / "vq" / "vq_tiny.pt"))
    shutil.copytree(t5_dir, root / "text_encoders" / "tiny-t5")
    monkeypatch.setenv("AR_EDIT_MODELS_DIR", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_node_contracts():
    assert set(NODE_CLASS_MAPPINGS) == set(NODE_DISPLAY_NAME_MAPPINGS)
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        assert set(types) <= {"required", "optional", "hidden"}, node_id
        assert callable(getattr(cls, cls.FUNCTION)), node_id
        assert isinstance(cls.RETURN_TYPES, tuple) and cls.RETURN_TYPES, node_id
        assert len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES), node_id
        assert cls.CATEGORY.startswith("AR Edit"), node_id
        assert getattr(cls, "DESCRIPTION", ""), node_id
        for name, spec in input_specs(node_id).items():
            kind = spec[0]
            assert isinstance(kind, list) or kind in {"INT", "FLOAT", "STRING", "BOOLEAN"} | CUSTOM_TYPES, (node_id, name)
            opts = spec[1] if len(spec) > 1 else {}
            if kind in ("INT", "FLOAT"):
                assert opts["min"] <= opts["default"] <= opts["max"], (node_id, name)
            if isinstance(kind, list) and "default" in opts:
                assert opts["default"] in kind, (node_id, name)
        for t in cls.RETURN_TYPES:
            assert t in CUSTOM_TYPES, (node_id, t)


def test_each_model_family_and_kind_of_data_has_its_own_socket():
    """The graph editor connects only equal types: a node that takes a model (or tokenizer, source, prompt, tokens)
    takes exactly one family's."""
    by_family = {
        "model": {"ARE_Generate": "LLAMAGEN_MODEL", "ARE_ATMEdit": "LLAMAGEN_MODEL", "ARE_ATMSweep": "LLAMAGEN_MODEL",
                  "ARE_EditAR": "EDITAR_MODEL", "ARE_EditARSweep": "EDITAR_MODEL", "ARE_InfinityGenerate": "INFINITY_MODEL",
                  "ARE_AREditSource": "INFINITY_MODEL", "ARE_AREdit": "INFINITY_MODEL",
                  "ARE_AREditSweep": "INFINITY_MODEL", "ARE_VAREdit": "VAREDIT_MODEL", "ARE_VAREditSweep": "VAREDIT_MODEL"},
        "tokenizer": {"ARE_ImageToTokens": "VQ_TOKENIZER", "ARE_TokensToImage": "VQ_TOKENIZER",
                      "ARE_SourceCache": "VQ_TOKENIZER", "ARE_EditAR": "VQ_TOKENIZER", "ARE_ImageToBits": "BSQ_VAE",
                      "ARE_BitsToImage": "BSQ_VAE", "ARE_VAREdit": "BSQ_VAE", "ARE_AREditSweep": "BSQ_VAE"},
        "source": {"ARE_ATMEdit": "ATM_SOURCE", "ARE_ATMSweep": "ATM_SOURCE", "ARE_AREdit": "AREDIT_SOURCE",
                   "ARE_AREditSweep": "AREDIT_SOURCE"},
        "conditioning": {"ARE_Generate": "LLAMAGEN_CONDITIONING", "ARE_ATMEdit": "LLAMAGEN_CONDITIONING",
                         "ARE_InfinityGenerate": "INFINITY_CONDITIONING", "ARE_AREdit": "INFINITY_CONDITIONING"},
        "tokens": {"ARE_TokensToImage": "VQ_TOKENS", "ARE_SourceCache": "VQ_TOKENS", "ARE_BitsToImage": "BIT_TOKENS",
                   "ARE_AREditSource": "BIT_TOKENS"},
    }
    for name, nodes in by_family.items():
        for node, family in nodes.items():
            assert input_specs(node)[name][0] == getattr(socket_types, family), (node, name)
    model_types = {socket_types.LLAMAGEN_MODEL, socket_types.EDITAR_MODEL, socket_types.INFINITY_MODEL,
                   socket_types.VAREDIT_MODEL}
    assert len(model_types) == 4
    loaders_out = {NODE_CLASS_MAPPINGS[f"ARE_{n}Loader"].RETURN_TYPES[0] for n in ("LlamaGen", "EditAR", "Infinity",
                                                                                     "VAREdit")}
    assert loaders_out == model_types


def test_a_crossed_wire_is_refused_before_anything_runs():
    from graph_runner import TypeMismatch

    api = {"1": {"class_type": "ARE_VAREditLoader", "inputs": {"model_name": "(embedded) shapes-varedit",
                                                               "precision": "fp32"}},
           "2": {"class_type": "ARE_Generate", "inputs": {"model": ["1", 0], "conditioning": ["3", 0], "seed": 0,
                                                          "batch_size": 1, "cfg_scale": -1, "temperature": 1.0,
                                                          "top_k": -1, "top_p": 1.0}},
           "3": {"class_type": "ARE_ClassLabel", "inputs": {"class_id": 1}}}
    with pytest.raises(TypeMismatch, match=r"received_type\(ARE_VAREDIT_MODEL\) mismatch input_type\(ARE_LLAMAGEN_MODEL\)"):
        run_graph(api)


def test_loader_lists_local_files_and_official_names(models_dir):
    def listed(node, widget="model_name"):
        return NODE_CLASS_MAPPINGS[node].INPUT_TYPES()["required"][widget][0]

    # each family's loader: its embedded model first (no download), then local files, then official names
    choices = listed("ARE_LlamaGenLoader")
    assert choices[:3] == ["(embedded) shapes-t2i", "sub/other.safetensors", "t2i_tiny_64.pt"]
    assert "t2i_XL_stage2_512.pt" in choices and "c2i_B_256.pt" in choices  # downloadable on first use
    assert not {"editar_release.pt", "infinity_2b_reg.pth", "2B-512.pth", "(embedded) shapes-infinity"} & set(choices)
    assert listed("ARE_EditARLoader") == ["(embedded) shapes-editar", "editar_release.pt"]
    infinity = listed("ARE_InfinityLoader")
    assert infinity[0] == "(embedded) shapes-infinity" and "infinity_8b_weights" in infinity
    assert "2B-512.pth" not in infinity and "t2i_tiny_64.pt" not in infinity
    assert listed("ARE_VAREditLoader") == ["(embedded) shapes-varedit", "2B-512.pth", "8B-512.pth", "8B-1024.pth"]
    assert listed("ARE_VQLoader", "tokenizer_name")[:2] == ["(embedded) shapes-vq", "vq_tiny.pt"]
    assert listed("ARE_BSQVAELoader", "tokenizer_name") == ["(embedded) shapes-infinity-vae", "infinity_vae_d32reg.pth",
                                                              "infinity_vae_d56_f8_14_patchify.pth"]
    encoders = NODE_CLASS_MAPPINGS["ARE_TextEncoderLoader"].INPUT_TYPES()["required"]["encoder_name"][0]
    assert encoders[:2] == ["(embedded) shapes-words", "(embedded) shapes-instructions"] and "tiny-t5" in encoders


def graph(prompt="a red circle", batch_size=2, seed=5, model="t2i_tiny_64.pt"):
    return {
        "1": {"class_type": "ARE_LlamaGenLoader", "inputs": {"model_name": model, "precision": "auto", "image_size": "auto",
                                                             "n_head": TINY_HEADS}},
        "2": {"class_type": "ARE_VQLoader", "inputs": {"tokenizer_name": "vq_tiny.pt", "precision": "fp32"}},
        "3": {"class_type": "ARE_TextEncoderLoader", "inputs": {"encoder_name": "tiny-t5", "precision": "auto", "device": "default"}},
        "4": {"class_type": "ARE_TextEncode", "inputs": {"text_encoder": ["3", 0], "prompt": prompt, "one_prompt_per_line": True}},
        "5": {"class_type": "ARE_Generate", "inputs": {"model": ["1", 0], "conditioning": ["4", 0], "seed": seed,
              "batch_size": batch_size, "cfg_scale": 4.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0}},
        "6": {"class_type": "ARE_TokensToImage", "inputs": {"tokenizer": ["2", 0], "tokens": ["5", 0]}},
        "7": {"class_type": "ARE_ImageToTokens", "inputs": {"tokenizer": ["2", 0], "image": ["6", 0], "size": 64,
              "resize": "center_crop"}},
    }


def test_text_to_image_graph_end_to_end(models_dir):
    out = run_graph(graph(prompt="a red circle\na blue square", batch_size=2))
    tokens = out["5"][0]
    assert tokens.tokens.shape == (4, 4, 4) and tokens.origin == "generated"
    assert tokens.seeds.tolist() == [5, 6, 5, 6]  # batch_size seeds per prompt
    assert tokens.condition.prompts == ["a red circle", "a red circle", "a blue square", "a blue square"]
    image = out["6"][0]
    assert image.shape == (4, 64, 64, 3) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert out["7"][0].tokens.shape == (4, 4, 4)
    # same graph, same seed: same tokens; another seed: other tokens
    again = run_graph(graph(prompt="a red circle\na blue square", batch_size=2))["5"][0]
    assert torch.equal(again.tokens, tokens.tokens)
    other = run_graph(graph(prompt="a red circle\na blue square", batch_size=2, seed=99))["5"][0]
    assert not torch.equal(other.tokens, tokens.tokens)


def test_graph_errors_are_clear(models_dir):
    with pytest.raises(ValueError, match="empty"):
        run_graph(graph(prompt="   "))
    with pytest.raises(Exception, match="(?s)t2i_XL_stage2_512.pt.*peizesun/llamagen_t2i"):
        run_graph(graph(model="t2i_XL_stage2_512.pt"))


def test_cancel_stops_generation_and_leaves_the_model_intact(models_dir):
    from ar_edit_pack.core.condition import Condition
    from ar_edit_pack.core.llamagen.generate import generate
    from ar_edit_pack.core.sampling import SamplingSettings

    model = tiny_gpt()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cond = Condition(torch.randn(1, 40, 32), torch.ones(1, 40, dtype=torch.bool))
    calls = []
    cancel_after = comfy_bridge.progress(16, cancel=lambda: len(calls) >= 3)

    def progress(done, total):
        calls.append(done)
        cancel_after(done, total)
    with pytest.raises(comfy_bridge.Cancelled):
        generate(model, cond, SamplingSettings(), [0], progress=progress)
    assert calls == [1, 2, 3]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # and the next run works as if nothing happened
    assert generate(model, cond, SamplingSettings(), [0]).shape == (1, 16)


def edit_graph(method="atm", tau=1.0, with_mask=False, use_source_seed=True):
    g = graph(prompt="a red circle", batch_size=1, seed=5)
    g.update({
        "8": {"class_type": "ARE_SourceCache", "inputs": {"tokens": ["5", 0], "tokenizer": ["2", 0]}},
        "9": {"class_type": "ARE_TextEncode", "inputs": {"text_encoder": ["3", 0], "prompt": "a blue circle",
              "one_prompt_per_line": False}},
        "10": {"class_type": "ARE_ATMEdit", "inputs": {"model": ["1", 0], "source": ["8", 0], "conditioning": ["9", 0],
               "method": method, "seed": 0, "use_source_seed": use_source_seed, "cfg_scale": 4.0, "temperature": 1.0,
               "top_k": 0, "top_p": 1.0, "K": 30, "alpha": 0.6, "tau": tau, "fallback": "greedy"}},
        "11": {"class_type": "ARE_TokensToImage", "inputs": {"tokenizer": ["2", 0], "tokens": ["10", 0]}},
    })
    if with_mask:
        mask = torch.zeros(1, 64, 64)
        mask[:, :, 32:] = 1  # right half may change
        g["10"]["inputs"]["mask"] = mask
    return g


def test_atm_edit_graph(models_dir):
    out = run_graph(edit_graph())
    source, edited = out["5"][0], out["10"][0]
    changed, locked = out["10"][1], out["10"][2]
    assert edited.tokens.shape == source.tokens.shape == (1, 4, 4)
    assert changed.shape == (1, 64, 64) and set(changed.unique().tolist()) <= {0.0, 1.0}
    diff = (edited.tokens != source.tokens).float()
    assert torch.equal(changed[:, ::16, ::16], diff) and locked == pytest.approx(1 - diff.mean().item())
    assert out["11"][0].shape == (1, 64, 64, 3)
    # the whole-codebook lock: tau 4 (max squared distance) with every token reachable reproduces the source
    full = edit_graph(tau=4.0)
    full["10"]["inputs"].update({"K": 64, "alpha": 0.0})
    assert torch.equal(run_graph(full)["10"][0].tokens, source.tokens)


def test_masked_edit_keeps_the_outside(models_dir):
    out = run_graph(edit_graph(method="naive", with_mask=True, use_source_seed=False))
    source, edited = out["5"][0].tokens, out["10"][0].tokens
    assert torch.equal(edited[..., :2], source[..., :2])
    assert not torch.equal(edited[..., 2:], source[..., 2:])


def test_sweep_node_matches_single_edits(models_dir):
    g = edit_graph()
    g["12"] = {"class_type": "ARE_ATMSweep", "inputs": {
        "model": ["1", 0], "tokenizer": ["2", 0], "source": ["8", 0], "conditioning": ["9", 0], "method": "atm",
        "tau_values": "0.2, 1.0, 3.0", "K_values": "30", "alpha_values": "0.6", "seed_values": "0",
        "cfg_values": "4.0", "use_source_seed": True, "fallback": "greedy", "temperature": 1.0, "top_k": 0,
        "top_p": 1.0, "columns": 0}}
    out = run_graph(g)
    images, grid, tokens = out["12"]
    assert images.shape == (3, 64, 64, 3) and grid.shape[0] == 1 and grid.shape[-1] == 3
    assert grid.shape[1] > 64 and grid.shape[2] > 3 * 64  # one row: a column per tau value
    assert torch.equal(tokens.tokens[1], out["10"][0].tokens[0])  # tau 1.0 = the single edit's setting
    single = edit_graph(tau=3.0)
    assert torch.equal(tokens.tokens[2], run_graph(single)["10"][0].tokens[0])
    g["12"]["inputs"]["tau_values"] = "1.0, x"
    with pytest.raises(ValueError, match="tau_values"):
        run_graph(g)


def test_real_image_source_graph(models_dir):
    g = graph()
    g.update({
        "8": {"class_type": "ARE_SourceCache", "inputs": {"tokens": ["7", 0], "tokenizer": ["2", 0]}},
    })
    image = torch.rand(1, 96, 128, 3)
    g["7"]["inputs"]["image"] = image
    del g["5"], g["6"]
    out = run_graph(g)
    cache = out["8"][0]
    assert cache.origin == "encoded" and cache.seeds is None and cache.anchors.shape == (1, 16)


def editar_loaders(models_dir, image_size="auto"):
    """Loader nodes 1-3 for a tiny EditAR model, saved into the models folder."""
    from test_editar import tiny_editar

    save_official_pt(tiny_editar(), str(models_dir / "autoregressive" / "editar_tiny.pt"))
    return {
        "1": {"class_type": "ARE_EditARLoader", "inputs": {"model_name": "editar_tiny.pt", "precision": "auto",
                                                           "image_size": image_size, "n_head": TINY_HEADS}},
        "2": {"class_type": "ARE_VQLoader", "inputs": {"tokenizer_name": "vq_tiny.pt", "precision": "fp32"}},
        "3": {"class_type": "ARE_TextEncoderLoader", "inputs": {"encoder_name": "tiny-t5", "precision": "auto",
                                                                "device": "default"}},
    }


def test_editar_node_graph(models_dir):
    image = torch.rand(1, 80, 120, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, 32:] = 1  # bottom half may change
    g = {
        **editar_loaders(models_dir, image_size="64"),
        "4": {"class_type": "ARE_EditAR", "inputs": {"model": ["1", 0], "tokenizer": ["2", 0], "text_encoder": ["3", 0],
              "image": image, "instruction": "make the circle blue", "task": "edit", "seed": 3, "text_cfg": 3.0,
              "image_cfg": 1.5, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "mask": mask}},
        "5": {"class_type": "ARE_TokensToImage", "inputs": {"tokenizer": ["2", 0], "tokens": ["4", 0]}},
    }
    out = run_graph(g)
    edited, source = out["4"]
    assert edited.tokens.shape == source.tokens.shape == (1, 4, 4)
    assert torch.equal(edited.tokens[:, :2], source.tokens[:, :2])  # outside the mask: the input's tokens
    assert out["5"][0].shape == (1, 64, 64, 3)
    g["4"]["inputs"]["task"] = "depth"
    g["4"]["inputs"]["instruction"] = ""
    with pytest.raises(ValueError, match="empty"):
        run_graph(g)
    g["1"]["inputs"]["model_name"] = "t2i_tiny_64.pt"
    g["4"]["inputs"]["instruction"] = "a house"
    with pytest.raises(ValueError, match=r"t2i_tiny_64.pt is a LlamaGen model, not an EditAR model: load it with AR LlamaGen Loader"):
        run_graph(g)


def test_demo_command_writes_the_side_by_side(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "ar_edit_pack", "demo", "--out", str(out), "--tau", "4.0", "--K", "256",
                          "--alpha", "0", "--candidates", "distinct"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    from PIL import Image
    w, h = Image.open(out / "demo.png").size
    assert w == 3 * h and h >= 240  # three panels of the 48 px embedded images, upscaled
    params = json.loads((out / "demo.json").read_text())
    assert params["model"].startswith("embedded") and params["atm"]["candidates"] == "distinct"
    assert params["atm"]["tau"] == 4.0 and params["locked_fraction"] == 1.0  # tau max + all candidates: the source
    # one import name: the folder's core is no package of its own
    bare = subprocess.run([sys.executable, "-m", "core", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "python -m ar_edit_pack" in bare.stderr


def test_editar_sweep_items_equal_single_edits(models_dir):
    image = torch.rand(1, 64, 64, 3)
    loaders_ = editar_loaders(models_dir)
    common = {"model": ["1", 0], "tokenizer": ["2", 0], "text_encoder": ["3", 0], "image": image,
              "instruction": "make it red", "task": "edit", "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    sweep = run_graph({**loaders_, "4": {"class_type": "ARE_EditARSweep", "inputs": {
        **common, "seed_values": "4, 9", "text_cfg_values": "1.0, 3.0", "image_cfg_values": "1.0, 2.0", "columns": 0}}})
    images, grid, tokens = sweep["4"]
    assert images.shape == (8, 64, 64, 3) and tokens.tokens.shape == (8, 4, 4) and grid.shape[0] == 1
    for j, (seed, t, i) in enumerate([(4, 1.0, 1.0), (4, 3.0, 2.0), (9, 3.0, 1.0), (9, 1.0, 2.0)]):
        row = {(4, 1.0, 1.0): 0, (4, 3.0, 2.0): 3, (9, 3.0, 1.0): 6, (9, 1.0, 2.0): 5}[(seed, t, i)]
        single = run_graph({**loaders_, "4": {"class_type": "ARE_EditAR", "inputs": {
            **common, "seed": seed, "text_cfg": t, "image_cfg": i}}})["4"][0]
        assert torch.equal(tokens.tokens[row], single.tokens[0]), (seed, t, i)


def test_every_input_and_output_has_a_plain_words_tooltip():
    """#18: an artist hovering any widget, socket or output gets an explanation; formulas stay in the README."""
    import re

    from ar_edit_pack import NODE_CLASS_MAPPINGS

    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in types.get(section, {}).items():
                tip = spec[1].get("tooltip", "") if len(spec) > 1 else ""
                assert len(tip) >= 10, f"{node_id}.{name} has no tooltip"
                assert not re.search(r"\|\w+\||floor\(|logit|argmax", tip), f"{node_id}.{name} speaks in formulas: {tip}"
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES), f"{node_id}: outputs without tooltips"


def _widget_defaults(node_id):
    from graph import widget_names

    return {name: spec[1]["default"] for name, spec in widget_names(node_id) if "default" in spec[1]}


def test_a_freshly_added_node_takes_the_model_files_own_settings(models_dir, monkeypatch):
    """Widgets left at their defaults (-1 = the model's own): the embedded models' tuned settings, from their files;
    an official-layout file's, the published ones."""
    from ar_edit_pack.nodes import (AREdit, AREditSourceCache, Generate, InfinityGenerate, InfinityLoader,
                                    InfinityTextEncode, LlamaGenLoader, TextEncode, TextEncoderLoader)

    (words,) = TextEncoderLoader().load("(embedded) shapes-words", "fp32", "cpu")
    caption = "a red circle at the top left and a small blue square in the center on a white background"
    gen = {k: v for k, v in _widget_defaults("ARE_Generate").items() if k != "batch_size"}
    (embedded,) = LlamaGenLoader().load("(embedded) shapes-t2i", "fp32", "auto")
    (tokens,) = Generate().generate(embedded, TextEncode().encode(words, caption, False)[0], batch_size=1, **gen)
    assert (tokens.settings.cfg_scale, tokens.settings.top_k) == (1.5, 0)
    (official,) = LlamaGenLoader().load("t2i_tiny_64.pt", "fp32", "auto", TINY_HEADS)
    (t5,) = TextEncoderLoader().load("tiny-t5", "fp32", "cpu")
    (tokens,) = Generate().generate(official, TextEncode().encode(t5, "a red circle", False)[0], batch_size=1, **gen)
    assert (tokens.settings.cfg_scale, tokens.settings.top_k) == (7.5, 1000)

    (net,) = InfinityLoader().load("(embedded) shapes-infinity", "fp32")
    src_cond = InfinityTextEncode().encode(words, caption, False)[0]
    igen = {k: v for k, v in _widget_defaults("ARE_InfinityGenerate").items() if k != "batch_size"}
    (bits,) = InfinityGenerate().generate(net, src_cond, batch_size=1, **{**igen, "resolution": "48"})
    assert bits.sampling[0].cfg == 1.0  # the embedded model's own, not the published 3
    (source,) = AREditSourceCache().build(net, bits, **_widget_defaults("ARE_AREditSource"))
    target = InfinityTextEncode().encode(words, caption.replace("blue square", "yellow star"), False)[0]
    fresh = _widget_defaults("ARE_AREdit")
    assert fresh["threshold"] == -1
    from ar_edit_pack.core.pipelines import infinity

    used = []
    monkeypatch.setattr(infinity, "aredit_edit", lambda *a, **k: used.append(a[3]) or real(*a, **k))
    real = __import__("ar_edit_pack.core.infinity.aredit", fromlist=["aredit_edit"]).aredit_edit
    a = AREdit().edit(net, source, target, **fresh)
    b = AREdit().edit(net, source, target, **{**fresh, "threshold": 0.1})
    assert [s.threshold for s in used] == [0.1, 0.1]  # the embedded file's own threshold, not the published 0.8
    assert all(torch.equal(x, y) for x, y in zip(a[0].bits, b[0].bits))


def test_each_run_loads_its_models_in_one_call_with_room_for_the_run(models_dir, monkeypatch):
    """ComfyUI frees memory per load_models_gpu call: a node that ran one call per model could push its first model
    out when loading the second. Each run node makes one call with every model it uses and its run's memory."""
    from ar_edit_pack.core import memory
    from ar_edit_pack.core.pipelines.llamagen import decode_memory
    from ar_edit_pack.nodes import (AREdit, AREditSourceCache, Generate, InfinityGenerate, InfinityLoader,
                                    InfinityTextEncode, LlamaGenLoader, TextEncode, TextEncoderLoader)
    from ar_edit_pack.nodes import comfy_bridge

    calls = []
    real = comfy_bridge.load_models
    monkeypatch.setattr(comfy_bridge, "load_models", lambda models, need=0: calls.append(
        ([m.name for m in models if m is not None], need)) or real(models, need))
    (words,) = TextEncoderLoader().load("(embedded) shapes-words", "fp32", "cpu")
    caption = "a red circle at the top left and a small blue square in the center on a white background"
    (gpt,) = LlamaGenLoader().load("(embedded) shapes-t2i", "fp32", "auto")
    gen = {k: v for k, v in _widget_defaults("ARE_Generate").items() if k != "batch_size"}
    Generate().generate(gpt, TextEncode().encode(words, caption, False)[0], batch_size=3, **gen)
    assert calls == [(["(embedded) shapes-t2i"], 3 * decode_memory(gpt.module).per_row)]

    (net,) = InfinityLoader().load("(embedded) shapes-infinity", "fp32")
    cond = InfinityTextEncode().encode(words, caption, False)[0]
    igen = {k: v for k, v in _widget_defaults("ARE_InfinityGenerate").items() if k != "batch_size"}
    calls.clear()
    (bits,) = InfinityGenerate().generate(net, cond, batch_size=2, **{**igen, "resolution": "48"})
    per_row = memory.infinity_run(net.module.cfg, bits.schedule, net.module.dtype).per_row
    assert calls == [(["(embedded) shapes-infinity"], 2 * per_row)] and per_row > 0
    # the estimate covers the static cache the run allocates (both guidance branches)
    cache = net.module.new_cache(2, sum(h * w for h, w in bits.schedule))
    assert per_row > sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in cache)
    (source,) = AREditSourceCache().build(net, bits, **_widget_defaults("ARE_AREditSource"))
    calls.clear()
    AREdit().edit(net, source, cond, **_widget_defaults("ARE_AREdit"))
    assert calls == [(["(embedded) shapes-infinity"], 2 * per_row)]

    from ar_edit_pack.core.pipelines import janus
    from ar_edit_pack.nodes.janus import JanusEdit, JanusGenerate, JanusLoader

    model, tok = JanusLoader().load("(embedded) shapes-janus", "auto")  # the model and its VQ, one call with both
    calls.clear()
    (tokens,) = JanusGenerate().generate(model, caption, 2, 0, -1, 1.0, -1, preview_tokenizer=tok)
    per_row = janus.decode_memory(model.module, janus.encode_prompts(model.module, [caption])).per_row
    assert calls == [(["(embedded) shapes-janus", "(embedded) shapes-janus VQ"], 2 * per_row)] and per_row > 0
    calls.clear()
    JanusEdit().edit(model, janus.source_cache(tokens, tok.module), caption, "atm", 0, True, -1, 1.0, -1, -1, 0.6,
                     -1, "greedy")
    assert calls == [(["(embedded) shapes-janus"], 2 * per_row)]


def test_a_tokenizer_that_does_not_fit_the_model_is_refused_before_any_sampling(monkeypatch):
    from ar_edit_pack.nodes.conditioning import TextEncode
    from ar_edit_pack.nodes.generate import Generate
    from ar_edit_pack.nodes.loaders import LlamaGenLoader, TextEncoderLoader
    from ar_edit_pack.core.pipelines import llamagen

    (model,) = LlamaGenLoader().load("(embedded) shapes-t2i", "fp32")  # 256 codes
    (text,) = TextEncoderLoader().load("(embedded) shapes-words", "auto", "default")
    (cond,) = TextEncode().encode(text, "a red circle at the top left on a white background", True)
    sampled = []
    real_generate = llamagen.generate
    monkeypatch.setattr(llamagen, "generate", lambda *a, **k: sampled.append(1) or real_generate(*a, **k))

    def graph(tokenizer_name):
        return {"1": {"class_type": "ARE_LlamaGenLoader", "inputs": {}},
                "5": {"class_type": "ARE_Generate", "inputs": {"model": ["1", 0]}},
                "8": {"class_type": "ARE_VQLoader", "inputs": {"tokenizer_name": tokenizer_name, "precision": "fp32"}},
                "6": {"class_type": "ARE_TokensToImage", "inputs": {"tokenizer": ["8", 0], "tokens": ["5", 0]}}}

    args = (model, cond, 0, 1, -1, 1.0, -1, 1.0)
    with pytest.raises(ValueError, match="'vq_ds16_t2i.pt' that decodes these tokens has 16384 codes, but the model "
                                         "draws from 256.*nothing was sampled"):
        Generate().generate(*args, prompt=graph("vq_ds16_t2i.pt"), unique_id="5")
    assert not sampled
    (tokens,) = Generate().generate(*args, prompt=graph("(embedded) shapes-vq"), unique_id="5")  # its own: fits
    assert sampled and tokens.tokens.shape[0] == 1
    Generate().generate(*args, prompt=graph("../../outside.safetensors"), unique_id="5")  # the loader's to refuse
