"""VAREdit parity: our implementation beside the official HiDream-ai/VAREdit code on tiny random weights.

    git clone https://github.com/HiDream-ai/VAREdit /path/VAREdit      # read at run time, never copied here
    python bench/parity_varedit.py --official /path/VAREdit [--2b] [--512] [--match-bf16-cast]

Default: the 8B path (stride-8 VAE grid, 2x2 patchify), 256 px, CFG 3. Only imports are stood in for (flash-attn by
SDPA that accumulates in fp32 and returns the input dtype, as flash-attn does; timm, logging helpers); fused_op's
torch.compile wrappers run eagerly. `--match-bf16-cast` rounds our text cross-attention's q/k/v and output to bf16
the way the original must before flash-attn (it has no fp32 kernel), isolating that from any difference in the math.
Prints: teacher-forced logits (text and null-text branch, per scale), greedy bits, the cached editor's
probabilities, and a free-running greedy generation.
"""
import argparse
import os
import sys
import tempfile
import types

from parity_common import round_cross_attention_to_bf16, write_stubs

_p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_p.add_argument("--official", required=True, help="a checkout of HiDream-ai/VAREdit")
_p.add_argument("--2b", dest="two_b", action="store_true", help="the 2B path (no patchify)")
_p.add_argument("--512", dest="res512", action="store_true", help="512 px (10 scales) instead of 256 px (7)")
_p.add_argument("--match-bf16-cast", action="store_true")
ARGS = _p.parse_args()
sys.path[:0] = [write_stubs(), ARGS.official]
import math  # noqa: E402

import numpy as np  # noqa: E402
import torch
import torch.nn.functional as F
# fused_op.py wraps plain torch functions in torch.compile (an inductor kernel); run them eagerly, same arithmetic
torch.compile = lambda fn=None, **kw: fn if fn is not None else (lambda f: f)
from infinity.models.infinity import Infinity
from infinity.models.bsq_vae.multiscale_bsq import MultiScaleBSQ
from ar_edit_pack.core.files.loaders import load_gpt
from ar_edit_pack.core.infinity.model import InfinityTransformer
from ar_edit_pack.core.infinity.varedit import varedit_forward, source_prefix
from ar_edit_pack.core.infinity.generate import run_scales, InfinitySampling, vae_bits_to_tokens, tokens_to_vae_bits
from ar_edit_pack.core.infinity.scales import scale_schedule
from ar_edit_pack.core.condition import Condition

torch.manual_seed(0)
CT5, B = 256, 2
PN = {256: "0.06M", 512: "0.25M"}
MATCH_CAST = ARGS.match_bf16_cast
P = 0 if ARGS.two_b else 1  # 1: the 8B path (2x2 patchify of a stride-8 VAE's grid)
# The VAE's bits per token as the official set-ups have them (infer.py MODEL_CONFIGS: 8B vae_type 14 with
# apply_spatial_patchify 1, so 56-bit transformer tokens); the 2B path at a tiny 8 bits (its 32 would only be slower).
D_VAE = 14 if P else 8
M = 2 if P else 1  # VAE grid = M x transformer grid
RES = 512 if ARGS.res512 else 256
sched = scale_schedule(RES)  # transformer grids; the VAE grids are twice as large (stride-8 VAE, 2x2 patchify)
vae_q = MultiScaleBSQ(dim=D_VAE, codebook_size=2 ** D_VAE)
vae = types.SimpleNamespace(embed_dim=D_VAE, quantizer=vae_q)
off = Infinity(vae_local=vae, text_channels=CT5, text_maxlen=16, shared_aln=True, raw_scale_schedule=None,
               checkpointing=None, customized_flash_attn=False, fused_norm=True, pad_to_multiplier=128,
               use_flex_attn=False, add_lvl_embeding_only_first_block=1, use_bit_label=1, rope2d_each_sa_layer=1,
               rope2d_normalized_by_hw=2, pn=PN[RES], apply_spatial_patchify=P, inference_mode=True,
               train_h_div_w_list=[1.0], depth=2, embed_dim=128, num_heads=4, mlp_ratio=4, block_chunks=2).eval()
