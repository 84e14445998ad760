"""Infinity text-to-image parity: our transformer (and the BSQ VAE) beside the official FoundationVision/Infinity
code, on tiny random weights in the official layout, built exactly as its inference script builds them
(tools/run_infinity.py load_infinity / load_visual_tokenizer, with the flags of its notebooks: 8B
interactive_infer_8b.ipynb vae_type 14 + apply_spatial_patchify 1; 2B interactive_infer.ipynb vae_type 32;
add_lvl_embeding_only_first_block 1, use_bit_label 1, rope2d_each_sa_layer 1, rope2d_normalized_by_hw 2,
cfg_insertion_layer 0). Our side is loaded from the saved files by our loaders (the layout read off the weights).

    git clone https://github.com/FoundationVision/Infinity /path/Infinity      # read at run time, never copied here
    python bench/parity_infinity.py --official /path/Infinity [--2b] [--512] [--match-bf16-cast]

Prints: the layout our loaders read; teacher-forced logits (text and null-text branch; the official loop forced with
gt_leak); greedy bits teacher-forced and free-running with text guidance; the decoded pictures of the free-running
bits. `--match-bf16-cast` rounds our text cross-attention to bf16 as the original must before flash-attn.
"""
import argparse
import os
import sys
import tempfile

from parity_common import round_cross_attention_to_bf16, write_stubs

_p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_p.add_argument("--official", required=True, help="a checkout of FoundationVision/Infinity")
_p.add_argument("--2b", dest="two_b", action="store_true", help="the 2B layout (32-bit VAE at stride 16, no patchify)")
_p.add_argument("--512", dest="res512", action="store_true", help="512 px (10 scales) instead of 256 px (7)")
_p.add_argument("--match-bf16-cast", action="store_true")
ARGS = _p.parse_args()
sys.path[:0] = [write_stubs(), ARGS.official]

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.compile = lambda fn=None, **kw: fn if fn is not None else (lambda f: f)  # fused_op's wrappers, run eagerly
from infinity.models.bsq_vae.vae import vae_model  # noqa: E402
from infinity.models.infinity import Infinity  # noqa: E402

from ar_edit_pack.core.condition import Condition  # noqa: E402
from ar_edit_pack.core.files.loaders import load_gpt, load_vq  # noqa: E402
from ar_edit_pack.core.infinity.codec import check_pair  # noqa: E402
from ar_edit_pack.core.infinity.generate import (InfinitySampling, run_scales, teacher_inputs,  # noqa: E402
                                                 tokens_to_vae_bits, vae_bits_to_tokens, summed_codes)
from ar_edit_pack.core.infinity.scales import scale_schedule  # noqa: E402

torch.manual_seed(0)
P = 0 if ARGS.two_b else 1
BITS = 32 if ARGS.two_b else 14
M = 2 if P else 1  # VAE grid = M x the transformer's
RES = 512 if ARGS.res512 else 256
PN = {256: "0.06M", 512: "0.25M"}[RES]
CT5, B, CFG = 256, 2, 3.0
sched = scale_schedule(RES)
patch, ch_mult = (8, [1, 2, 4, 4]) if P else (16, [1, 2, 4, 4, 4])
vae = vae_model(None, "dynamic", BITS, 2 ** BITS, patch_size=patch, encoder_ch_mult=ch_mult, decoder_ch_mult=ch_mult,
                test_mode=True)
off = Infinity(vae_local=vae, text_channels=CT5, text_maxlen=16, shared_aln=True, raw_scale_schedule=None,
               checkpointing="full-block", customized_flash_attn=False, fused_norm=True, pad_to_multiplier=128,
               use_flex_attn=False, add_lvl_embeding_only_first_block=1, use_bit_label=1, rope2d_each_sa_layer=1,
               rope2d_normalized_by_hw=2, pn=PN, apply_spatial_patchify=P, inference_mode=True,
               train_h_div_w_list=[1.0], depth=2, embed_dim=128, num_heads=4, mlp_ratio=4, block_chunks=2).eval()
with torch.no_grad():
    for n, p in off.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if "scale_mul" in n else 0.05))
folder = tempfile.mkdtemp(prefix="infinity_parity_")
model_file = os.path.join(folder, "infinity_2b_tiny.pth" if ARGS.two_b else "infinity_8b_tiny.pth")
vae_file = os.path.join(folder, "infinity_vae_d32reg.pth" if ARGS.two_b else "infinity_vae_d56_f8_14_patchify.pth")
torch.save({k: v.clone() for k, v in off.state_dict().items()}, model_file)
torch.save({"vae": vae.state_dict()}, vae_file)
ours, our_vae = load_gpt(model_file, precision="fp32"), load_vq(vae_file, precision="fp32")
check_pair(ours, our_vae)
print(f"loaded: transformer patchify={ours.cfg.patchify}, vae_bits={ours.cfg.vae_bits}, token_bits="
      f"{ours.cfg.token_bits}; VAE bits={our_vae.cfg.bits}, stride={our_vae.stride}")
