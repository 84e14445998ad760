"""One bounded hostile case run under an address-space ceiling (RLIMIT_AS) set just above what the imports took:
`python tests/ceiling_cases.py CASE ARG HEADROOM_MB`. Prints `refused: <message>` or `ran: <summary>`; running out
of memory shows as a MemoryError or the process killed, either of which the calling test reports."""
from __future__ import annotations

import json
import os
import resource
import sys

import torch  # noqa: F401 - imported before the ceiling, like everything a case needs

from ar_edit_pack.core.__main__ import main
from ar_edit_pack.core.batch import engine
from ar_edit_pack.core.files import loaders
from ar_edit_pack.core.text.encoders import T5TextEncoder
from ar_edit_pack.nodes import TextEncode, TextEncoderLoader


def vm_size() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


def run(case: str, arg: str) -> str:
    if case == "image_size":
        loaders.load_gpt(arg)
    elif case == "t5_config":
        T5TextEncoder(arg)
    elif case == "prompt_lines":
        TextEncode().encode(TEXT, arg, True)
    elif case == "shapes_cases":
        if main(["shapes-jobs", "--out", arg, "--cases", "1000000000"]) != 2:
            return "ran: shapes-jobs wrote its cases"
        return "refused: shapes-jobs"
    elif case == "batch":
        s = engine.run_jobs(os.path.join(arg, "jobs.jsonl"), os.path.join(arg, "out"), progress=False, device="cpu",
                            allow_download=False)
        return f"ran: {s.ok} ok, {s.failed} failed"
    return f"ran: {case} was not refused"


if __name__ == "__main__":
    case, arg, headroom_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    TEXT = None
    if case == "prompt_lines":
        (TEXT,) = TextEncoderLoader().load("(embedded) shapes-words", "fp32", "cpu")
        with open(arg) as f:
            arg = f.read()
    torch.set_num_threads(1)
    ceiling = vm_size() + headroom_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    try:
        print(run(case, arg))
    except MemoryError:
        print("out of memory: MemoryError")
    except (ValueError, RuntimeError, OSError) as e:
        print("refused: " + json.dumps(str(e).splitlines()[0] if str(e) else type(e).__name__))
