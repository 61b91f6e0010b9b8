"""The vq family: VAR's multi-scale residual tokenizer, or with one scale a plain VQ-VAE (tokenizers/multiscale.py).

A tokenizer is a run like any other. The priors that use one (ar --tokens, var) keep a copy in their
own folder, `tokenizer/`, and the sha256 of its weights in their config, so a prior is never loaded
against a tokenizer it was not trained on.
"""

import hashlib
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import dist
from ..checkpoint import atomic_write
from ..errors import UnnoiseError
from ..tokenizers.multiscale import MultiScaleVQ, parse_scales

SUBFOLDER = "tokenizer"
FILES = ("model.safetensors", "config.json")


def build(cfg, num_classes=0, folder=None):
    scales = parse_scales(cfg.scales, int(cfg.scales.split(",")[-1]))
    return MultiScaleVQ(cfg.channels, cfg.size, scales, cfg.codebook, cfg.latent_channels, cfg.width, warmup=cfg.warmup)


def prepare(cfg, dataset, folder, progress=True):
    return {"x": dataset.normalize(dataset.x)}, dataset.y  # (N, C, H, W) in [-1, 1]


WHOLE_BATCH = True  # k-means init and dead-code restarts read the batch: every process computes all of it


def loss(net, cfg, rows, y, generator):
    """|decoder(f_hat) - x|^2 plus VAR's per-prefix VQ loss (no LPIPS or GAN term at this size)."""
    x = rows["x"]
    reconstruction, vq_loss = net(x)
    return F.mse_loss(reconstruction, x) + vq_loss


def sample(run, *args, **kwargs):
    raise UnnoiseError(
        f"{run.folder} is a tokenizer (--family vq): it encodes and decodes but does not "
        f"sample; train a prior on it: unnoise train --family var --tokens {run.folder} --out RUN"
    )


def digest(folder):
    """sha256 of a tokenizer run's weights."""
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


def ensure(cfg, folder, single_scale, progress=True):
    """The prior's tokenizer run in folder/tokenizer: trained there (tokens auto) or copied from cfg.tokens."""
    from ..train import train

    sub = Path(folder) / SUBFOLDER
    present = (sub / "config.json").exists()
    dist.barrier()  # every process has looked before rank 0 writes (under torchrun)
    if not present:
        if cfg.tokens == "auto":
            from ..config import TrainConfig
            from ..tokenizers.multiscale import latent_side

            scales = str(latent_side(cfg.size)) if single_scale else None
            tok_cfg = TrainConfig(
                data=cfg.data, family="vq", size=cfg.size, channels=cfg.channels, seed=cfg.seed, scales=scales
            )
            if progress:
                print(f"training the tokenizer ({'single' if single_scale else 'multi'}-scale) into {sub}")
            train(tok_cfg, sub, progress=progress)
        else:
            source = Path(cfg.tokens)
            load(source, cfg, single_scale)  # refuse anything but a fitting tokenizer
            for name in FILES if dist.is_main() else ():  # config.json last: a half-copied tokenizer is not one
                atomic_write(sub / name, lambda tmp, name=name: shutil.copyfile(source / name, tmp))
            dist.barrier()
    cfg.tokenizer_hash = cfg.tokenizer_hash or digest(sub)
    return load(sub, cfg, single_scale)


def load(folder, cfg, single_scale):
    """The tokenizer network (eval mode) of a vq run folder, checked against the prior's data and kind."""
    from ..run import Run

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise UnnoiseError(
            f"--tokens {folder}: not a tokenizer run (no config.json); train one with "
            f"unnoise train --family vq --data {cfg.data} --out RUN, or pass --tokens auto"
        )
    run = Run.load(folder)
    if run.cfg.family != "vq":
        raise UnnoiseError(f"--tokens {folder}: a {run.cfg.family} run, not a tokenizer (--family vq)")
    if (run.cfg.data, run.cfg.size) != (cfg.data, cfg.size) or (cfg.channels and run.cfg.channels != cfg.channels):
        raise UnnoiseError(
            f"--tokens {folder}: a tokenizer of {run.cfg.data} at {run.cfg.size}x{run.cfg.size}, "
            f"but this run models {cfg.data} at {cfg.size}x{cfg.size}"
        )
    scales = run.net.scales
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
    return run.net.requires_grad_(False)


def check_hash(cfg, folder):
    """Refuse a prior whose tokenizer/ is not the one it was trained on."""
    sub = Path(folder) / SUBFOLDER
    if not (sub / "model.safetensors").exists():
        raise UnnoiseError(f"{folder} is a {cfg.family} run without its tokenizer ({sub} is missing)")
    if cfg.tokenizer_hash and digest(sub) != cfg.tokenizer_hash:
        raise UnnoiseError(
            f"{sub} is not the tokenizer {folder} was trained on (its codebook and weights "
            "differ); put back the original or train the prior again"
        )


@torch.no_grad()
def encode(tok, x, batch=500):
    """Token ids (N, L) of images x (N, C, H, W) in model units, in batches."""
    return torch.cat([tok.tokens(chunk) for chunk in x.split(batch)])
