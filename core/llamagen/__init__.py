"""LlamaGen family: next-token GPT, VQ tokenizer, KV-cached decoding, and its editors (ATM, EditAR)."""
