"""What the parity scripts share: stand-ins for the imports the official Infinity / VAREdit code needs but parity runs
do not (flash-attn by SDPA with the kernel's fp32 accumulation, timm, logging and data helpers: only imports, none of
the official arithmetic; written to a temporary folder at run time, put first on sys.path), and the bf16 rounding of
our text cross-attention that isolates the original's flash-attn rounding from any difference in the math."""
import os
import tempfile

STUBS = {
    "flash_attn/__init__.py": '# SDPA stand-ins for flash-attn (CPU parity runs): same math, no kernels.\nimport torch\nimport torch.nn.functional as F\n\ndef flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, **kw):\n    # q, k, v: B L H c\n    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=softmax_scale, is_causal=causal)\n    return o.transpose(1, 2)\n\ndef flash_attn_varlen_kvpacked_func(q, kv, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0, softmax_scale=None, **kw):\n    outs = []\n    for i in range(len(cu_seqlens_q) - 1):\n        qs = q[cu_seqlens_q[i]:cu_seqlens_q[i + 1]]  # Lq H c\n        ks = kv[cu_seqlens_k[i]:cu_seqlens_k[i + 1]]  # Lk 2 H c\n        # flash-attn accumulates in fp32 and returns the input dtype\n        o = F.scaled_dot_product_attention(qs.transpose(0, 1)[None].float(), ks[:, 0].transpose(0, 1)[None].float(),\n                                           ks[:, 1].transpose(0, 1)[None].float(), scale=softmax_scale)\n        outs.append(o[0].transpose(0, 1).to(q.dtype))\n    return torch.cat(outs)\n',
    "timm/__init__.py": "",
    "timm/models/__init__.py": "def register_model(fn):\n    return fn\n",
    "timm/models/layers/__init__.py": 'import torch.nn as nn\nclass DropPath(nn.Identity):\n    def __init__(self, *a, **k):\n        super().__init__()\ndef drop_path(x, *a, **k):\n    return x\n',
    "timm/layers/__init__.py": 'import torch.nn as nn\nclass DropPath(nn.Identity):\n    def __init__(self, *a, **k):\n        super().__init__()\ndef drop_path(x, *a, **k):\n    return x\n',
    "timm/loss/__init__.py": "import torch.nn as nn\nclass SoftTargetCrossEntropy(nn.Module):\n    pass\n",
    "torchvision/__init__.py": "from . import transforms\n",  # imported by the VAE module, unused at inference
    "torchvision/transforms/__init__.py": "",
    **{f"{m}/__init__.py": "" for m in ("pytz", "pandas", "imageio", "cv2", "tap", "wandb")},
}


def write_stubs() -> str:
    """A folder of the stand-ins, to put first on sys.path."""
    root = tempfile.mkdtemp(prefix="varedit_stubs_")
    for rel, text in STUBS.items():
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    return root


def round_cross_attention_to_bf16() -> None:
    """Our Infinity text cross-attention with q / k / v and its output rounded to bf16, as the original rounds them
    before flash-attn (which has no fp32 kernel); the arithmetic is otherwise ours."""
    import torch
    import torch.nn.functional as F

    from ar_edit_pack.core.infinity import model as ours_model

    def forward(self, x, k, v, key_mask):
        r = lambda t: t.to(torch.bfloat16).float()
        if x is None:
            q = self.mat_q.to(k.dtype)[:, :, None].expand(k.shape[0], -1, 1, -1)
        else:
            q = self.mat_q(x.to(k.dtype)).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        o = r(F.scaled_dot_product_attention(r(q), r(k), r(v), attn_mask=key_mask[:, None, None, :]))
        return self.proj(o.transpose(1, 2).flatten(2)).float()

    ours_model.CrossAttention.forward = forward
