"""Tooltips in plain words for the inputs and outputs that mean the same on many nodes: what a socket wants, and
what turning a widget up or down does to the picture (the formulas behind them are in the README). Applied when
the pack registers its nodes (`add_tooltips`): SHARED fills an input that has no tooltip of its own, PER_NODE
replaces a node's own, OUTPUTS gives a node's outputs theirs. Widget ids are untouched (saved workflows keep
loading); a test holds every input and output of every node to having one."""
from __future__ import annotations

# Inputs with the same name mean the same thing on every node.
SHARED = {
    "model": "the AR image model, from the loader of its family (AR LlamaGen / EditAR / Infinity / VAREdit / "
             "Lumina-mGPT Loader)",
    "tokenizer": "the image tokenizer that belongs to the model: AR VQ Tokenizer Loader for LlamaGen and EditAR, AR "
                 "BSQ VAE Loader for Infinity and VAREdit",
    "text_encoder": "the text encoder, from AR Text Encoder Loader (T5 for the real models; the embedded models "
                    "bring their own: shapes-words for captions, shapes-instructions for the editors)",
    "conditioning": "the prompt, from AR Text Encode (LlamaGen) or AR Infinity Text Encode",
    "tokens": "image tokens (from a generate, edit or Image to Tokens node)",
    "source": "the cached source image to edit, from the matching Source Cache node",
    "image": "the image to work on",
    "seed": "the random seed: the same seed and settings give the same picture; change it for a different variation",
    "batch_size": "how many pictures per prompt (seeds seed, seed+1, ...), made together in one batch",
    "prompt": "describe the picture you want; for the embedded models use their world's words, e.g. 'a red circle "
              "at the top left on a white background'",
    "instruction": "say what to change, e.g. 'replace the blue square with a yellow star' (for the canny / "
                   "segmentation / depth tasks: describe the picture to make)",
    "cfg_scale": "how strongly the picture follows the prompt: higher = closer to the words but less varied and "
                 "harsher; 1 = no extra push",
    "cfg": "how strongly the picture follows the prompt: higher = closer to the words but less varied; 1 = no extra push",
    "temperature": "randomness: lower = safer, more repetitive choices; 0 = always the most likely; higher = wilder",
    "top_k": "only the k most likely choices are allowed at each step (0 = no limit); lower = safer, less varied",
    "top_p": "only the most likely choices that together make up this share are allowed; lower = safer, less varied; "
             "1 = no limit",
    "tau": "randomness of each step: lower = safer, smoother pictures; higher = more varied and noisier",
    "use_source_seed": "on: a generated source's own seeds are reused, so unchanged parts come out the same (a loaded "
                       "photo has none; then seed is used)",
    "mask": "optional: paint the area that may change (white); everything outside stays as it is. Leave it "
            "unconnected to let the method decide",
    "method": "atm: keep the source wherever the new prompt allows (ISLock); naive: redraw from the new prompt only "
              "(to compare)",
    "columns": "pictures per row in the grid (0 = chosen for you)",
    "seed_values": "seeds to try, separated by commas (e.g. 0, 1, 2); every combination is made in one batch",
    "cfg_values": "guidance scales to try, separated by commas; every combination is made in one batch",
    "tau_values": "closeness thresholds to try, separated by commas (see tau on the edit node)",
    "K_values": "candidate counts to try, separated by commas (see K on the edit node)",
    "alpha_values": "window shrink values to try, separated by commas (see alpha on the edit node)",
    "gamma_values": "numbers of reused coarse scales to try, separated by commas (see gamma on the edit node)",
    "threshold_values": "thresholds to try, separated by commas (see threshold on the edit node)",
    "text_cfg_values": "instruction guidance scales to try, separated by commas",
    "image_cfg_values": "image guidance scales to try, separated by commas",
    "fallback": "what to draw where no candidate is close to the source: greedy = the most likely choice; sample = "
                "a random one (more variety)",
    "precision": "number format of the weights: auto picks the fastest the device handles well; fp32 is exact but "
                 "uses the most memory",
    "resize": "how a picture of another shape is fitted: center_crop cuts the sides, stretch squeezes it, pad adds "
              "borders",
    "encoder_name": "the text encoder: flan-t5-xl for the real models (downloaded on first use); (embedded) "
                    "shapes-words or shapes-instructions for the embedded ShapesWorld models",
    "tokenizer_name": "the image tokenizer file (vq_ds16_t2i.pt for LlamaGen / EditAR, an infinity_vae file for "
                      "Infinity / VAREdit, or an (embedded) one); it must belong to the model",
    "model_name": "the model file, from models/autoregressive ((embedded) ones need no download)",
}

