"""The vq family: VAR's multi-scale residual tokenizer, or with one scale a plain VQ-VAE (tokenizers/multiscale.py).

A tokenizer is a run like any other. The priors that use one (ar --tokens, var) ask for it as a part
(`stage`): the pipeline trains it into, or copies it to, their own folder's `tokenizer/`, and keeps the
sha256 of its weights in their config, so a prior is never loaded against a tokenizer it was not trained on.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UnnoiseError
from ..tokenizers.multiscale import MultiScaleVQ, latent_side, parse_scales
from .base import Stage
from .tokens import LEVELS, TokenFamily

SUBFOLDER = "tokenizer"
DEFAULT_SCALES = {8: "1,2,3,4,6,8", 7: "1,2,3,5,7"}  # latent side -> VAR's scale list (others: 1,2,..)


@dataclass(frozen=True)
class Tokenizer(TokenFamily):
    """It encodes and decodes; it does not sample."""

    generates: bool = False
    whole_batch: bool = True  # k-means init and dead-code restarts read the batch: every process computes all of it

    def check_tokens(self, cfg):
        side = latent_side(cfg.size)
        cfg.scales = ",".join(map(str, parse_scales(cfg.scales or DEFAULT_SCALES.get(side, side), side)))
        if cfg.levels is not None:
            raise UnnoiseError(LEVELS)

    def build(self, cfg, num_classes=0, parts=None):
        scales = parse_scales(cfg.scales, int(cfg.scales.split(",")[-1]))
        return MultiScaleVQ(
            cfg.channels, cfg.size, scales, cfg.codebook, cfg.latent_channels, cfg.width, warmup=cfg.warmup
        )

    def prepare(self, cfg, dataset, parts):
        return {"x": dataset.normalize(dataset.x)}, dataset.y  # (N, C, H, W) in [-1, 1]

    def loss(self, net, cfg, rows, y, generator):
        """|decoder(f_hat) - x|^2 plus VAR's per-prefix VQ loss (no LPIPS or GAN term at this size)."""
        x = rows["x"]
        reconstruction, vq_loss = net(x)
        return F.mse_loss(reconstruction, x) + vq_loss

    def sample(self, run, *args, **kwargs):
        raise UnnoiseError(
            f"{run.folder} is a tokenizer (--family vq): it encodes and decodes but does not "
            f"sample; train a prior on it: unnoise train --family var --tokens {run.folder} --out RUN"
        )

    def forward_passes(self, run, nfe=None):
        return None

    def reconstructions(self, run, x):
        """Rows of a reconstruction figure for held-out images x in [0, 1]: (rows, row labels, title)."""
        tok = run.net
        prefixes = tok.decode_prefixes(tok.tokens(run.dataset.normalize(x)))
        rows = [x] + [run.to_data(p) for p in prefixes]
        labels = ["held-out"] + [f"to {p}x{p}" for p in tok.scales]
        return rows, labels, f"tokenizer, {tok.vocab} codes: decoded from the scales up to each size"

    def report(self, run, n, seed, likelihood=False):
        """Reconstruction error after each prefix of scales on held-out images, and code use."""
        from ..tokenizers.multiscale import reconstruction_report

        result = reconstruction_report(run.net, run.dataset.normalize(run.dataset.x))
        result.update(codes=run.net.summary())
        return result

    def report_lines(self, run, result):
        lines = [
            f"{run.cfg.data} tokenizer, scales {run.cfg.scales}, {run.cfg.codebook} codes; "
            f"{result['n']} held-out images, RMSE in [0, 1] pixel units after each prefix of scales:"
        ]
        used = result["codes"]["codes_used_per_scale"]
        for side, rmse, codes in zip(run.net.scales, result["rmse_per_prefix"], used):
            lines.append(f"  up to {side}x{side}: rmse {rmse:.4f}   codes in use at this scale {codes}")
        return lines + [f"  autoencoder without quantization: rmse {result['rmse_unquantized']:.4f}"]


def stage(cfg, single_scale):
    """The tokenizer a prior (cfg) is built on: trained in its folder (tokens auto) or copied from cfg.tokens."""
    scales = str(latent_side(cfg.size)) if single_scale else None
    settings = {
        "data": cfg.data,
        "family": "vq",
        "size": cfg.size,
        "channels": cfg.channels,
        "seed": cfg.seed,
        "scales": scales,
    }
    return Stage(
        settings,
        pin="tokenizer_hash",
        check=functools.partial(check, prior=cfg, single_scale=single_scale),
        given=None if cfg.tokens == "auto" else cfg.tokens,
        note=f"the tokenizer ({'single' if single_scale else 'multi'}-scale)",
    )


def check(folder, cfg, net, prior, single_scale):
    """Refuse a tokenizer run that does not fit the prior: cfg None where folder holds no run; net None to check
    the config alone."""
    if cfg is None:
        raise UnnoiseError(
            f"--tokens {folder}: not a tokenizer run (no config.json); train one with "
            f"unnoise train --family vq --data {prior.data} --out RUN, or pass --tokens auto"
        )
    if cfg.family != "vq":
        raise UnnoiseError(f"--tokens {folder}: a {cfg.family} run, not a tokenizer (--family vq)")
    if (cfg.data, cfg.size) != (prior.data, prior.size) or (prior.channels and cfg.channels != prior.channels):
        raise UnnoiseError(
            f"--tokens {folder}: a tokenizer of {cfg.data} at {cfg.size}x{cfg.size}, "
            f"but this run models {prior.data} at {prior.size}x{prior.size}"
        )
    if net is None:
        return
    scales = net.scales
    if single_scale and len(scales) != 1:
        raise UnnoiseError(
            f"--tokens {folder}: raster AR needs a single-scale tokenizer (--scales {scales[-1]}), "
            f"this one has scales {','.join(map(str, scales))}; VAR uses multi-scale ones"
        )
    if not single_scale and len(scales) == 1:
        raise UnnoiseError(
            f"--tokens {folder}: VAR needs a multi-scale tokenizer (e.g. --scales "
            f"1,2,3,4,6,{scales[0]}), this one has the single scale {scales[0]}"
        )


@torch.no_grad()
def encode(tok, x, batch=500):
    """Token ids (N, L) of images x (N, C, H, W) in model units, in batches."""
    return torch.cat([tok.tokens(chunk) for chunk in x.split(batch)])


VQ = Tokenizer(
    "vq",
    "a tokenizer (VAR's multi-scale VQ-VAE)",
    # used as trained (its codebook restarts do not average well), at the batch of 128 it was measured with
    defaults={
        "steps": 800,
        "batch_size": 128,
        "lr": 2e-3,
        "width": 16,
        "ema": 0.0,
        "warmup": 100,
        "latent_channels": 16,
    },
)
