"""The training and benchmark scripts run end to end (a few steps on tiny configs; quality is not
asserted here)."""
import math
import os
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import shapes_benchmark  # noqa: E402
import train_embedded as T  # noqa: E402
import train_embedded_infinity as TI  # noqa: E402

from ar_edit_pack.core.shapes import world  # noqa: E402
from ar_edit_pack.core.infinity.aredit import AREditSettings  # noqa: E402
from ar_edit_pack.core.llamagen.atm import ATMSettings  # noqa: E402
from ar_edit_pack.core.infinity.generate import BitTokens, InfinitySampling, teacher_forced  # noqa: E402
from ar_edit_pack.core.infinity.model import InfinityConfig  # noqa: E402
from ar_edit_pack.core.infinity.vae import BSQVAEConfig  # noqa: E402
from ar_edit_pack.core.shapes.bench import EMBEDDED_INFINITY_SCHEDULE, infinity_condition  # noqa: E402
from ar_edit_pack.core.llamagen.gpt import GPTConfig  # noqa: E402
from ar_edit_pack.core.llamagen.vq import VQConfig  # noqa: E402
from ar_edit_pack.core.files.loaders import load_vq, save_model  # noqa: E402
from ar_edit_pack.core.shapes.embedded import embedded_path  # noqa: E402
from ar_edit_pack.core.text.word_encoder import WordEncoderConfig  # noqa: E402

TINY_VQ = VQConfig(codebook_size=256, codebook_embed_dim=4, ch=8, ch_mult=(1, 1, 1, 1, 2), num_res_blocks=1,
                   z_channels=8, norm_groups=4)
TINY_TEXT = WordEncoderConfig(vocab=tuple(world.vocabulary()), dim=16, n_layer=1, n_head=2, max_length=32)
TINY_GPT = GPTConfig(dim=32, n_layer=1, n_head=2, multiple_of=32, vocab_size=256, caption_dim=16, cls_token_num=32,
                     image_size=48, downsample=16)


def test_training_and_benchmark_scripts_run(tmp_path):
    logs = []
    vq = T.train_vq(3, 2, 0, logs.append, TINY_VQ)
    assert any("vq decoder step 3/3" in line for line in logs) and "held-out psnr" in logs[-1]
    with pytest.raises(ValueError, match=f"at least {len(world.cell_classes())} codes"):
        T.train_vq(1, 1, 0, logs.append, VQConfig(**{**TINY_VQ.to_dict(), "codebook_size": 64}))
    captions, tokens = T.encode_dataset(vq, 6, 1)
    assert len(captions) == 6 and tokens.shape == (6, 9) and int(tokens.max()) < 256
    before = [p.clone() for p in (vq.decoder.conv_out.weight,)]
    gpt, text_net = T.train_gpt(captions, tokens, 3, 4, 2, logs.append, TINY_GPT, TINY_TEXT)
    assert "gpt step 3/3" in logs[-1] and math.isfinite(float(logs[-1].split("loss ")[1].split()[0]))
    assert torch.equal(before[0], vq.decoder.conv_out.weight)
    for model, name in ((vq, "shapes_vq"), (gpt, "shapes_gpt"), (text_net, "shapes_text")):
        save_model(model, tmp_path / f"{name}.safetensors")
    report = shapes_benchmark.run(str(tmp_path), cases=10, t2i=4, atm=ATMSettings(K=8), vq_images=4)
    assert set(report["edits"]) == {"naive", "atm", "atm sampled"}
    assert report["edits"]["atm"]["all"]["n"] == 10 and set(report["edits"]["atm"]) >= {"all", "replace", "background"}
    assert 0 <= report["t2i"]["objects_match"] <= 1 and report["vq_psnr"] > 0
    assert "| atm | all |" in shapes_benchmark.bench.markdown_table(report["edits"])
    # --t2i 0 skips text-to-image, and --case-seed picks the LlamaGen backbone's cases too
    other = shapes_benchmark.run(str(tmp_path), cases=10, t2i=0, atm=ATMSettings(K=8), vq_images=4, case_seed=1)
    assert other["t2i"] is None and other["edits"]["atm"]["all"]["n"] == 10
    assert other["edits"]["naive"] != report["edits"]["naive"]  # other cases, other scores