# Where one node means something of its own, or its own tooltip spoke in formulas.
_LUMINA_MODEL = {"model": "the Lumina-mGPT model, from AR Lumina-mGPT Loader"}
_JANUS_MODEL = {"model": "the Janus-Pro model, from AR Janus-Pro Loader"}
PER_NODE = {
    "ARE_LuminaGenerate": _LUMINA_MODEL, "ARE_LuminaEdit": _LUMINA_MODEL, "ARE_LuminaSweep": _LUMINA_MODEL,
    "ARE_JanusGenerate": _JANUS_MODEL, "ARE_JanusEdit": _JANUS_MODEL, "ARE_JanusSweep": _JANUS_MODEL,
    "ARE_ATMEdit": {
        "model": "the LlamaGen text-to-image model that made (or can make) the source",
        "conditioning": "the edited prompt: describe the picture as it should look after the edit",
    },
    "ARE_ATMSweep": {"model": "the LlamaGen text-to-image model", "conditioning": "the edited prompt"},
    "ARE_AREdit": {"model": "the Infinity model of the source cache",
                   "conditioning": "the edited prompt: describe the picture as it should look after the edit (AR "
                                   "Infinity Text Encode)"},
    "ARE_AREditSweep": {"model": "the Infinity model of the source cache", "conditioning": "the edited prompt"},
    "ARE_AREditSource": {"model": "the Infinity model", "tokens": "the source's bits: generated by AR Infinity "
                         "Generate, or a photo through AR Image to Bits"},
    "ARE_Generate": {"model": "a LlamaGen text-to-image or class-to-image model",
                     "conditioning": "a prompt (AR Text Encode) or a class (AR Class Label)"},
    "ARE_InfinityGenerate": {"model": "an Infinity text-to-image model",
                             "aspect_ratio": "the picture's shape, height : width (1:1 square, 16:9 wide, 9:16 tall)"},
    "ARE_TextEncode": {"text_encoder": "the text encoder, from AR Text Encoder Loader"},
    "ARE_InfinityTextEncode": {"text_encoder": "the text encoder, from AR Text Encoder Loader"},
    "ARE_ImageToBits": {"image": "the picture to turn into bits (e.g. from Load Image)"},
    "ARE_BitsToImage": {"tokens": "Infinity bits to turn back into a picture"},
    "ARE_ImageToTokens": {"image": "the picture to turn into tokens (e.g. from Load Image)"},
    "ARE_TokensToImage": {"tokens": "image tokens to turn back into a picture"},
    "ARE_SourceCache": {"tokens": "the source's tokens: from AR Generate, or a photo through AR Image to Tokens"},
    "ARE_EditAR": {"model": "an EditAR model (editar_release.pt or (embedded) shapes-editar)",
                   "text_encoder": "T5 (flan-t5-xl), or (embedded) shapes-instructions for the embedded editor"},
    "ARE_EditARSweep": {"model": "an EditAR model (editar_release.pt or (embedded) shapes-editar)",
                        "text_encoder": "T5 (flan-t5-xl), or (embedded) shapes-instructions for the embedded editor"},
    "ARE_VAREdit": {"text_encoder": "T5 (flan-t5-xl), or (embedded) shapes-instructions for the embedded editor",
                    "model": "a VAREdit model (2B-512.pth, 8B-512.pth, 8B-1024.pth, or (embedded) shapes-varedit)"},
    "ARE_VAREditSweep": {"text_encoder": "T5 (flan-t5-xl), or (embedded) shapes-instructions for the embedded editor",
                         "model": "a VAREdit model (2B-512.pth, 8B-512.pth, 8B-1024.pth, or (embedded) shapes-varedit)",
                         "tau": "randomness of each step: lower = safer, smoother; higher = more varied"},
}

