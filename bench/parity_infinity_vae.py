"""Infinity's BSQ VAE beside the official code (FoundationVision/Infinity, or HiDream-ai/VAREdit's copy of it):
the official VAE built as the official inference scripts build it (tools/run_infinity.py load_visual_tokenizer:
vae_type bits, and with apply_spatial_patchify patch_size 8 and ch_mult [1, 2, 4, 4]), random weights, saved in its
file layout ({"vae": state_dict}); ours loaded from that file by our loader (the layout read off the weights).

    python bench/parity_infinity_vae.py --official /path/Infinity-or-VAREdit [--2b] [--512]

Default: the 8B VAE (infinity_vae_d56_f8_14_patchify: 14 bits at stride 8), 256 px. Prints the layout our loader
read, the multi-scale bits of an encoded picture (differing bits), the summed codes and the decoded picture (max abs
difference), and how much of the decoded difference is the decoder amplifying the summed codes' rounding.
"""
import argparse
import os
import sys
import tempfile

from parity_common import write_stubs

_p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_p.add_argument("--official", required=True, help="a checkout of FoundationVision/Infinity or HiDream-ai/VAREdit")
_p.add_argument("--2b", dest="two_b", action="store_true", help="the 2B VAE (infinity_vae_d32reg: 32 bits, stride 16)")
_p.add_argument("--512", dest="res512", action="store_true", help="512 px (10 scales) instead of 256 px (7)")
ARGS = _p.parse_args()
sys.path[:0] = [write_stubs(), ARGS.official]

import torch  # noqa: E402

from infinity.models.bsq_vae.vae import vae_model  # noqa: E402

from ar_edit_pack.core.files.loaders import load_vq  # noqa: E402
from ar_edit_pack.core.infinity.bsq import codes_from_bits  # noqa: E402
from ar_edit_pack.core.infinity.generate import vae_schedule  # noqa: E402
from ar_edit_pack.core.infinity.scales import scale_schedule  # noqa: E402

torch.manual_seed(0)
PATCHIFY = not ARGS.two_b
BITS = 32 if ARGS.two_b else 14
RES = 512 if ARGS.res512 else 256
if PATCHIFY:  # exactly the official script's branches
    patch_size, ch_mult = 8, [1, 2, 4, 4]
else:
    patch_size, ch_mult = 16, [1, 2, 4, 4, 4]
off = vae_model(None, "dynamic", BITS, 2 ** BITS, patch_size=patch_size, encoder_ch_mult=ch_mult,
                decoder_ch_mult=ch_mult, test_mode=True)
folder = tempfile.mkdtemp(prefix="vae_parity_")
name = "infinity_vae_d32reg.pth" if ARGS.two_b else "infinity_vae_d56_f8_14_patchify.pth"
path = os.path.join(folder, name)
torch.save({"vae": off.state_dict()}, path)
ours = load_vq(path, precision="fp32")
print(f"{name} through load_vq: bits={ours.cfg.bits}, stride={ours.stride}, ch_mult={ours.cfg.ch_mult}")
assert (ours.cfg.bits, ours.stride) == (BITS, patch_size)

schedule = vae_schedule(scale_schedule(RES), PATCHIFY)  # the VAE's grids (2x the transformer's under patchify)
x = torch.rand(2, 3, RES, RES) * 2 - 1
with torch.no_grad():
    _, _, _, off_bits, _, _ = off.encode(x, scale_schedule=[(1, h, w) for h, w in schedule])
    our_bits = ours.encode_bits(x, schedule)
    diff = sum(int((o.bool() != b.reshape(o.shape).bool()).sum()) for o, b in zip(our_bits, off_bits))
    total = sum(o.numel() for o in our_bits)
    print(f"{RES} px, {len(schedule)} scales up to {schedule[-1]}: encoded bits differing {diff} of {total}")
    off_codes, off_img = off.decode_from_indices(off_bits, [(1, h, w) for h, w in schedule], "bit_label")
    our_img = ours.decode_bits(our_bits)
    our_codes = codes_from_bits(our_bits, tuple(schedule[-1]))
    print("decoded picture: max abs diff", float((our_img - off_img).abs().max()), "(pixel range 2)")
    print("summed codes: max abs diff", float((our_codes - off_codes.squeeze(-3)).abs().max()))
    # the decoder amplifying rounding: decode the official summed codes with our decoder
    same_codes = ours.decode_codes(off_codes.squeeze(-3))
    print("our decoder on the official summed codes: max abs diff", float((same_codes - off_img).abs().max()))
