"""Janus-Pro under ComfyUI's partial loading: what a GPU too small for the whole model gets.

AR Janus-Pro Loader hands ComfyUI the model with its Linear and Embedding layers as ComfyUI's cast-on-use ops
(nodes/comfy_bridge.py, cast_on_use). When the model does not fit, ComfyUI's ModelPatcher places what fits and marks
the rest (`comfy_cast_weights`), whose weights then travel to the GPU at each use. This script runs that path inside
a real ComfyUI checkout: the embedded Janus-architecture set, wrapped as the loader wraps it, is loaded by ComfyUI's
own ModelPatcher.load with a budget of a third of its size; it checks that the biggest layers are marked, that
everything else sits on the compute device, and that the codes drawn are the unmarked model's, seed for seed.

    python bench/comfy_partial_load.py --comfy /path/to/ComfyUI [--device cuda]

On a CPU both "devices" are the same memory, so it checks the bookkeeping and the cast path, not a transfer; on a GPU
(--device cuda) the marked weights really stay in CPU memory.
"""
import argparse
import copy
import json
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ARGS.add_argument("--comfy", required=True, help="a ComfyUI checkout (its folder goes on sys.path)")
ARGS.add_argument("--device", default="cpu")
ARGS.add_argument("--budget", type=float, default=1 / 3, help="share of the model's size ComfyUI may place")
ARGS.add_argument("--out", default=None)
ARGS = ARGS.parse_args()
sys.path.insert(0, os.path.abspath(ARGS.comfy))

import torch  # noqa: E402

import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = ARGS.device == "cpu"  # as `main.py --cpu`, before model management reads it
import comfy.model_management  # noqa: E402,F401  (ComfyUI's own: the bridge sees it and runs "in ComfyUI")
from ar_edit_pack.core.pipelines import janus  # noqa: E402
from ar_edit_pack.core.shapes.embedded import EMBEDDED_DIR, JANUS_CHOICES  # noqa: E402
from ar_edit_pack.nodes import comfy_bridge as bridge  # noqa: E402


def main() -> int:
    assert bridge.IN_COMFY, "the pack did not see ComfyUI: check --comfy"
    device = torch.device(ARGS.device)
    folder = os.path.join(EMBEDDED_DIR, JANUS_CHOICES["autoregressive"][1])
    plain, _ = janus.load_janus(folder, torch.float32)
    plain = plain.to(device)
    captions = ["a red circle at the top left on a white background",
                "a small blue square in the center and a green star at the bottom right on a gray background"]
    reference = janus.generate(plain, captions, [0, 1]).tokens

    model = copy.deepcopy(plain).cpu()
    model.tokenizer = plain.tokenizer
    managed = bridge.ManagedModel(model, "shapes-janus", device, offload=True)
    patcher = managed._patcher
    size = patcher.model_size()
    patcher.load(device, lowvram_model_memory=int(size * ARGS.budget))  # what load_models_gpu does when it is short
    managed.settle()
    marked = [n for n, m in model.named_modules() if getattr(m, "comfy_cast_weights", False)]
    misplaced = [n for n, m in model.named_modules() if not getattr(m, "comfy_cast_weights", False)
                 for p in m.parameters(recurse=False) if p.device != device]
    streamed = sum(p.numel() * p.element_size() for n, m in model.named_modules()
                   if getattr(m, "comfy_cast_weights", False) for p in m.parameters(recurse=False))
    drawn = janus.generate(model, captions, [0, 1]).tokens
    report = {"device": str(device), "model_bytes": size, "budget_bytes": int(size * ARGS.budget),
              "loaded_bytes": patcher.loaded_size(), "streamed_bytes": streamed, "marked_layers": len(marked),
              "largest_marked": marked[:5], "misplaced": misplaced, "codes_equal": bool(torch.equal(drawn, reference))}
    print(json.dumps(report, indent=1))
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(report, f, indent=1)
    ok = marked and not misplaced and report["codes_equal"]
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
