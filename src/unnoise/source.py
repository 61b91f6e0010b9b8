"""Where a flow starts: N(0, I), or any other distribution one can draw from (Tong et al. 2023, Sec. 5.1:
8 gaussians -> moons).

Flow matching needs nothing Gaussian: it joins a source draw x1 and a data point x0 by the straight path
x_t = (1 - t) x0 + t x1 and regresses the velocity x1 - x0. With `--source 8gaussians` (or any built-in
set, or a point file of the same dimension) the source points play the part of the noise everywhere:
training pairs, the OT coupling, reflow's pairs, the sampler's start and the figures' start.

Units. A source lives in the data's coordinates and enters model units through the *data's* map
(Dataset.normalize), so the figures show source and data in one frame as given. The source is a pool of
points stored in the run folder (source.safetensors: a 20,000-point draw of a named set, or a file's
training part), so a run never reads a path its config names. Only deterministic (ODE) samplers are
valid: the stochastic ones re-inject Gaussian noise, which this path never had.
"""

import functools
import math
from pathlib import Path

import torch

from . import dist
from .checkpoint import load_tensors, save_tensors
from .data import points_file, toy2d
from .errors import UnnoiseError

GAUSSIAN = "gaussian"
FILE = "source.safetensors"
POOL = 20000
POOL_SEED = 3  # a draw of a named set that no split (train 0, heldout 1, fresh 2) uses


def names():
    return (GAUSSIAN,) + toy2d.NAMES


def check_name(name):
    """A source is gaussian, a built-in set or a point file: one line otherwise."""
    if name != GAUSSIAN and name not in toy2d.NAMES and not points_file.is_file(name):
        raise UnnoiseError(
            f"unknown source {name!r}; choose one of {', '.join(names())}, or a point file "
            "(.npy, .csv, .txt) of the data's dimension"
        )


def draw_pool(name):
    """The source's points in data units, (M, D): a fixed draw of a named set, or a file's training part."""
    if name in toy2d.NAMES:
        return toy2d.draw(name, POOL, POOL_SEED)[0]
    return points_file.part(name, "train")


def write(cfg, folder):
    """Store the source pool in a new run's folder, checked against the data's dimension; a run that has one keeps it
    (a resume or a reflow never reads the source's name again)."""
    if cfg.source == GAUSSIAN or (Path(folder) / FILE).exists():
        return
    points = draw_pool(cfg.source)
    if points.shape[1] != (cfg.dim or 2):
        raise UnnoiseError(
            f"the source {cfg.source} has {points.shape[1]} numbers per point but {cfg.data} has "
            f"{cfg.dim or 2}; give a source of the data's dimension"
        )
    if dist.is_main():
        save_tensors(Path(folder) / FILE, {"points": points.contiguous()})


@functools.lru_cache(maxsize=8)
def _read(path, mtime):
    points = load_tensors(path)["points"]
    if points.dim() != 2 or not torch.isfinite(points).all():
        raise UnnoiseError(f"{path} does not hold finite source points (M, D)")
    return points.float()


def pool(folder, dim):
    """The source pool a run folder holds, data units (M, D), checked against the data's dimension."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise UnnoiseError(f"{folder} is a run with a non-Gaussian source but its {FILE} is missing")
    points = _read(str(path), path.stat().st_mtime_ns)
    if points.shape[1] != dim or len(points) == 0:
        raise UnnoiseError(
            f"{path} holds points of shape {tuple(points.shape)}; the run's data has {dim} numbers per point"
        )
    return points


class Source:
    """Draws from a run's source in model units: N(0, I), or rows of its pool (data units) mapped by the data's
    units, (points - shift) / scale."""

    def __init__(self, name, points=None, shift=None, scale=None):
        self.name, self.shift, self.scale = name, shift, scale
        self.points = None if points is None else (points - shift) / scale  # (M, D) model units

    @property
    def gaussian(self):
        return self.points is None

    def draw(self, n, generator):
        """n training draws (n, D), from the training generator."""
        return self.points[torch.randint(len(self.points), (n,), generator=generator)]

    def initial(self, noise):
        """Sample i's start from its own generator (samplers.PerSampleNoise), so it depends only on (seed, i)."""
        rows = torch.cat([torch.randint(len(self.points), (1,), generator=g) for g in noise.generators])
        return self.points[rows]

    def log_prob(self, z):
        """log density at model-unit points z (B, D), float64. Known for 8gaussians (a mixture of 8 isotropic
        Gaussians, std 0.1, on the circle of radius 2) only."""
        if self.name != "8gaussians":
            raise UnnoiseError(
                f"the likelihood needs the source's density, known for gaussian and 8gaussians, not {self.name}"
            )
        angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centers = 2.0 * torch.stack([angle.cos(), angle.sin()], 1)  # (8, 2) data units
        return mixture_log_prob(z, centers, toy2d.NOISE["8gaussians"], self.shift, self.scale)


def mixture_log_prob(z, centers, std, shift, scale):
    """log (1/K) sum_k N(x; c_k, std^2 I) at x = z * scale + shift, plus log |det| of that map: a model-unit density."""
    x = z.double() * scale.double() + shift.double()  # (B, D) data units
    sq = (x[:, None, :] - centers[None]).square().sum(-1)  # (B, K)
    log_n = -0.5 * sq / std**2 - 0.5 * x.shape[1] * math.log(2 * math.pi * std**2)
    return torch.logsumexp(log_n, 1) - math.log(len(centers)) + torch.log(scale.double()).sum()


def of_run(run):
    """The Source a loaded run starts from (its pool read from the run folder)."""
    name = run.cfg.source
    if name == GAUSSIAN:
        return Source(name)
    return Source(name, pool(run.folder, run.shape[0]), run.shift, run.scale)