TINY_BSQ = BSQVAEConfig(ch=24, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, bits=16)
TINY_INFINITY = InfinityConfig(depth=2, embed_dim=64, num_heads=2, text_channels=16, text_maxlen=32, block_chunks=2,
                               vae_bits=16, pool_heads=2)


def test_infinity_training_and_benchmark_scripts_run(tmp_path):
    from ar_edit_pack.core.text.word_encoder import WordEncoderNet, WordTextEncoder

    torch.manual_seed(0)
    logs = []
    vae = TI.train_vae(3, 2, 0, logs.append, TINY_BSQ, encoder_steps=2, encoder_batch=2)
    assert any("vae decoder step 3/3" in line for line in logs) and "held-out psnr" in logs[-1]
    captions, bits = TI.encode_dataset(vae, 6, 1)
    assert len(captions) == 6 and [tuple(b.shape) for b in bits] == [(6, h, w, 16) for h, w in EMBEDDED_INFINITY_SCHEDULE]
    text_net = WordEncoderNet(TINY_TEXT).eval()
    model = TI.train_infinity(captions, bits, WordTextEncoder(text_net), 3, 4, 2, logs.append, TINY_INFINITY)
    assert "infinity step 3/3" in logs[-1] and math.isfinite(float(logs[-1].split("loss ")[1].split()[0]))
    model.resolutions = (world.SIZE,)  # as the training script stores it
    for net, name in ((vae, "shapes_infinity_vae"), (model, "shapes_infinity"), (text_net, "shapes_text")):
        save_model(net, tmp_path / f"{name}.safetensors")
    report = shapes_benchmark.run_infinity(str(tmp_path), cases=5, t2i=4, aredit=AREditSettings(1, 0.1), vae_images=4,
                                           grid=True)
    assert 0 <= report["vae"]["exact_scene"] <= 1 and report["vae"]["n"] == 4
    assert set(report["edits"]) == {"naive (infinity)", "aredit"} and report["edits"]["aredit"]["all"]["n"] == 5
    assert len(report["grid"]) == len(shapes_benchmark.GRID_GAMMAS) * len(shapes_benchmark.GRID_THRESHOLDS)
    assert "| 2 | 0.7 |" in shapes_benchmark.grid_table(report["grid"])


def test_infinity_training_inputs_are_the_samplers_inputs():
    """The transformer is trained on the inputs the sampler builds: the full training pass and the cached
    sampler's teacher-forced pass give the same probabilities."""
    from ar_edit_pack.core.infinity.model import InfinityTransformer
    from ar_edit_pack.core.text.word_encoder import WordEncoderNet, WordTextEncoder

    torch.manual_seed(0)
    model = InfinityTransformer(TINY_INFINITY).eval()
    text = WordTextEncoder(WordEncoderNet(TINY_TEXT).eval())
    bits = [torch.rand(2, h, w, 16) > 0.5 for h, w in EMBEDDED_INFINITY_SCHEDULE]
    cond = infinity_condition(text, ["a red circle on the left on a white background", "a pink background"])
    with torch.no_grad():
        logits = model(cond.raw, cond.mask, TI.teacher_inputs(bits), EMBEDDED_INFINITY_SCHEDULE)
    tokens = BitTokens(bits, list(EMBEDDED_INFINITY_SCHEDULE), "encoded")
    p1 = teacher_forced(model, cond, tokens, InfinitySampling(cfg=1.0, tau=1.0, top_p=1.0))
    torch.testing.assert_close(logits.softmax(-1)[..., 1], torch.cat([p.flatten(1, 2) for p in p1], 1),
                               atol=1e-5, rtol=1e-4)


