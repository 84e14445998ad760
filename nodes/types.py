"""Socket type names shared by the pack's nodes (custom types carry device-resident objects)."""

AR_MODEL = "AR_MODEL"  # ManagedModel around an AR transformer
AR_TOKENIZER = "AR_TOKENIZER"  # ManagedModel around a VQ tokenizer
AR_TEXT_ENCODER = "AR_TEXT_ENCODER"  # ManagedModel around a text encoder
AR_CONDITIONING = "AR_CONDITIONING"  # core.Condition (caption features + mask, or class labels)
AR_TOKENS = "AR_TOKENS"  # core.records.TokenBatch
AR_SOURCE = "AR_SOURCE"  # core.llamagen.atm.SourceCache (anchors + codebook vectors on the device)

PRECISIONS = ["auto", "bf16", "fp16", "fp32"]
CATEGORY = "AR Edit"
DRAFT_INPUT = ("BOOLEAN", {"default": True, "tooltip": "faster, same result: check many source tokens per model "
                            "pass and keep only what one-token-at-a-time decoding picks. Turn off to compare"})
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # the seed widgets' range (ComfyUI allows 64 bits)