with torch.no_grad():
    for n, p in off.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if "scale_mul" in n else 0.05))
state = {k: v.clone() for k, v in off.state_dict().items()}
# ours through our loader, from the state saved as the official files are (no config: the layout, patchify included,
# is read off the weights)
_file = os.path.join(tempfile.mkdtemp(prefix="varedit_parity_"), "8B-512.pth" if P else "2B-512.pth")
torch.save(state, _file)
ours = load_gpt(_file, precision="fp32")
cfg = ours.cfg
assert (cfg.patchify, cfg.vae_bits, cfg.token_bits) == (bool(P), D_VAE, 4 * D_VAE if P else D_VAE), cfg
assert ours.flavour == "varedit" and isinstance(ours, InfinityTransformer)
print(f"loaded {os.path.basename(_file)} through load_gpt: patchify={cfg.patchify}, vae_bits={cfg.vae_bits}, "
      f"token_bits={cfg.token_bits}")

if MATCH_CAST:
    round_cross_attention_to_bf16()

# inputs: text, source tokens (continuous, patchified), per-scale VAE-grid bits to teacher-force
lens = [5, 9]
text = torch.randn(sum(lens), CT5)
cu = torch.tensor([0, *np.cumsum(lens)], dtype=torch.int32)
h, w = sched[-1]
src = torch.randn(B, h * w, M * M * D_VAE)
vae_bits = [torch.randint(0, 2, (B, 1, M * hh, M * ww, D_VAE)).float() for hh, ww in sched]

captured = []
we_in = []
_we = off.word_embed.forward
off.word_embed.forward = lambda x: we_in.append(x.detach().clone()) or _we(x)
orig_get_logits = off.get_logits
off.get_logits = lambda hid, cond: captured.append(orig_get_logits(hid, cond)) or captured[-1]
CFG = 3.0
off.rng = torch.Generator().manual_seed(0)
with torch.no_grad():
    off.autoregressive_infer_cfg(vae=vae, scale_schedule=[(1, a, b) for a, b in sched], src_img_prefix=src.repeat(2, 1, 1),
                                 label_B_or_BLT=(text.clone(), lens, cu, max(lens)), B=B, cfg_list=[CFG] * len(sched),
                                 tau_list=[1.0] * len(sched), top_k=0, top_p=0.0, returns_vemb=1, vae_type=1,
                                 cfg_insertion_layer=[0], gt_leak=len(sched), gt_ls_Bl=vae_bits, inference_mode=True)
off_logits = torch.cat(captured, 1)  # [2B, S, 2d]: cond rows then null-text rows

# ours, explicit teacher-forced pass (text right-padded + mask)
Lt = max(lens)
tx = torch.zeros(B, Lt, CT5); tm = torch.zeros(B, Lt, dtype=torch.bool)
for i, (a, l) in enumerate(zip(cu[:-1], lens)):
    tx[i, :l] = text[a:a + l]; tm[i, :l] = True
tokens = [vae_bits_to_tokens(b[:, 0].bool(), bool(P)).reshape(B, -1, M * M * D_VAE) for b in vae_bits]
final = (M * h, M * w)
summed, inputs = 0, []
for k in range(len(sched) - 1):
    codes = (vae_bits[k][:, 0].permute(0, 3, 1, 2) * 2 - 1) / math.sqrt(D_VAE)
    summed = summed + F.interpolate(codes, size=final, mode="bilinear", align_corners=False)
    nxt = F.interpolate(summed, size=(M * sched[k + 1][0], M * sched[k + 1][1]), mode="bilinear", align_corners=False)
    inputs.append((F.pixel_unshuffle(nxt, 2) if P else nxt).flatten(2).transpose(1, 2))