assert (ours.cfg.patchify, ours.cfg.vae_bits) == (bool(P), BITS)

if ARGS.match_bf16_cast:
    round_cross_attention_to_bf16()

lens = [5, 9]
text = torch.randn(sum(lens), CT5)
cu = torch.tensor([0, *np.cumsum(lens)], dtype=torch.int32)
Lt = max(lens)
tx, tm = torch.zeros(B, Lt, CT5), torch.zeros(B, Lt, dtype=torch.bool)
for i, (a, n) in enumerate(zip(cu[:-1].tolist(), lens)):
    tx[i, :n], tm[i, :n] = text[a:a + n], True
cond = Condition(tx, tm, ["x"] * B, "infinity")
vae_bits = [torch.randint(0, 2, (B, 1, M * h, M * w, BITS)).float() for h, w in sched]  # official: VAE-grid bits
captured, picked = [], []
_get_logits = off.get_logits
off.get_logits = lambda hid, c: captured.append(_get_logits(hid, c)) or captured[-1]
_to_codes = vae.quantizer.lfq.indices_to_codes  # every scale's bits pass through it: the official picks
vae.quantizer.lfq.indices_to_codes = lambda idx, label_type: picked.append(idx.clone()) or _to_codes(idx, label_type)


def official(gt_leak, gt):
    captured.clear()
    picked.clear()
    off.rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        off.autoregressive_infer_cfg(vae=vae, scale_schedule=[(1, h, w) for h, w in sched],
                                           label_B_or_BLT=(text.clone(), lens, cu, Lt), B=B, cfg_list=[CFG] * len(sched),
                                           tau_list=[1.0] * len(sched), top_k=1 if gt_leak == 0 else 0, top_p=0.0,
                                           returns_vemb=1, vae_type=1, cfg_insertion_layer=[0], gt_leak=gt_leak,
                                           gt_ls_Bl=gt, inference_mode=True)
    return torch.cat(captured, 1), list(picked)


off_logits, _ = official(len(sched), vae_bits)  # [2B, S, 2 d]: text rows, then null-text rows
tokens = [vae_bits_to_tokens(b[:, 0].bool(), bool(P)) for b in vae_bits]
inputs = teacher_inputs(tokens, sched, bool(P))
d = ours.cfg.token_bits
with torch.no_grad():
    full = ours(tx, tm, inputs, sched).reshape(B, -1, 2 * d)
    null = ours(ours.null_text(tm), tm, inputs, sched).reshape(B, -1, 2 * d)
print(f"{RES} px, patchify={P}, match_bf16_cast={ARGS.match_bf16_cast}")
print("teacher-forced logits, text branch: max abs diff", float((full - off_logits[:B]).abs().max()),
      "(logit scale", float(off_logits.abs().max()), ")")
print("teacher-forced logits, null-text branch: max abs diff", float((null - off_logits[B:]).abs().max()))
g_off = (CFG * off_logits[:B] + (1 - CFG) * off_logits[B:]).reshape(B, -1, d, 2).argmax(-1)
g_our = (CFG * full + (1 - CFG) * null).reshape(B, -1, d, 2).argmax(-1)
print("greedy bits differing (teacher-forced, cfg 3):", int((g_off != g_our).sum()), "of", g_off.numel())

# free-running greedy with text guidance: both take the more likely value of every bit
_, off_bits = official(0, None)  # per scale [B, 1, h, w, d] on the VAE grid
greedy = [InfinitySampling(CFG, 1.0, 0.01).validate()] * B
with torch.no_grad():
    our_bits, _ = run_scales(ours, cond, sched, greedy, torch.tensor([1, 2]))
    diff = sum(int((tokens_to_vae_bits(o.reshape(B, h, w, -1), bool(P)).float() != ob[:, 0].float()).sum())
               for o, ob, (h, w) in zip(our_bits, off_bits, sched))
    print(f"free-running greedy generation, cfg {CFG}: bits differing {diff} of {sum(o.numel() for o in off_bits)}")
    off_codes, off_pic = vae.decode_from_indices(off_bits, [(1, M * h, M * w) for h, w in sched], "bit_label")
    our_pic = our_vae.decode_codes(summed_codes([b.reshape(B, h, w, -1) for b, (h, w) in zip(our_bits, sched)],
                                                bool(P)))
    print("decoded pictures of those bits: max abs diff", float((our_pic - off_pic).abs().max()), "(range 2)")
