"""ComfyUI node classes of the pack. Ids are stable (saved workflows refer to them): a node whose inputs change
meaning gets a new id, and the CHANGELOG says what a saved graph needs."""
from . import comfy_bridge
from .tooltips import add_tooltips
from .aredit import AREdit, AREditSourceCache, AREditSweep
from .atm import ATMEdit, ATMSweep, SourceCacheNode
from .conditioning import ClassLabel, InfinityTextEncode, TextEncode
from .editar import EditAR, EditARSweep
from .generate import Generate, InfinityGenerate
from .image_tokens import BitsToImage, ImageToBits, ImageToTokens, TokensToImage
from .janus import JanusEdit, JanusGenerate, JanusLoader, JanusSweep
from .lumina import ChameleonVQGANLoader, LuminaCodesToImage, LuminaEdit, LuminaGenerate, LuminaImageToCodes, LuminaLoader, LuminaSweep
from .loaders import BSQVAELoader, EditARLoader, InfinityLoader, LlamaGenLoader, TextEncoderLoader, VAREditLoader, VQLoader
from .varedit import VAREdit, VAREditSweep
from .view import CompareGrid, Enlarge, MaskOverlay, ShapesScene

comfy_bridge.register_model_folders()

NODE_CLASS_MAPPINGS = {
    "ARE_LlamaGenLoader": LlamaGenLoader,
    "ARE_EditARLoader": EditARLoader,
    "ARE_InfinityLoader": InfinityLoader,
    "ARE_VAREditLoader": VAREditLoader,
    "ARE_VQLoader": VQLoader,
    "ARE_BSQVAELoader": BSQVAELoader,
    "ARE_TextEncoderLoader": TextEncoderLoader,
    "ARE_TextEncode": TextEncode,
    "ARE_InfinityTextEncode": InfinityTextEncode,
    "ARE_ClassLabel": ClassLabel,
    "ARE_Generate": Generate,
    "ARE_ImageToTokens": ImageToTokens,
    "ARE_TokensToImage": TokensToImage,
    "ARE_ImageToBits": ImageToBits,
    "ARE_BitsToImage": BitsToImage,
    "ARE_SourceCache": SourceCacheNode,
    "ARE_ATMEdit": ATMEdit,
    "ARE_ATMSweep": ATMSweep,
    "ARE_EditAR": EditAR,
    "ARE_EditARSweep": EditARSweep,
    "ARE_InfinityGenerate": InfinityGenerate,
    "ARE_AREditSource": AREditSourceCache,
    "ARE_AREdit": AREdit,
    "ARE_AREditSweep": AREditSweep,
    "ARE_VAREdit": VAREdit,
    "ARE_VAREditSweep": VAREditSweep,
    "ARE_ShapesScene": ShapesScene,
    "ARE_CompareGrid": CompareGrid,
    "ARE_MaskOverlay": MaskOverlay,
    "ARE_Enlarge": Enlarge,
    "ARE_LuminaLoader": LuminaLoader,
    "ARE_ChameleonVQGANLoader": ChameleonVQGANLoader,
    "ARE_LuminaGenerate": LuminaGenerate,
    "ARE_LuminaImageToCodes": LuminaImageToCodes,
    "ARE_LuminaCodesToImage": LuminaCodesToImage,
    "ARE_LuminaEdit": LuminaEdit,
    "ARE_LuminaSweep": LuminaSweep,
    "ARE_JanusLoader": JanusLoader,
    "ARE_JanusGenerate": JanusGenerate,
    "ARE_JanusEdit": JanusEdit,
    "ARE_JanusSweep": JanusSweep,
}

add_tooltips(NODE_CLASS_MAPPINGS)

NODE_DISPLAY_NAME_MAPPINGS = {
    "ARE_LlamaGenLoader": "AR LlamaGen Loader",
    "ARE_EditARLoader": "AR EditAR Loader",
    "ARE_InfinityLoader": "AR Infinity Loader",
    "ARE_VAREditLoader": "AR VAREdit Loader",
    "ARE_VQLoader": "AR VQ Tokenizer Loader (LlamaGen, EditAR)",
    "ARE_BSQVAELoader": "AR BSQ VAE Loader (Infinity, VAREdit)",
    "ARE_TextEncoderLoader": "AR Text Encoder Loader (T5)",
    "ARE_TextEncode": "AR Text Encode (LlamaGen)",
    "ARE_InfinityTextEncode": "AR Infinity Text Encode",
    "ARE_ClassLabel": "AR Class Label",
    "ARE_Generate": "AR Generate (LlamaGen)",
    "ARE_ImageToTokens": "AR Image to Tokens (VQ Encode)",
    "ARE_TokensToImage": "AR Tokens to Image (VQ Decode)",
    "ARE_ImageToBits": "AR Image to Bits (Infinity VAE Encode)",
    "ARE_BitsToImage": "AR Bits to Image (Infinity VAE Decode)",
    "ARE_SourceCache": "AR Edit Source Cache",
    "ARE_ATMEdit": "AR Anchor Token Matching Edit (ISLock)",
    "ARE_ATMSweep": "AR Anchor Token Matching Sweep",
    "ARE_EditAR": "AR EditAR (instruction edit / depth, canny, seg to image)",
    "ARE_EditARSweep": "AR EditAR Sweep",
    "ARE_InfinityGenerate": "AR Infinity Generate (next-scale)",
    "ARE_AREditSource": "AR AREdit Source Cache (Infinity)",
    "ARE_AREdit": "AR AREdit Edit (Infinity)",
    "ARE_AREditSweep": "AR AREdit Sweep (gamma x threshold x seed)",
    "ARE_VAREdit": "AR VAREdit (instruction edit, Infinity)",
    "ARE_VAREditSweep": "AR VAREdit Sweep",
    "ARE_ShapesScene": "AR ShapesWorld Scene (embedded models' world)",
    "ARE_CompareGrid": "AR Compare (labelled side by side)",
    "ARE_MaskOverlay": "AR Mask Overlay",
    "ARE_Enlarge": "AR Enlarge (crisp pixels)",
    "ARE_LuminaLoader": "AR Lumina-mGPT Loader",
    "ARE_ChameleonVQGANLoader": "AR Chameleon VQGAN Loader (Lumina-mGPT)",
    "ARE_LuminaGenerate": "AR Lumina Generate",
    "ARE_LuminaImageToCodes": "AR Lumina Image to Codes (VQGAN Encode)",
    "ARE_LuminaCodesToImage": "AR Lumina Codes to Image (VQGAN Decode)",
    "ARE_LuminaEdit": "AR Lumina Edit (Anchor Token Matching)",
    "ARE_LuminaSweep": "AR Lumina Sweep (Anchor Token Matching)",
    "ARE_JanusLoader": "AR Janus-Pro Loader",
    "ARE_JanusGenerate": "AR Janus Generate",
    "ARE_JanusEdit": "AR Janus Edit (Anchor Token Matching)",
    "ARE_JanusSweep": "AR Janus Sweep (Anchor Token Matching)",
}
