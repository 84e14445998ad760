"""The project's catalogue of bad inputs, tried the way a new user (or a careless graph) would: through the node
classes, with the embedded models and files made on the spot. Each case must fail with a clear error (its type
and a message that names the problem) before any long work, and leave every model and cached source as it was;
after the whole catalogue a normal edit still gives the same result."""
from __future__ import annotations

import hashlib
import math

import pytest
import torch

from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.files.checkpoints import CheckpointError
from ar_edit_pack.core.llamagen.editar import task_prompt
from ar_edit_pack.core.sampling import seed_tensor
from ar_edit_pack.core.sweeps import parse_values
from ar_edit_pack.nodes import (AREdit, AREditSourceCache, AREditSweep, ATMEdit, ATMSweep, BitsToImage, BSQVAELoader,
                                EditAR, Generate, ImageToBits, ImageToTokens, InfinityGenerate, InfinityLoader,
                                InfinityTextEncode, LlamaGenLoader, SourceCacheNode, TextEncode, TextEncoderLoader,
                                TokensToImage, VAREdit, VAREditLoader, VQLoader)

from tiny_models import TINY_BSQ_VAE, TINY_HEADS, save_official_pt, tiny_gpt, tiny_vq

E = "(embedded) "


class Ctx:
    """The embedded models loaded by the loader nodes, one generated source per backbone, and their caches."""

    def __init__(self, tmp):
        torch.set_num_threads(2)
        self.tmp = tmp
        self.gpt = LlamaGenLoader().load(E + "shapes-t2i", "fp32", "auto")[0]
        self.vq = VQLoader().load(E + "shapes-vq", "fp32")[0]
        self.text = TextEncoderLoader().load(E + "shapes-words", "fp32", "cpu")[0]
        self.inf = InfinityLoader().load(E + "shapes-infinity", "fp32")[0]
        self.vae = BSQVAELoader().load(E + "shapes-infinity-vae", "fp32")[0]
        src_prompt = "a red circle at the top left and a small blue square in the center on a white background"
        self.edit_prompt = "a red circle at the top left and a small yellow star in the center on a white background"
        self.cond = self.encode(src_prompt)
        self.edit_cond = self.encode(self.edit_prompt)
        self.tokens = Generate().generate(self.gpt, self.cond, 3, 1, 1.5, 1.0, 0, 1.0)[0]
        self.source = SourceCacheNode().build(self.tokens, self.vq)[0]
        self.icond = self.encode(src_prompt, infinity=True)
        self.iedit = self.encode(self.edit_prompt, infinity=True)
        self.bits = InfinityGenerate().generate(self.inf, self.icond, 3, 1, "48", "1:1", 3.0, 1.0, 0.97, "", "")[0]
        self.isource = AREditSourceCache().build(self.inf, self.bits, 3.0, 1.0, 0.97, "", "")[0]
        self.image = TokensToImage().decode(self.vq, self.tokens)[0]  # [1, 48, 48, 3]
        self.fingerprint = self.state()
        self.atm_result = self.atm_edit()[0].tokens.clone()
        self.aredit_result = self.aredit()[0].bits[-1].clone()

    def encode(self, prompt, infinity=False):
        return (InfinityTextEncode() if infinity else TextEncode()).encode(self.text, prompt, False)[0]

    def atm_edit(self, **kw):
        args = dict(model=self.gpt, source=self.source, conditioning=self.edit_cond, method="atm", seed=0,
                    use_source_seed=True, cfg_scale=1.5, temperature=1.0, top_k=0, top_p=1.0, K=150, alpha=0.6,
                    tau=1.0, fallback="greedy", candidates="sampled")
        return ATMEdit().edit(**{**args, **kw})

    def atm_sweep(self, **kw):
        args = dict(model=self.gpt, tokenizer=self.vq, source=self.source, conditioning=self.edit_cond, method="atm",
                    tau_values="0.5, 1.0", K_values="150", alpha_values="0.6", seed_values="0", cfg_values="1.5",
                    use_source_seed=True, fallback="greedy", temperature=1.0, top_k=0, top_p=1.0, columns=0,
                    candidates="sampled")
        return ATMSweep().sweep(**{**args, **kw})

    def aredit(self, **kw):
        args = dict(model=self.inf, source=self.isource, conditioning=self.iedit, gamma=0, threshold=0.8, seed=0,
                    use_source_seed=True)
        return AREdit().edit(**{**args, **kw})

    def aredit_sweep(self, **kw):
        args = dict(model=self.inf, tokenizer=self.vae, source=self.isource, conditioning=self.iedit,
                    gamma_values="0", threshold_values="0.8", seed_values="0", use_source_seed=True, columns=0)
        return AREditSweep().sweep(**{**args, **kw})

    def generate(self, **kw):
        args = dict(model=self.gpt, conditioning=self.cond, seed=0, batch_size=1, cfg_scale=1.5, temperature=1.0,
                    top_k=0, top_p=1.0)
        return Generate().generate(**{**args, **kw})

    def inf_generate(self, **kw):
        args = dict(model=self.inf, conditioning=self.icond, seed=0, batch_size=1, resolution="48", aspect_ratio="1:1",
                    cfg=3.0, tau=1.0, top_p=0.97, cfg_per_scale="", tau_per_scale="")
        return InfinityGenerate().generate(**{**args, **kw})

    def state(self) -> str:
        h = hashlib.sha256()
        for handle in (self.gpt, self.vq, self.inf, self.vae, self.text):
            for k, v in handle.module.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        for t in (self.source.anchors, self.source.codebook, self.tokens.tokens, *self.isource.p1,
                  *self.isource.tokens.bits, *self.bits.bits):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Ctx(tmp_path_factory.mktemp("bad_inputs"))


