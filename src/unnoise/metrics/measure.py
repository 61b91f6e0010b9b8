"""The measurements the explainer page, the claims and the benchmarks share: a run's image quality beside its floor,
W2 against the number of network evaluations, milliseconds per image, and the CPU they were measured on.

Each takes trained runs and returns plain numbers; none trains.
"""

import platform
import statistics
import time

import torch

from .. import data
from ..guidance import EACH
from . import points as point_metrics

NFE = 20  # network evaluations of the continuous families' image sampler (dpmpp_2m)
W2_N = 1000  # points behind each W2 figure (and its floor)
W2_NFE = (2, 4, 8, 16, 32)  # the budgets of the W2 curves


def cpu_name():
    """The CPU's model name (Linux), for the stamps of figures and benchmark results."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def label_of(run, label):
    """label for a conditional run; None (unconditional) for one trained without classes."""
    return label if run.cfg.conditional else None


def image_sampler(run, nfe=NFE):
    """The sampling options images are measured with: dpmpp_2m at nfe for a continuous run; a token run's own
    sampler (one pass per token or scale) takes none."""
    return run.family.sampler_options("dpmpp_2m", nfe)


def image_quality(run, n=None, nfe=NFE, **options):
    """Class accuracy (conditional runs) and FID beside its floor, for n samples (default: as many as held-out
    images) of every class in turn; options go to run.sample (guidance=...)."""
    from .images import report

    n = n or len(run.dataset.x)
    images = run.sample(n, seed=0, label=label_of(run, EACH), **image_sampler(run, nfe), **options)
    labels = torch.arange(n) % run.num_classes if run.cfg.conditional else None
    r = report(images, labels, run.cfg.data, run.cfg.size, run.cfg.channels, verbose=False, kid_too=False)
    return {
        "accuracy": r["class_accuracy"],
        "fid": r["fid"],
        "floor": r["fid_floor"],
        "ratio": r["fid"] / r["fid_floor"],
        "level": r["fid_level"],  # real data's expected level (metrics/level.py), None where not stored
        "n": r["n"],
    }


def ms_per_image(run, repeats=3, nfe=NFE):
    """Median milliseconds to draw one image (batch 1) after a warm-up, on this machine's threads."""
    extra = image_sampler(run, nfe)
    run.sample(1, label=label_of(run, 0), **extra)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        run.sample(1, seed=seed + 1, label=label_of(run, 0), **extra)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def w2_curves(methods, nfes=W2_NFE, n=W2_N):
    """Exact W2 to n held-out points against NFE for each (name, run, sampler) of methods, beside the
    real-vs-real floor at the same n."""
    curves, floors = [], {}
    for name, run, sampler in methods:
        held = data.load(run.cfg.data, "heldout", n).x
        if run.cfg.data not in floors:
            floors[run.cfg.data] = point_metrics.w2_floor(run.cfg.data, held)  # mean of 4 real draws
        usable = [nfe for nfe in nfes if sampler != "heun" or nfe >= 3]  # Heun: 2 NFE per step
        ys = [point_metrics.w2(run.sample(n, sampler, nfe, seed=2), held) for nfe in usable]
        curves.append({"name": name, "nfe": usable, "w2": ys, "run": str(run.folder), "floor": floors[run.cfg.data]})
    return {"nfe": list(nfes), "curves": curves, "floor": curves[0]["floor"] if curves else None, "n": n}