def test_demo_uses_the_embedded_models_when_present(tmp_path, monkeypatch):
    import json

    from ar_edit_pack.core import __main__ as cli
    from ar_edit_pack.core.shapes import embedded

    torch.manual_seed(0)
    from ar_edit_pack.core.llamagen.gpt import LlamaGenGPT
    from ar_edit_pack.core.llamagen.vq import LlamaGenVQ
    from ar_edit_pack.core.text.word_encoder import WordEncoderNet

    folder = tmp_path / "embedded"
    folder.mkdir()
    save_model(LlamaGenVQ(TINY_VQ), folder / "shapes_vq.safetensors")
    save_model(LlamaGenGPT(TINY_GPT), folder / "shapes_gpt.safetensors")
    save_model(WordEncoderNet(TINY_TEXT), folder / "shapes_text.safetensors")
    monkeypatch.setattr(embedded, "EMBEDDED_DIR", str(folder))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--seed", "3"]) == 0
    params = json.loads((out / "demo.json").read_text())
    assert params["model"].startswith("embedded") and params["seed"] == 3
    assert params["edit_prompt"] != params["source_prompt"] and 0 <= params["locked_fraction"] <= 1
    assert (out / "demo.png").exists()
    # a word the embedded model does not know is a clear error, not a silent image
    assert cli.main(["demo", "--out", str(out), "--prompt", "a purple dragon"]) == 2


def test_aredit_demo_runs_on_the_embedded_infinity_models(tmp_path, monkeypatch, capsys):
    import json

    from ar_edit_pack.core import __main__ as cli
    from ar_edit_pack.core.shapes import embedded
    from ar_edit_pack.core.infinity.model import InfinityTransformer
    from ar_edit_pack.core.infinity.vae import BSQVAE
    from ar_edit_pack.core.text.word_encoder import WordEncoderNet

    monkeypatch.setattr(embedded, "EMBEDDED_DIR", str(tmp_path / "nothing"))
    assert cli.main(["demo", "--method", "aredit", "--out", str(tmp_path / "x")]) == 2
    assert "train_embedded_infinity.py" in capsys.readouterr().err  # says how to get the files
    torch.manual_seed(0)
    folder = tmp_path / "embedded"
    folder.mkdir()
    save_model(BSQVAE(TINY_BSQ), folder / "shapes_infinity_vae.safetensors")
    net = InfinityTransformer(TINY_INFINITY)
    net.resolutions = (world.SIZE,)  # a 48 px model, as the training script stores it
    save_model(net, folder / "shapes_infinity.safetensors")
    save_model(WordEncoderNet(TINY_TEXT), folder / "shapes_text.safetensors")
    monkeypatch.setattr(embedded, "EMBEDDED_DIR", str(folder))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--method", "aredit", "--out", str(out), "--seed", "4", "--threshold", "5"]) == 0
    params = json.loads((out / "demo.json").read_text())
    assert params["aredit"]["threshold"] == 5.0 and params["seed"] == 4 and params["panels"][1] == "AREdit edit"
    assert params["changed_fraction"] == 0.0  # threshold > 1 keeps every bit of the source
    assert cli.main(["demo", "--method", "aredit", "--out", str(out), "--gamma", "9"]) == 2  # only 3 scales


def test_demo_without_the_embedded_files_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    from ar_edit_pack.core import __main__ as cli
    from ar_edit_pack.core.shapes import embedded

    monkeypatch.setattr(embedded, "EMBEDDED_DIR", str(tmp_path / "nothing"))
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "shapes_gpt.safetensors" in err and "tools/train_embedded.py" in err
    assert not (tmp_path / "demo").exists()


def test_infinity_vae_latent_is_coded_scale_by_scale_exactly():
    """The designed latent goes through the real multi-scale quantiser as intended: the 1x1 code is the scene's
    background, the 2x2 code the fixed positional pattern, the 3x3 code every cell's attribute bits, and the
    transformer's input at the 3x3 scale differs from cell to cell."""
    import random

    from ar_edit_pack.core.infinity.bsq import quantize_multiscale

    rng = random.Random(7)
    scenes = [world.random_scene(rng) for _ in range(300)]
    bits, _ = quantize_multiscale(TI.scene_latents(scenes), EMBEDDED_INFINITY_SCHEDULE)
    backgrounds = torch.tensor([list(world.BACKGROUNDS).index(s.background) for s in scenes])
    assert torch.equal(bits[0][:, 0, 0].float() * 2 - 1, TI.scene_latent_table()[backgrounds])
    quadrants = torch.nn.functional.interpolate(TI.position_pattern()[None], size=(2, 2), mode="area")[0].sign()
    assert all(torch.equal(b.float() * 2 - 1, quadrants.permute(1, 2, 0)) for b in bits[1])
    labels = torch.tensor([world.cell_labels(s) for s in scenes]).view(-1, 3, 3)
    assert torch.equal(bits[2].float() * 2 - 1, TI.cell_latent_table()[labels])
    cell_inputs = TI.teacher_inputs([b[:1] for b in bits])[0, 4:]  # the 3x3 scale's nine inputs
    assert len({tuple(v.tolist()) for v in cell_inputs}) == 9


