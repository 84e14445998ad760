"""ComfyUI AR Edit: autoregressive image generation and editing nodes (LlamaGen, ATM, ...).

ComfyUI imports this file as the package of the folder in custom_nodes/. Everything inside is imported
relatively: ComfyUI has top-level modules called `nodes` and `comfy` of its own.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
