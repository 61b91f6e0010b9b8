"""VAR, next-scale prediction ("progressive JPEG"; Tian et al. 2024): every token of scale k at once.

The transformer's input for scale k is the sum of the earlier scales' code maps, area-downsampled to
p_k (VAR's code, not the paper's text: issue #126); scale 1's is the class. The mask is block-causal
across scales and bidirectional inside one; the loss is cross-entropy over all tokens alike. Sampling
takes K transformer calls (one per scale) plus one decoder call.
"""

import sys

import torch
import torch.nn.functional as F

from ..data.images import SCALE, SHIFT
from ..nets.transformer import Transformer
from . import tokenizer
from . import tokens as token_sampling


def build(cfg, num_classes, folder):
    tok = tokenizer.load(f"{folder}/{tokenizer.SUBFOLDER}", cfg, single_scale=False)
    levels = torch.cat([torch.full((p * p,), k) for k, p in enumerate(tok.scales)])  # (L,)
    net = Transformer(
        tok.vocab, levels, cfg.width, cfg.depth, cfg.heads, num_classes if cfg.conditional else 0, in_features=tok.dim
    )
    net.__dict__["tokenizer"] = tok  # used, not trained or saved
    return net


def pyramid(tok, x):
    """Token pyramids (N, L) of images x (N, C, H, W) in [0, 1] and their teacher-forcing inputs (N, L - 1, C)."""
    ids = tokenizer.encode(tok, (x - SHIFT) / SCALE)
    return ids, torch.cat([tok.teacher_inputs(chunk) for chunk in ids.split(500)])


def prepare(cfg, dataset, folder, progress=True):
    """The training images' pyramids and inputs, computed once from the frozen tokenizer."""
    ids, inputs = pyramid(tokenizer.ensure(cfg, folder, single_scale=False, progress=progress), dataset.x)
    return {"tokens": ids, "inputs": inputs}, dataset.y


def loss(net, cfg, rows, y, generator):
    logits = net(rows["inputs"], y)  # (B, L, V)
    return F.cross_entropy(logits.transpose(1, 2), rows["tokens"])


def lengths(run):
    return run.net.tokenizer.lengths


def next_inputs(run, picked, k, f_hat):
    """Add scale k's codes to f_hat; the next input is f_hat area-downsampled to scale k + 1."""
    tok = run.net.tokenizer
    side = tok.scales[k]
    f_hat = tok.embed_scale(picked.view(-1, side, side), k) + (0 if f_hat is None else f_hat)
    return tok.next_input(f_hat, k), f_hat  # (B, p_{k+1}^2, C)


def decode(run, ids):
    return run.net.tokenizer.decode(ids)


def sample(run, n=2000, seed=0, **kwargs):
    return token_sampling.sample(run, sys.modules[__name__], n, seed, **kwargs)


def bits(run, x, y=None):
    """Held-out code length of the tokenized images, in bits per image and per scale (a rate, not bits/dim)."""
    tok = run.net.tokenizer
    ids, inputs = pyramid(tok, x)
    per_image, per_level = token_sampling.nll_bits(run, ids, inputs, y)
    return {
        "bits_per_image": float(per_image.mean()),
        "bits_per_image_stderr": float(per_image.std() / len(ids) ** 0.5),
        "bits_per_scale": [round(float(b), 3) for b in per_level],
        "bpd": None,
        "n": len(ids),
        "grid": f"{tok.vocab} codes x {ids.shape[1]} tokens",
    }
