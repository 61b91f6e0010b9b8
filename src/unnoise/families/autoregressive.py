"""Raster autoregressive models ("line by line": PixelCNN, ImageGPT, LlamaGen), on the one transformer.

Over pixels: intensities quantized to K levels, read row by row (channels last), each predicted from
all before it; the held-out bits per dimension are exact, -log2 p(x) / D on that K-level grid. Over
tokens (--tokens): the raster sequence of a single-scale VQ tokenizer's code map, so token order can be
compared with VAR's next-scale order while the tokenizer stays of the same kind.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.images import SCALE, SHIFT
from ..errors import UnnoiseError, positive_int
from ..nets.transformer import Transformer
from . import tokenizer
from . import tokens as token_sampling
from .text import AR_TEXT
from .tokens import LEVELS, TRANSFORMER, Prior


def pixels(cfg):
    return cfg.tokens is None


def length_of(cfg, tok=None):
    return cfg.size * cfg.size * cfg.channels if pixels(cfg) else tok.side * tok.side


def quantize(x, levels):
    """Images (N, C, H, W) in [0, 1] -> raster token ids (N, H W C) in 0..levels-1."""
    return (x * (levels - 1)).round().long().clamp(0, levels - 1).permute(0, 2, 3, 1).flatten(1)


def dequantize(ids, levels, channels, size):
    """Inverse of quantize, in model units [-1, 1]: (N, L) -> (N, C, H, W)."""
    x = ids.view(-1, size, size, channels).permute(0, 3, 1, 2).float() / (levels - 1)
    return (x - SHIFT) / SCALE


def encode(cfg, x, tok):
    """Token ids (N, L) of images x (N, C, H, W) in [0, 1]."""
    if pixels(cfg):
        return quantize(x, cfg.levels)
    return tokenizer.encode(tok, (x - SHIFT) / SCALE)


@dataclass(frozen=True)
class Raster(Prior):
    def on(self, kind):
        return AR_TEXT if kind == "text" else self

    def check_tokens(self, cfg):
        super().check_tokens(cfg)
        if cfg.tokens is None:
            cfg.levels = positive_int("levels", cfg.levels or (17 if cfg.data == "digits" else 16))
            if cfg.levels < 2 or cfg.levels > 256:
                raise UnnoiseError(f"--levels must lie in 2..256, got {cfg.levels}")
        elif cfg.levels is not None:
            raise UnnoiseError(LEVELS)

    def requires(self, cfg):
        return {} if pixels(cfg) else {"tokenizer": tokenizer.stage(cfg, single_scale=True)}

    def build(self, cfg, num_classes, parts):
        tok = None if pixels(cfg) else parts["tokenizer"]
        vocab = cfg.levels if pixels(cfg) else tok.vocab
        classes = num_classes if cfg.conditional else 0
        net = Transformer(vocab, torch.arange(length_of(cfg, tok)), cfg.width, cfg.depth, cfg.heads, classes)
        net.__dict__["tokenizer"] = tok  # used, not trained or saved
        return net

    def prepare(self, cfg, dataset, parts):
        return {"tokens": encode(cfg, dataset.x, parts.get("tokenizer"))}, dataset.y

    def loss(self, net, cfg, rows, y, generator):
        """Next-token cross-entropy: position i predicts token i from tokens < i (and the class)."""
        ids = rows["tokens"]  # (B, L)
        logits = net(ids[:, :-1], y)  # (B, L, V)
        return F.cross_entropy(logits.transpose(1, 2), ids)

    def label(self, run):
        return f"ar ({'pixels' if pixels(run.cfg) else 'VQ tokens'})"

    def lengths(self, run):
        return [1] * run.net.length

    def next_inputs(self, run, picked, k, state):
        return picked, None  # the token just drawn, (B, 1)

    def decode(self, run, ids):
        if pixels(run.cfg):
            return dequantize(ids, run.cfg.levels, run.cfg.channels, run.cfg.size)
        return run.net.tokenizer.decode(ids)

    def bits(self, run, x, y=None):
        """Held-out code length: bits per dimension on the K-level grid (pixels, exact) or bits per image (tokens)."""
        ids = encode(run.cfg, x, run.net.tokenizer)
        per_image, _ = token_sampling.nll_bits(run, ids, ids[:, :-1], y)
        dims = ids.shape[1]
        return {
            "bits_per_image": float(per_image.mean()),
            "bits_per_image_stderr": float(per_image.std() / len(ids) ** 0.5),
            "bpd": float(per_image.mean() / dims) if pixels(run.cfg) else None,
            "n": len(ids),
            "grid": f"{run.cfg.levels} levels" if pixels(run.cfg) else f"{run.net.vocab} codes x {dims} tokens",
        }


AR = Raster(
    "ar",
    "raster autoregressive over pixels, or over a tokenizer's codes with --tokens",
    defaults=TRANSFORMER,
    order="raster",
)