def mask(value=0.0, shape=(1, 48, 48)):
    return torch.full(shape, value)


def half_mask():
    m = torch.zeros(1, 48, 48)
    m[:, 16:32, 16:32] = 1
    return m


# ---- files made on the spot -----------------------------------------------------------------------------

def _file(ctx, name, writer):
    path = ctx.tmp / name
    writer(path)
    return str(path)


def not_a_checkpoint(ctx):
    loaders.load_gpt(_file(ctx, "notes.pt", lambda p: p.write_text("these are not weights")))


def vq_file_as_model(ctx):
    loaders.load_gpt(save_official_pt(tiny_vq(), str(ctx.tmp / "vq_as_model.pt")))


def gpt_file_as_tokenizer(ctx):
    loaders.load_vq(save_official_pt(tiny_gpt(), str(ctx.tmp / "gpt_as_vq.pt")))


def nan_weights(ctx):
    model = tiny_gpt()
    with torch.no_grad():
        model.tok_embeddings.weight[0, 0] = float("nan")
    loaders.load_gpt(save_official_pt(model, str(ctx.tmp / "t2i_nan_64.pt")), n_head=TINY_HEADS)


def inf_weights_safetensors(ctx):
    model = tiny_gpt()
    with torch.no_grad():
        model.output.weight[1, 1] = float("inf")
    loaders.save_model(model, ctx.tmp / "inf.safetensors")
    loaders.load_gpt(ctx.tmp / "inf.safetensors")


def nan_vq_weights(ctx):
    vq = tiny_vq()
    with torch.no_grad():
        vq.quantize.embedding.weight[0, 0] = float("nan")
    loaders.load_vq(save_official_pt(vq, str(ctx.tmp / "vq_nan.pt")))


def missing_key(ctx):
    state = tiny_gpt().state_dict()
    del state["output.weight"]
    torch.save({"model": state}, ctx.tmp / "t2i_missing_64.pt")
    loaders.load_gpt(ctx.tmp / "t2i_missing_64.pt", n_head=TINY_HEADS)


def custom_size_without_heads(ctx):
    loaders.load_gpt(save_official_pt(tiny_gpt(dim=128, n_head=4), str(ctx.tmp / "t2i_custom_64.pt")))


def image_size_the_file_was_not_made_for(ctx):
    LlamaGenLoader().load(E + "shapes-t2i", "fp32", "512")


def word_encoder_from_a_model_file(ctx):
    loaders.save_model(tiny_gpt(), ctx.tmp / "gpt.safetensors")
    loaders.load_word_encoder(ctx.tmp / "gpt.safetensors")