inputs = torch.cat(inputs, 1)
off_inputs = torch.cat([t[:B] for t in we_in[1:]], 1)  # [0] is the source
print("next-scale inputs max abs diff:", float((off_inputs - inputs).abs().max()), "scale", float(inputs.abs().max()))
with torch.no_grad():
    full = varedit_forward(ours, tx, tm, src, inputs, sched).reshape(B, -1, 2 * M * M * D_VAE)
    null = varedit_forward(ours, ours.null_text(tm), tm, src, inputs, sched).reshape(B, -1, 2 * M * M * D_VAE)
print(f"{RES}px, patchify={P}, match_bf16_cast={MATCH_CAST}")
print("teacher-forced logits, text branch: max abs diff", float((full - off_logits[:B]).abs().max()),
      " (logit scale", float(off_logits.abs().max()), ")")
sizes = [a * b for a, b in sched]
off_s = torch.split(off_logits[:B], sizes, 1); our_s = torch.split(full, sizes, 1)
print("per scale:", [round(float((a - b).abs().max()), 6) for a, b in zip(our_s, off_s)])
print("teacher-forced logits, null-text branch: max abs diff", float((null - off_logits[B:]).abs().max()))
# greedy bits from the guided logits (cfg on logits, as both do)
g_off = (CFG * off_logits[:B] + (1 - CFG) * off_logits[B:]).reshape(B, -1, M * M * D_VAE, 2).argmax(-1)
g_our = (CFG * full + (1 - CFG) * null).reshape(B, -1, M * M * D_VAE, 2).argmax(-1)
print("greedy bits differing (teacher-forced, cfg 3):", int((g_off != g_our).sum()), "of", g_off.numel())

# ours, cached generation forced to the same bits: its probabilities against the official guided ones
def pick(k, p1, sampled):
    return tokens[k].to(sampled.dtype)
cond = Condition(tx, tm, ["x"] * B, "infinity")
settings = [InfinitySampling(CFG, 1.0, 1.0).validate()] * B
with torch.no_grad():
    bits, p1 = run_scales(ours, cond, sched, settings, torch.tensor([1, 2]), pick=pick, prefix_for=source_prefix(ours, src, sched))
p_off = (CFG * off_logits[:B] + (1 - CFG) * off_logits[B:]).reshape(B, -1, M * M * D_VAE, 2).softmax(-1)[..., 1]
p_our = torch.cat([p.reshape(B, -1, p.shape[-1]) for p in p1], 1)
print("cached generation (forced bits), p(bit=1) max abs diff:", float((p_our - p_off).abs().max()))

# free-running greedy generation with text guidance: both pick the more likely value of every bit
off.rng = torch.Generator().manual_seed(0)
with torch.no_grad():
    _, off_bits, _ = off.autoregressive_infer_cfg(vae=vae, scale_schedule=[(1, a, b) for a, b in sched],
                                                  src_img_prefix=src.repeat(2, 1, 1), label_B_or_BLT=(text.clone(), lens, cu, max(lens)),
                                                  B=B, cfg_list=[CFG] * len(sched), tau_list=[1.0] * len(sched), top_k=1,
                                                  top_p=0.0, returns_vemb=1, vae_type=1, cfg_insertion_layer=[0], gt_leak=0,
                                                  gt_ls_Bl=None, inference_mode=True)
    greedy = [InfinitySampling(CFG, 1.0, 0.01).validate()] * B
    our_bits, _ = run_scales(ours, cond, sched, greedy, torch.tensor([1, 2]), prefix_for=source_prefix(ours, src, sched))
diff = sum(int((tokens_to_vae_bits(o.reshape(B, a, b, -1), bool(P)).float() != ob[:, 0].float()).sum())
           for o, ob, (a, b) in zip(our_bits, off_bits, sched))
total = sum(ob.numel() for ob in off_bits)
print(f"free-running greedy generation, cfg {CFG}: bits differing {diff} of {total}")