def test_editor_training_and_benchmark_scripts_run(tmp_path):
    """Both editors train from the embedded sets (a few steps), save into the classes the official files load
    into, and the benchmark reads them back; the instruction encoder keeps the caption encoder's words."""
    import shutil

    import train_embedded_editors as TE
    from ar_edit_pack.core.files.loaders import load_gpt, load_word_encoder
    from ar_edit_pack.core.llamagen.editar import EditARGPT
    from ar_edit_pack.core.shapes import instructions
    from ar_edit_pack.core.shapes.embedded import EDITOR_FILES, embedded_path

    logs = []
    editar, text_net = TE.train_editar(2, 4, 24, 0, logs.append)
    assert "editar step 2/2" in logs[-1] and math.isfinite(float(logs[-1].split("loss ")[1].split()[0]))
    save_model(editar, tmp_path / EDITOR_FILES["editar"][1], TE.META)
    save_model(text_net, tmp_path / EDITOR_FILES["text_encoders"][1], TE.INSTRUCTION_META)
    text = load_word_encoder(tmp_path / EDITOR_FILES["text_encoders"][1])
    assert text.reads == "instructions" and set(world.vocabulary()) < set(text.model.cfg.vocab)
    assert list(text.model.cfg.vocab) == instructions.vocabulary()
    varedit = TE.train_varedit(2, 4, 24, 10, logs.append, str(tmp_path / EDITOR_FILES["text_encoders"][1]))
    assert "varedit step 2/2" in logs[-1]
    varedit.resolutions = (world.SIZE,)
    save_model(varedit, tmp_path / EDITOR_FILES["varedit"][1], TE.META)
    loaded = load_gpt(tmp_path / EDITOR_FILES["editar"][1])
    assert isinstance(loaded, EditARGPT) and loaded.cfg.cls_token_num == TE.TEXT_LENGTH
    loaded = load_gpt(tmp_path / EDITOR_FILES["varedit"][1])
    assert loaded.flavour == "varedit" and loaded.resolutions == (world.SIZE,)
    for name in ("shapes_vq.safetensors", "shapes_infinity_vae.safetensors"):
        shutil.copy(os.path.join(os.path.dirname(embedded_path("vq")), name), tmp_path / name)
    report = shapes_benchmark.run_editors(str(tmp_path), cases=5, control=3, family_cases=2, showcase_seeds=2)
    assert set(report["edits"]) == {"editar", "varedit"} and report["edits"]["varedit"]["all"]["n"] == 5
    assert report["edits"]["editar"]["families"]["twins"]["n"] == 2 and report["showcase"]["n"] == 6
    assert set(report["control"]) == {"canny", "segmentation"} and report["control"]["canny"]["n"] == 3


def test_editar_training_resumes_to_the_unbroken_result(tmp_path, monkeypatch):
    """A long run writes resumable checkpoints; started again with the same arguments it continues from the last
    one and ends where an unbroken run ends."""
    import train_embedded_editors as TE

    monkeypatch.setattr(TE, "CHECKPOINT_EVERY", 1)
    progress = str(tmp_path / "editar_progress.pt")
    logs = []
    unbroken, _ = TE.train_editar(3, 4, 24, 0, logs.append, progress_path=progress)
    assert torch.load(progress, weights_only=True)["step"] == 2  # the last checkpoint before the end
    resumed, _ = TE.train_editar(3, 4, 24, 0, logs.append, progress_path=progress)
    assert any("resumed at step 2" in line for line in logs)
    for k, v in unbroken.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


