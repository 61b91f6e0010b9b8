"""VAR, next-scale prediction ("progressive JPEG"; Tian et al. 2024): every token of scale k at once.

The transformer's input for scale k is the sum of the earlier scales' code maps, area-downsampled to
p_k (VAR's code, not the paper's text: issue #126); scale 1's is the class. The mask is block-causal
across scales and bidirectional inside one; the loss is cross-entropy over all tokens alike. Sampling
takes K transformer calls (one per scale) plus one decoder call.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.images import SCALE, SHIFT
from ..errors import UnnoiseError
from ..nets.transformer import Transformer
from . import tokenizer
from . import tokens as token_sampling
from .tokens import LEVELS, TRANSFORMER, Prior


def pyramid(tok, x):
    """Token pyramids (N, L) of images x (N, C, H, W) in [0, 1] and their teacher-forcing inputs (N, L - 1, C)."""
    ids = tokenizer.encode(tok, (x - SHIFT) / SCALE)
    return ids, torch.cat([tok.teacher_inputs(chunk) for chunk in ids.split(500)])


@dataclass(frozen=True)
class NextScale(Prior):
    def check_tokens(self, cfg):
        super().check_tokens(cfg)
        if cfg.tokens is None:
            cfg.tokens = "auto"
        if cfg.levels is not None:
            raise UnnoiseError(LEVELS)

    def requires(self, cfg):
        return {"tokenizer": tokenizer.stage(cfg, single_scale=False)}

    def build(self, cfg, num_classes, parts):
        tok = parts["tokenizer"]
        levels = torch.cat([torch.full((p * p,), k) for k, p in enumerate(tok.scales)])  # (L,)
        classes = num_classes if cfg.conditional else 0
        net = Transformer(tok.vocab, levels, cfg.width, cfg.depth, cfg.heads, classes, in_features=tok.dim)
        net.__dict__["tokenizer"] = tok  # used, not trained or saved
        return net

    def prepare(self, cfg, dataset, parts):
        """The training images' pyramids and inputs, computed once from the frozen tokenizer."""
        ids, inputs = pyramid(parts["tokenizer"], dataset.x)
        return {"tokens": ids, "inputs": inputs}, dataset.y

    def loss(self, net, cfg, rows, y, generator):
        logits = net(rows["inputs"], y)  # (B, L, V)
        return F.cross_entropy(logits.transpose(1, 2), rows["tokens"])

    def lengths(self, run):
        return run.net.tokenizer.lengths

    def next_inputs(self, run, picked, k, f_hat):
        """Add scale k's codes to f_hat; the next input is f_hat area-downsampled to scale k + 1."""
        tok = run.net.tokenizer
        side = tok.scales[k]
        f_hat = tok.embed_scale(picked.view(-1, side, side), k) + (0 if f_hat is None else f_hat)
        return tok.next_input(f_hat, k), f_hat  # (B, p_{k+1}^2, C)

    def decode(self, run, ids):
        return run.net.tokenizer.decode(ids)

    def bits(self, run, x, y=None):
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


VAR = NextScale("var", "next-scale prediction (VAR) over a multi-scale tokenizer", defaults=TRANSFORMER, order="scales")
