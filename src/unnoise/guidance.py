"""Classifier-free guidance (Ho & Salimans 2022) over any denoiser, diffusion or flow.

    out_w = out_uncond + w * (out_cond - out_uncond)

for out = eps, x0 or velocity alike: the three are affine in one another at fixed (x, t), and the
weights (1 - w) and w sum to one, so guiding any of them gives the same sampler step.
w = 1 is the conditional model unchanged, w = 0 the unconditional one, w > 1 sharpens each class.
(Ho & Salimans write eps = (1 + w') eps_cond - w' eps_uncond; their w' is our w - 1.)

Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself") puts a weaker
run of the same data in place of the unconditional model: out_w = out_guide + w (out - out_guide), both
with the same class (or none: it guides unconditional runs too).
"""

import math

import torch

from .errors import UnnoiseError

EACH = "each"  # label meaning every class in turn: sample i gets class i mod classes


def check(run, label, w, guide=None):
    """Raise unless label and w (and the autoguidance run guide) make sense for run."""
    if not math.isfinite(w) or w < 0:
        raise UnnoiseError(f"guidance must be a finite number >= 0, got {w}")
    if guide is not None:
        check_guide(run, guide, label)
    if not run.cfg.conditional and (label is not None or (w != 1 and guide is None)):
        raise UnnoiseError(
            f"{run.folder} is not a conditional model; --class and --guidance need one trained with --conditional"
        )
    if label == EACH:
        return
    if label is not None and not (isinstance(label, int) and 0 <= label < run.num_classes):
        raise UnnoiseError(f"class {label} is not one of the trained classes 0..{run.num_classes - 1}")


def check_guide(run, guide, label):
    """Raise unless guide can autoguide run: a run of the same kind on the same Gaussian path, data shape and units."""
    if run.path is None or guide.path is None:
        raise UnnoiseError(
            "--autoguide is for diffusion, flow and edm runs; ar and var runs guide with --guidance only"
        )
    ours = (run.cfg.schedule, run.cfg.sigma_data, run.cfg.source, run.shape)
    theirs = (guide.cfg.schedule, guide.cfg.sigma_data, guide.cfg.source, guide.shape)
    if ours != theirs:
        raise UnnoiseError(
            f"--autoguide {guide.folder} cannot guide {run.folder}: it must share the run's path and "
            f"data (schedule, sigma-data, source, shape {ours}), but has {theirs}"
        )
    if not run.images and not all(torch.allclose(getattr(run, k), getattr(guide, k)) for k in ("shift", "scale")):
        raise UnnoiseError(
            f"--autoguide {guide.folder} was trained on other points than {run.folder} "
            "(their units differ): guide a run with a weaker run of the same data"
        )
    if label is not None and not (guide.cfg.conditional and guide.num_classes == run.num_classes):
        raise UnnoiseError(
            f"--autoguide {guide.folder} must be conditional on the run's {run.num_classes} classes "
            "to guide a --class draw"
        )


def labels(run, label, start, stop):
    """Class of samples start..stop-1: `label`, or every class in turn (i mod classes) for None or EACH."""
    if label not in (None, EACH):
        return torch.full((stop - start,), label, dtype=torch.long)
    return torch.arange(start, stop) % run.num_classes


def guided(cond, uncond, w):
    """The denoiser (x, t) -> (x0, eps) of eq. above, from the conditional and unconditional ones."""

    def denoise(x, t):
        x0_c, eps_c = cond(x, t)
        x0_u, eps_u = uncond(x, t)
        return x0_u + w * (x0_c - x0_u), eps_u + w * (eps_c - eps_u)

    return denoise


def model_for(run, label, w, start, stop, clip=True, guide=None):
    """The denoiser for samples start..stop-1 (label, w, guide already checked): unconditional when neither is
    asked; autoguided by the run guide when given."""
    if guide is not None:
        y = None if label is None else labels(run, label, start, stop)
        cond = run.model(y, clip=clip)
        return cond if w == 1 else guided(cond, guide.model(y, clip=clip), w)
    if label is None and w == 1:
        return run.model(clip=clip)
    y = labels(run, label, start, stop)
    cond = run.model(y, clip=clip)
    return cond if w == 1 else guided(cond, run.model(clip=clip), w)