def vae_alias_that_differs(ctx):
    from ar_edit_pack.core.infinity.vae import BSQVAE

    state = BSQVAE(TINY_BSQ_VAE).state_dict()
    state["quantizer.lfq.mask"] = torch.arange(8)
    state["quantize.lfq.mask"] = torch.arange(8) + 1
    torch.save({"vae": state}, ctx.tmp / "vae_alias.pth")
    loaders.load_vq(ctx.tmp / "vae_alias.pth")


def missing_official_file_offline(ctx):
    from ar_edit_pack.core.files.model_files import ensure_local

    ensure_local("t2i_XL_stage2_512.pt", str(ctx.tmp / "empty_models"), allow_download=False)


# ---- the catalogue: (id, action, exception type, what the message must say) ------------------------------

CASES = [
    # loaders and files
    ("file that holds no weights", not_a_checkpoint, Exception, r"notes\.pt"),
    ("VQ file in the model loader", vq_file_as_model, CheckpointError, r"VQ image tokenizer"),
    ("model file in the tokenizer loader", gpt_file_as_tokenizer, CheckpointError, r"LlamaGen GPT|AR transformer"),
    ("NaN weight in a .pt", nan_weights, CheckpointError, r"NaN or infinite weights.*tok_embeddings\.weight"),
    ("inf weight in a .safetensors", inf_weights_safetensors, CheckpointError, r"NaN or infinite.*output\.weight"),
    ("NaN in a VQ codebook", nan_vq_weights, CheckpointError, r"NaN or infinite.*quantize\.embedding\.weight"),
    ("checkpoint missing a key", missing_key, CheckpointError, r"missing keys \(1\): output\.weight"),
    ("custom-size file, no head count", custom_size_without_heads, CheckpointError, r"matches no LlamaGen preset.*n_head"),
    ("image_size the file was not made for", image_size_the_file_was_not_made_for, CheckpointError,
     r"made for 48 px.*image_size 512"),
    ("model file as text encoder", word_encoder_from_a_model_file, CheckpointError, r"text encoder"),
    ("VAE quantize alias that differs", vae_alias_that_differs, CheckpointError, r"'quantize\.lfq\.mask' differs"),
    ("official file missing, offline", missing_official_file_offline, FileNotFoundError,
     r"(?s)t2i_XL_stage2_512\.pt.*peizesun/llamagen_t2i"),
    # images
    ("empty image batch", lambda c: ImageToTokens().encode(c.vq, torch.zeros(0, 48, 48, 3), 48, "center_crop"),
     ValueError, r"image is empty"),
    ("NaN pixels (VQ)", lambda c: ImageToTokens().encode(c.vq, torch.full((1, 48, 48, 3), float("nan")), 48,
                                                          "center_crop"), ValueError, r"NaN or infinite pixels"),
    ("inf pixels (BSQ VAE)", lambda c: ImageToBits().encode(c.vae, torch.full((1, 48, 48, 3), float("inf")), 48,
                                                              "center_crop"), ValueError, r"NaN or infinite pixels"),
    ("image without a batch axis", lambda c: ImageToTokens().encode(c.vq, torch.zeros(48, 48, 3), 48, "center_crop"),
     ValueError, r"must be an IMAGE \[batch, height, width, 3\]"),
    ("two-channel image", lambda c: ImageToTokens().encode(c.vq, torch.zeros(1, 48, 48, 2), 48, "center_crop"),
     ValueError, r"must be an IMAGE"),
    ("unknown resize mode", lambda c: ImageToTokens().encode(c.vq, c.image, 48, "squash"), ValueError,
     r"resize must be one of"),
    ("resize none with a size off the grid", lambda c: ImageToTokens().encode(c.vq, torch.zeros(1, 40, 40, 3), 0,
                                                                               "none"), ValueError, r"16"),
    ("real image at a tier the VAE does not make", lambda c: ImageToBits().encode(c.vae, c.image, 512, "center_crop"),
     ValueError, r"resolution 512 is not one this model makes.*\[48\]"),
    ("resolution that is not a number", lambda c: ImageToBits().encode(c.vae, c.image, "abc", "center_crop"),
     ValueError, r"resolution must be a number"),
    ("image of another size than the model", lambda c: c.atm_edit(
        source=SourceCacheNode().build(ImageToTokens().encode(c.vq, c.image, 96, "center_crop")[0], c.vq)[0]),
     ValueError, r"encode the image at 48 px"),
    ("no image into EditAR", lambda c: EditAR().edit(c.gpt, c.vq, c.text, torch.zeros(0, 48, 48, 3), "make it red",
                                                     "edit", 0, 3.0, 1.0, 1.0, 0, 1.0), ValueError, r"image is empty"),
    # masks
    ("NaN mask (ATM)", lambda c: c.atm_edit(mask=mask(float("nan"))), ValueError, r"mask has NaN"),
    ("empty mask (ATM)", lambda c: c.atm_edit(mask=mask(0.0)), ValueError, r"mask is empty.*paint the region"),
    ("empty mask (ATM sweep)", lambda c: c.atm_sweep(mask=mask(0.0)), ValueError, r"mask is empty"),
    ("empty mask (AREdit)", lambda c: c.aredit(mask=mask(0.0)), ValueError, r"mask is empty.*disconnect the mask"),
    ("inf mask (AREdit)", lambda c: c.aredit(mask=mask(float("inf"))), ValueError, r"mask has NaN or infinite"),
    ("mask with four axes", lambda c: c.atm_edit(mask=torch.ones(1, 1, 48, 48)), ValueError, r"must be a MASK"),
    ("empty mask (VAREdit)", lambda c: VAREdit().edit(c.inf, c.vae, c.text, c.image, "make it red", "512", 0, 4.0,
                                                      0.5, 0.97, mask(0.0)), ValueError, r"mask is empty"),
    # prompts
    ("empty prompt", lambda c: c.encode(""), ValueError, r"prompt 1 is empty"),
    ("whitespace prompt", lambda c: c.encode("   \n "), ValueError, r"prompt 1 is empty"),
    ("emoji-only prompt", lambda c: c.encode("\U0001F431\U0001F3A8"), ValueError, r"has no words"),
    ("emoji-only prompt (Infinity)", lambda c: c.encode("\U0001F431!!", infinity=True), ValueError, r"has no words"),
    ("word the embedded encoder does not know", lambda c: c.encode("a red dragon on a white background"), ValueError,
     r"does not know 'dragon'"),
    ("known words, no sentence", lambda c: c.encode("star star star red"), ValueError,
     r"not a ShapesWorld caption.*a red circle at the top left"),
    ("two objects in one place", lambda c: c.encode("a red circle in the center and a blue star in the center on a "
                                                     "white background"), ValueError, r"two objects in the center"),
    ("object without a position", lambda c: c.encode("a red circle on a white background"), ValueError,
     r"cannot read 'a red circle' as an object"),
    ("only empty lines, one prompt per line", lambda c: TextEncode().encode(c.text, "\n \n", True), ValueError,
     r"prompt 1 is empty"),
    ("prompt longer than the encoder reads", lambda c: c.encode(" ".join(["a"] * 40)), ValueError, r"at most 32"),
    ("empty EditAR instruction", lambda c: task_prompt("edit", "  "), ValueError, r"instruction is empty"),
    ("emoji EditAR instruction", lambda c: task_prompt("edit", "\U0001F525"), ValueError, r"has no words"),
    ("empty VAREdit instruction", lambda c: VAREdit().edit(c.inf, c.vae, c.text, c.image, "", "512", 0, 4.0, 0.5,
                                                           0.97), ValueError, r"prompt 1 is empty"),
    # parameters
    ("seed beyond 64 bits", lambda c: seed_tensor([2 ** 64]), ValueError, r"seed 18446744073709551616 is outside"),
    ("negative seed", lambda c: c.generate(seed=-1), ValueError, r"seed -1 is outside"),
    ("negative cfg", lambda c: c.generate(cfg_scale=-0.5), ValueError, r"cfg_scale must be a number >= 0"),
    ("infinite cfg", lambda c: c.generate(cfg_scale=float("inf")), ValueError, r"cfg_scale must be a number"),
    ("negative temperature", lambda c: c.generate(temperature=-0.5), ValueError, r"temperature must be >= 0"),
    ("top_p zero", lambda c: c.generate(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    ("negative top_k", lambda c: c.generate(top_k=-3), ValueError, r"top_k must be >= 0"),
    ("batch_size zero", lambda c: c.generate(batch_size=0), ValueError, r"batch_size must be 1\.\.64"),
    ("K zero", lambda c: c.atm_edit(K=0), ValueError, r"K \(candidates per step\) must be >= 1"),
    ("alpha above one", lambda c: c.atm_edit(alpha=1.5), ValueError, r"alpha .* must be in \[0, 1\]"),
    ("NaN tau", lambda c: c.atm_edit(tau=float("nan")), ValueError, r"tau must be a number"),
    ("unknown fallback", lambda c: c.atm_edit(fallback="closest"), ValueError, r"fallback must be one of"),
    ("unknown candidates mode", lambda c: c.atm_edit(candidates="all"), ValueError, r"candidates must be one of"),
    ("unknown edit method", lambda c: c.atm_edit(method="magic"), ValueError, r"method must be one of"),
    ("gamma beyond the scales", lambda c: c.aredit(gamma=9), ValueError, r"gamma \(scales reused\) must be in 0\.\.3"),
    ("NaN threshold", lambda c: c.aredit(threshold=float("nan")), ValueError, r"threshold must be a number"),
    ("Infinity resolution the model does not make", lambda c: c.inf_generate(resolution="1024"), ValueError,
     r"resolution 1024 is not one this model makes: choose one of \[48\]"),
    ("Infinity resolution not a number", lambda c: c.inf_generate(resolution="abc"), ValueError,
     r"resolution must be a number"),
    ("aspect ratio not a ratio", lambda c: c.inf_generate(aspect_ratio="wide"), ValueError,
     r"aspect_ratio must be width:height"),
    ("non-square at the 48 px tier", lambda c: c.inf_generate(aspect_ratio="2:3"), ValueError, r"square only"),
    ("per-scale cfg list unreadable", lambda c: c.inf_generate(cfg_per_scale="a, b"), ValueError,
     r"cfg_per_scale: cannot read 'a'"),
    ("per-scale tau zero", lambda c: c.inf_generate(tau_per_scale="0, 1, 1"), ValueError, r"tau .* must be a number > 0"),
    ("Infinity batch_size too large", lambda c: c.inf_generate(batch_size=65), ValueError, r"batch_size must be 1\.\.64"),
    ("VAREdit resolution not offered", lambda c: VAREdit().edit(
        VAREditLoader().load("(embedded) shapes-varedit", "auto")[0], c.vae,
        TextEncoderLoader().load("(embedded) shapes-instructions", "auto", "default")[0], c.image,
        "remove the red circle", "512", 0, 4.0, 0.5, 0.97), ValueError,
     r"resolution 512 is not one this model makes: choose one of \[48\]"),
    ("three edit prompts for one source", lambda c: c.atm_edit(conditioning=TextEncode().encode(
        c.text, c.edit_prompt + "\n" + c.edit_prompt + "\n" + c.edit_prompt, True)[0]), ValueError,
     r"edit prompts \(3\) must be 1 or one per source image \(1\)"),
    ("two negative prompts for one prompt", lambda c: c.inf_generate(negative=InfinityTextEncode().encode(
        c.text, c.edit_prompt + "\n" + c.edit_prompt, True)[0]), ValueError, r"2 negative prompts for 1 prompts"),
    # sweeps
    ("sweep range of a hundred million", lambda c: c.atm_sweep(tau_values="0:100000000:1"), ValueError,
     r"100000001 combinations.*at most 256"),
    ("sweep lists whose product is too large", lambda c: c.atm_sweep(tau_values="0:1:0.05", K_values="1:20:1"),
     ValueError, r"420 combinations \(21 tau_values x 20 K_values"),
    ("sweep value that is not a number", lambda c: c.atm_sweep(tau_values="0.5, abc"), ValueError,
     r"tau_values: cannot read 'abc'"),
    ("sweep range running backwards", lambda c: c.atm_sweep(tau_values="2:1:0.5"), ValueError,
     r"tau_values: '2:1:0.5' needs start <= stop"),
    ("sweep seed that is not whole", lambda c: c.atm_sweep(use_source_seed=False, seed_values="1.5"), ValueError,
     r"seed_values: '1.5' is not a whole number"),
    ("sweep NaN value", lambda c: c.atm_sweep(tau_values="nan"), ValueError, r"'nan' is not a finite number"),
    ("empty sweep list", lambda c: c.atm_sweep(K_values=" , "), ValueError, r"K_values: give at least one value"),
    ("AREdit sweep too large", lambda c: c.aredit_sweep(threshold_values="-1:1:0.001"), ValueError,
     r"2001 combinations"),
    ("AREdit sweep gamma unreadable", lambda c: c.aredit_sweep(gamma_values="one"), ValueError,
     r"gamma_values: cannot read 'one'"),
    ("value list beyond the sweep cap", lambda c: parse_values("0:1000:1", float, "tau_values"), ValueError,
     r"1001 values; a sweep runs at most 256"),
    # crossed sockets
    ("Infinity VAE into Edit Source Cache", lambda c: SourceCacheNode().build(c.tokens, c.vae), ValueError,
     r"needs a LlamaGen VQ tokenizer.*is Infinity's BSQ VAE"),
    ("Infinity VAE as the ATM Sweep decoder", lambda c: c.atm_sweep(tokenizer=c.vae), ValueError,
     r"AR Anchor Token Matching Sweep needs a LlamaGen VQ tokenizer"),
    ("AREdit source into ATM Edit", lambda c: c.atm_edit(source=c.isource), ValueError,
     r"needs an ATM source.*got an AREdit source"),
    ("ATM source into AREdit", lambda c: c.aredit(source=c.source), ValueError,
     r"needs an AREdit source.*got an ATM source"),
    ("Infinity model into ATM Edit", lambda c: c.atm_edit(model=c.inf), ValueError,
     r"needs a LlamaGen model.*is an Infinity text-to-image model.*AR Infinity Generate"),
    ("Infinity model into AR Generate", lambda c: c.generate(model=c.inf), ValueError,
     r"AR Generate needs a LlamaGen model"),
    ("LlamaGen model into Infinity Generate", lambda c: c.inf_generate(model=c.gpt), ValueError,
     r"AR Infinity Generate needs an Infinity text-to-image model.*is a LlamaGen model"),
    ("LlamaGen tokens into AREdit Source Cache", lambda c: AREditSourceCache().build(c.inf, c.tokens, 3.0, 1.0, 0.97,
                                                                                      "", ""), ValueError,
     r"needs Infinity tokens.*these are LlamaGen tokens"),
    ("Infinity tokens into Edit Source Cache", lambda c: SourceCacheNode().build(c.bits, c.vq), ValueError,
     r"needs LlamaGen tokens.*Infinity's multi-scale bits"),
    ("VQ as the AREdit Sweep decoder", lambda c: c.aredit_sweep(tokenizer=c.vq), ValueError,
     r"needs Infinity's BSQ VAE.*is a LlamaGen VQ"),
    ("Infinity tokens into the VQ decoder", lambda c: TokensToImage().decode(c.vq, c.bits), ValueError,
     r"AR Tokens to Image needs LlamaGen tokens.*Infinity's multi-scale bits"),
    ("LlamaGen tokens into the BSQ decoder", lambda c: BitsToImage().decode(c.vae, c.tokens), ValueError,
     r"AR Bits to Image needs Infinity tokens.*these are LlamaGen tokens"),
    ("Infinity file into the LlamaGen loader", lambda c: LlamaGenLoader().load(E + "shapes-infinity", "fp32"),
     ValueError, r"is an Infinity text-to-image model, not a LlamaGen model: load it with AR Infinity Loader"),
    ("VQ file into the BSQ VAE loader", lambda c: BSQVAELoader().load(E + "shapes-vq", "fp32"), ValueError,
     r"is a LlamaGen VQ tokenizer, not Infinity's BSQ VAE: load it with AR VQ Tokenizer Loader"),
    ("LlamaGen model into VAREdit", lambda c: VAREdit().edit(c.gpt, c.vae, c.text, c.image, "make it red", "512", 0,
                                                             4.0, 0.5, 0.97), ValueError,
     r"needs a VAREdit editor.*is a LlamaGen model"),
    ("text-to-image Infinity into VAREdit", lambda c: VAREdit().edit(c.inf, c.vae, c.text, c.image, "make it red",
                                                                     "512", 0, 4.0, 0.5, 0.97), ValueError,
     r"needs a VAREdit editor.*is an Infinity text-to-image model"),
    ("LlamaGen model into EditAR", lambda c: EditAR().edit(c.gpt, c.vq, c.text, c.image, "make it red", "edit", 0,
                                                           3.0, 1.0, 1.0, 0, 1.0), ValueError,
     r"needs an EditAR model.*is a LlamaGen model"),
    ("LlamaGen-encoded prompt into Infinity", lambda c: c.inf_generate(conditioning=c.cond), ValueError,
     r"encoded for LlamaGen.*AR Infinity Text Encode"),
    ("Infinity-encoded prompt into ATM", lambda c: c.atm_edit(conditioning=c.iedit), ValueError,
     r"encoded for infinity"),
    ("codes beyond the tokenizer", lambda c: TokensToImage().decode(c.vq, type(c.tokens)(
        torch.full((1, 3, 3), 999), "encoded")), ValueError, r"codes up to 999.*has 256"),
    ("real-image AREdit source without its prompt", lambda c: AREditSourceCache().build(
        c.inf, ImageToBits().encode(c.vae, c.image, 48, "center_crop")[0], 3.0, 1.0, 0.97, "", ""), ValueError,
     r"needs its description"),
    ("Infinity tokens at a tier the model does not make", lambda c: AREditSourceCache().build(
        c.inf, _bits_at_256(c), 3.0, 1.0, 0.97, "", "", c.icond), ValueError, r"encode the image at one of \[48\]"),
]


def _bits_at_256(c):
    from ar_edit_pack.core.infinity.codec import image_to_bits

    return image_to_bits(c.vae.module, torch.rand(1, 256, 256, 3), 256)


def test_the_catalogue_is_large():
    assert len(CASES) >= 60
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name,action,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(ctx, name, action, error, message):
    with pytest.raises(error, match=message):
        action(ctx)
    assert ctx.state() == ctx.fingerprint, "a bad input changed a model or a cached source"


# ---- accepted by design ------------------------------------------------------------------------------------

def test_the_whole_seed_widget_range_works_and_stays_distinct(ctx):
    top = 2 ** 64 - 1
    a = ctx.generate(seed=top)[0].tokens
    assert torch.equal(a, ctx.generate(seed=top)[0].tokens)  # the same seed, the same image
    assert torch.equal(seed_tensor([top]), torch.tensor([-1]))  # two's complement: every 64-bit seed its own
    assert len(set(seed_tensor([0, 1, 2 ** 63 - 1, 2 ** 63, top]).tolist())) == 5
    pair = ctx.generate(seed=top, batch_size=2)[0]  # seed, seed + 1 wraps to 0
    assert torch.equal(pair.tokens[1], ctx.generate(seed=0)[0].tokens[0])
    bits = ctx.inf_generate(seed=2 ** 63 + 5)[0]
    assert torch.equal(bits.bits[-1], ctx.inf_generate(seed=2 ** 63 + 5)[0].bits[-1])
    sweep = ctx.atm_sweep(use_source_seed=False, seed_values=str(top))
    assert sweep[2].seeds.tolist() == [-1, -1]  # one row per tau value, each with the top seed


def test_unicode_words_are_prompts(ctx):
    """Letters of any script count as words (the T5 tokenizer reads them); only word-less prompts are refused."""
    from ar_edit_pack.core.text.encoders import validate_prompts

    assert validate_prompts(["un chat roux \u00e9l\u00e9gant", "\u732b"]) == ["un chat roux \u00e9l\u00e9gant", "\u732b"]


def test_after_the_catalogue_models_sources_and_edits_are_unchanged(ctx):
    assert ctx.state() == ctx.fingerprint
    assert torch.equal(ctx.atm_edit()[0].tokens, ctx.atm_result)
    assert torch.equal(ctx.aredit()[0].bits[-1], ctx.aredit_result)
    assert math.isfinite(float(ctx.atm_edit()[2]))


def test_command_line_bad_input_is_a_clear_error(capsys):
    """`python -m ar_edit_pack demo --prompt ""` is an error (it used to fall back to the default prompt silently), and
    --help explains each option with its default."""
    from ar_edit_pack.core.__main__ import main

    assert main(["demo", "--prompt", ""]) == 2
    assert "prompt 1 is empty" in capsys.readouterr().err
    assert main(["demo", "--method", "aredit", "--edit", "star star star red"]) == 2
    assert "not a ShapesWorld caption" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # help text is wrapped to the terminal
    assert "(default: the model's own)" in shown and "(default: demo_output)" in shown
    assert "--threshold" in shown and "probability drop" in shown
