"""One pipeline per method and backbone, over the model families: what the nodes, the batch worker, the command
line, the ShapesEdit benchmark and the thumbnail tool all call. Each takes loaded models, a source (tokens or
pictures), prompts or instructions, an optional mask, settings and seeds, and returns tokens (and pictures where
the method makes them); picture fitting, masks on the token grid, canvas and crop exist here once.

- llamagen: generate, encode / decode, source_cache, edit (ATM, naive, masked)
- editar: prepare, instruction_prompts, edit (instructions and depth / canny / segmentation maps)
- infinity: generate, encode / decode, aredit_source, aredit
- varedit: edit
"""
from . import editar, infinity, llamagen, varedit

__all__ = ["editar", "infinity", "llamagen", "varedit"]