OUTPUTS = {
    **{f"ARE_{name}Loader": ("the loaded model (moved to the GPU only while it runs)",)
       for name in ("LlamaGen", "EditAR", "Infinity", "VAREdit")},
    "ARE_VQLoader": ("the loaded VQ tokenizer",),
    "ARE_BSQVAELoader": ("the loaded BSQ VAE",),
    "ARE_TextEncoderLoader": ("the loaded text encoder",),
    "ARE_TextEncode": ("the encoded prompt(s), for a LlamaGen generate or edit node",),
    "ARE_InfinityTextEncode": ("the encoded prompt(s), for an Infinity generate, source cache or AREdit node",),
    "ARE_ImageToBits": ("the picture as multi-scale bits, for an AREdit source cache",),
    "ARE_BitsToImage": ("the picture",),
    "ARE_ClassLabel": ("the class, for AR Generate with a class-to-image model",),
    "ARE_Generate": ("the picture(s) as tokens: decode with AR Tokens to Image, or cache them as an edit source",),
    "ARE_ImageToTokens": ("the picture as tokens, for a source cache",),
    "ARE_TokensToImage": ("the picture",),
    "ARE_SourceCache": ("the source, ready to be edited by AR Anchor Token Matching Edit",),
    "ARE_ATMSweep": ("every picture of the sweep", "a labelled grid of them", "their tokens"),
    "ARE_EditAR": ("the edited picture as tokens (decode with AR Tokens to Image)", "the input picture as tokens"),
    "ARE_EditARSweep": ("every picture of the sweep", "a labelled grid of them", "their tokens"),
    "ARE_InfinityGenerate": ("the picture(s) as bits: decode with AR Bits to Image, or use as an AREdit source",),
    "ARE_AREditSource": ("the source, ready to be edited by AR AREdit Edit",),
    "ARE_AREditSweep": ("every picture of the sweep", "a labelled grid of them", "their tokens",
                        "where each picture was allowed to change (white = changed)"),
    "ARE_VAREditSweep": ("every picture of the sweep", "a labelled grid of them", "their tokens"),
}


def add_tooltips(mappings: dict) -> None:
    """Give every input of every node a tooltip (this file's text first) and every node output tooltips."""
    for node_id, cls in mappings.items():
        own = PER_NODE.get(node_id, {})
        original = cls.INPUT_TYPES.__func__ if hasattr(cls.INPUT_TYPES, "__func__") else None
        if original is None or getattr(cls, "_tooltips_added", False):
            continue

        def input_types(klass, _original=original, _own=own):
            types = _original(klass)
            for section in ("required", "optional"):
                for name, spec in types.get(section, {}).items():
                    text = _own.get(name) or SHARED.get(name)
                    if text is None:
                        continue
                    opts = dict(spec[1]) if len(spec) > 1 else {}
                    if name in _own or "tooltip" not in opts:
                        opts["tooltip"] = text
                    types[section][name] = (spec[0], opts, *spec[2:])
            return types

        cls.INPUT_TYPES = classmethod(input_types)
        cls._tooltips_added = True
        if node_id in OUTPUTS and not hasattr(cls, "OUTPUT_TOOLTIPS"):
            cls.OUTPUT_TOOLTIPS = OUTPUTS[node_id]
