"""Socket type names shared by the pack's nodes: one per model family and per kind of data, so the graph editor
refuses a crossed wire (a VAREdit editor into AR Generate, Infinity bits into the VQ decoder)."""

# Models (ManagedModel around the network), one type per family; each has its own loader node.
LLAMAGEN_MODEL = "ARE_LLAMAGEN_MODEL"  # LlamaGen t2i / c2i GPT
EDITAR_MODEL = "ARE_EDITAR_MODEL"  # EditAR (a fine-tuned LlamaGen)
INFINITY_MODEL = "ARE_INFINITY_MODEL"  # Infinity text-to-image transformer
VAREDIT_MODEL = "ARE_VAREDIT_MODEL"  # VAREdit editor (a fine-tuned Infinity)
LUMINA_MODEL = "ARE_LUMINA_MODEL"  # Lumina-mGPT (Chameleon architecture)
JANUS_MODEL = "ARE_JANUS_MODEL"  # Janus-Pro (its VQ-16 tokenizer is a VQ_TOKENIZER)
CHAMELEON_VQGAN = "ARE_CHAMELEON_VQGAN"  # Meta's Chameleon VQGAN (Lumina-mGPT's image tokenizer)
VQ_TOKENIZER = "ARE_VQ"  # LlamaGen VQ tokenizer (LlamaGen, EditAR)
BSQ_VAE = "ARE_BSQ_VAE"  # Infinity's BSQ VAE (Infinity, VAREdit)
AR_TEXT_ENCODER = "AR_TEXT_ENCODER"  # T5 or an embedded word encoder: every family reads text

# Data between nodes.
LLAMAGEN_CONDITIONING = "ARE_LLAMAGEN_COND"  # core.Condition, LlamaGen's layout (caption features or class labels)
INFINITY_CONDITIONING = "ARE_INFINITY_COND"  # core.Condition, Infinity's layout (raw text, valid tokens)
VQ_TOKENS = "ARE_VQ_TOKENS"  # core.records.TokenBatch: code grids
LUMINA_CODES = "ARE_LUMINA_CODES"  # core.records.TokenBatch of Chameleon VQGAN codes (not LlamaGen's)
BIT_TOKENS = "ARE_BITS"  # core.infinity.generate.BitTokens: multi-scale bits
ATM_SOURCE = "ARE_ATM_SOURCE"  # core.llamagen.atm.SourceCache (anchors + codebook vectors on the device)
AREDIT_SOURCE = "ARE_AREDIT_SOURCE"  # core.infinity.aredit.AREditSource (bits + probabilities per scale)

PRECISIONS = ["auto", "bf16", "fp16", "fp32"]
CATEGORY = "AR Edit"
DRAFT_INPUT = ("BOOLEAN", {"default": True, "tooltip": "faster, same result: check many source tokens per model "
                            "pass and keep only what one-token-at-a-time decoding picks. Turn off to compare"})
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # the seed widgets' range (ComfyUI allows 64 bits)
COMPILE_INPUT = (["auto", "on", "off"], {"default": "auto", "tooltip": "compile the sampling step (torch.compile, CUDA "
                 "graphs): same result, several times faster per step on a GPU once compiled; the first run of a new "
                 "size compiles for a while. auto = on with a CUDA GPU"})
