"""diffusion, flow and edm: one Gaussian path (paths.py), one loss (losses.py), samplers over the path."""

import functools

import torch

from .. import source
from ..coupling import couple, paired_noise
from ..losses import training_loss
from ..nets import MLP
from ..nets.unet import UNet
from ..paths import make_path, sample_times


def build(cfg, num_classes, folder=None):
    """An MLP for 2D points, a U-Net for images."""
    classes = num_classes if cfg.conditional else 0
    if cfg.size is not None:
        return UNet(channels=cfg.channels, width=cfg.width, num_classes=classes, size=cfg.size, patch=cfg.patch)
    return MLP(dim=cfg.dim or 2, width=cfg.width, depth=cfg.depth, num_classes=classes)


@functools.lru_cache(maxsize=16)
def path_of(schedule, sigma_data):
    return make_path(schedule, sigma_data=sigma_data)


def prepare(cfg, dataset, folder, progress=True):
    """Data in model units; a reflow run trains on the (sample, noise, label) triples in its folder."""
    source.start_training(cfg, dataset, folder)
    if cfg.coupling == "reflow":
        from ..reflow import load_pairs

        x0, eps, y = load_pairs(folder)
        return {"x0": x0, "eps": eps}, y
    return {"x0": dataset.normalize(dataset.x)}, dataset.y  # (N, 2) or (N, C, H, W)


def draw(cfg, rows, generator):
    """The batch's randomness for every row of the global batch: noise paired by the coupling, then times
    (drawn once for the whole batch, so an OT pairing and every process see the same draws)."""
    x0 = rows["x0"]  # (B, ...)
    start = source.for_training(cfg.source, cfg.data)
    if "eps" in rows:
        eps = rows["eps"]
    elif start.gaussian:
        eps = paired_noise(cfg.coupling, x0, generator)
    else:  # source points stand in for the noise
        eps = couple(cfg.coupling, x0, start.draw(len(x0), generator), generator)
    t = sample_times(path_of(cfg.schedule, cfg.sigma_data), cfg.time_density, len(x0), generator)  # (B,)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator)
    return {"x0": x0, "eps": eps, "t": t}


def loss(net, cfg, rows, y, generator):
    """The denoising / flow-matching loss (or EDM's) on the batch that draw() paired with its noise and times."""
    return training_loss(
        net, path_of(cfg.schedule, cfg.sigma_data), cfg, rows["x0"], y, generator, eps=rows.get("eps"), t=rows.get("t")
    )