def test_editor_training_data_pairs_each_instruction_with_its_edit():
    import train_embedded_editors as TE
    from ar_edit_pack.core.shapes import instructions

    cond, target, prompts = TE.examples(60, 3, 0.3)
    hard = TE.examples(40, 4, 0.0, family_share=1.0)  # every edit from a hard family
    cond, target, prompts = np.concatenate([cond, hard[0]]), np.concatenate([target, hard[1]]), prompts + hard[2]
    assert cond.shape == target.shape == (100, 48, 48, 3)
    tasks = [instructions.check_prompt(p) for p in prompts]
    assert {"edit", "canny", "segmentation"} <= set(tasks)
    for c, t, p, task in zip(cond, target, prompts, tasks):
        if task == "edit":  # the instruction turns the pictured source into the pictured target
            assert instructions.apply_instruction(world.parse_image(c), p) == world.parse_image(t).captioned()
        else:  # a control map of the target scene, and its caption
            scene = world.parse_image(t)
            assert (instructions.control_map(task, scene) == c).all()
            assert world.parse_caption(p.split(": ", 1)[1]) == scene.captioned()


def test_janus_training_feeds_what_generation_reads_resumes_and_saves_a_folder_the_loader_reads(tmp_path, monkeypatch):
    """The teacher-forced logits of rows of different prompt lengths are each row's own forward pass (so training
    sees what generation runs); a broken run resumes to the unbroken result; the saved folder loads strictly,
    its tokenizer knows every word of the world, and it draws."""
    import train_embedded_janus as TJ
    from ar_edit_pack.core.janus.files import load_janus
    from ar_edit_pack.core.pipelines import janus

    torch.manual_seed(0)
    vq = load_vq(embedded_path("vq"), precision="fp32")
    text, lengths, codes = TJ.examples(vq, 6, 3, drop=0.5)
    assert len(set(lengths.tolist())) > 1 and codes.shape == (6, 9)
    model = TJ.JanusGen(TJ.janus_config(vq)).eval()
    with torch.no_grad():
        batched = TJ.code_logits(model, text, lengths, codes)
        for r in range(6):
            alone = model(text[r:r + 1, :int(lengths[r])], codes[r:r + 1])
            assert torch.allclose(batched[r], alone[0], atol=1e-5), r
    monkeypatch.setattr(TJ, "CHECKPOINT_EVERY", 1)
    progress, logs = str(tmp_path / "janus_progress.pt"), []
    unbroken = TJ.train(vq, 3, 4, 16, 0, logs.append, progress_path=progress)
    assert torch.load(progress, weights_only=True)["step"] == 2
    resumed = TJ.train(vq, 3, 4, 16, 0, logs.append, progress_path=progress)
    assert any("resumed at step 2" in line for line in logs)
    for k, v in unbroken.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    TJ.save(unbroken, vq, str(tmp_path / "shapes-janus"))
    loaded, loaded_vq = load_janus(str(tmp_path / "shapes-janus"))
    for k, v in unbroken.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert torch.equal(loaded_vq.quantize.embedding.weight, vq.quantize.embedding.weight)
    words = " ".join(world.vocabulary())
    assert loaded.tokenizer.prompt_ids(words) == TJ.tokenizer().prompt_ids(words)
    out = janus.generate(loaded, ["a red circle at the top left"], [0])
    assert out.tokens.shape == (1, 3, 3)


@pytest.mark.parametrize("runner", ["run_lumina", "run_janus"])
def test_the_other_atm_backbones_benchmark_runs_on_the_shipped_sets(runner):
    from ar_edit_pack.core.shapes.embedded import EMBEDDED_DIR

    report = getattr(shapes_benchmark, runner)(EMBEDDED_DIR, cases=5, t2i=2, case_seed=1, family_cases=2)
    assert set(report["edits"]) == {"naive", "atm"} and report["edits"]["atm"]["all"]["n"] == 5
    assert report["edits"]["atm"]["families"]["twins"]["n"] == 2 and report["t2i"]["n"] == 2
    from ar_edit_pack.core.shapes.embedded import embedded_defaults

    family = runner.split("_")[1]  # the set is run at its own tuned settings, and says which
    assert report["atm_settings"] == embedded_defaults(family, "atm").to_dict()
    assert report["sampling"] == embedded_defaults(family, "sampling").to_dict()
