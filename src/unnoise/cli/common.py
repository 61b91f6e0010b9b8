"""What several commands share: the one-line argparse, the sampling and guidance arguments, drawing samples, and
writing points or images."""

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import data, dist, guidance, samplers
from ..checkpoint import atomic_write
from ..errors import UnnoiseError, positive_int
from ..run import Run

TEXT_SAMPLES = 4
GUIDANCE_HELP = (
    "classifier-free guidance weight w: out = out_uncond + w (out_cond - out_uncond), on eps, x0 or "
    "velocity alike; w=1 (default) is the conditional model, w=0 the unconditional one, w>1 sharper "
    "classes (Ho & Salimans' w is this w - 1); needs a --conditional run"
)


class Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line and exit code 2 like every other unnoise error."""

    def error(self, message):
        command = self.prog.partition(" ")[2]
        raise UnnoiseError(f"{command}: {message}" if command else message)


def positive(name):
    def parse(text):
        try:
            return positive_int(name, text)
        except UnnoiseError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def class_label(text):
    """--class: a class index or 'each'."""
    if text == "each":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--class takes a class index or 'each', not {text!r}") from None


def add_dist(p):
    p.add_argument(
        "--dist-timeout",
        type=positive("dist-timeout"),
        default=dist.TIMEOUT,
        help=f"under torchrun: seconds a process waits for the others before it stops with the rank "
        f"named (default {dist.TIMEOUT})",
    )


def add_count(p, default, what):
    """-n / --num-samples (and --n, which torchrun's own options shadow: use it only in one process)."""
    p.add_argument("-n", "--num-samples", "--n", dest="n", type=positive("n"), default=default, help=what)


def add_guidance(p):
    """--guidance, --class and --autoguide, for every command that samples."""
    p.add_argument("--guidance", type=float, default=1.0, metavar="W", help=GUIDANCE_HELP)
    p.add_argument(
        "--class",
        dest="label",
        type=class_label,
        metavar="C",
        help="draw class C of a conditional run, or 'each' for every class in turn (default: unconditional "
        "for 2D runs; every class in turn for image runs and with --guidance)",
    )
    p.add_argument(
        "--autoguide",
        metavar="RUN",
        help="diffusion, flow, edm: guide by this weaker run of the same data (shorter or smaller) in place of the "
        "unconditional model, out = out_RUN + w (out - out_RUN) with w = --guidance (autoguidance, Karras et al. "
        "2024); works for unconditional runs too",
    )


def add_data(p):
    p.add_argument(
        "--data",
        metavar="NAME",
        help="the data to measure against, or to read units from, instead of the "
        "run's own: needed for a run trained on an image folder (a run folder's paths are never followed), "
        "and for a point-file run saved before runs kept a copy; same kind and dimension as the run",
    )


def add_sampling(p):
    p.add_argument(
        "--sampler",
        choices=samplers.NAMES,
        help="diffusion, flow, edm: default dpmpp_2m (DPM-Solver++(2M)) for points, dpmpp_2m_sde for images, "
        "euler for a flow run with a --source",
    )
    nfe = ", ".join(f"{s.default_nfe} for {name}" for name, s in samplers.SAMPLERS.items() if s.default_nfe != 50)
    p.add_argument(
        "--nfe",
        type=positive("nfe"),
        help=f"diffusion, flow, edm: network evaluations per sample (default {nfe}, 50 for the other samplers)",
    )
    p.add_argument(
        "--eta",
        type=float,
        help="noise in [0, 1] of ddim (default 0), euler_ancestral, dpmpp_2m_sde and dpmpp_3m_sde (default 1)",
    )
    p.add_argument("--s-churn", type=float, help="heun / euler: EDM's stochastic churn S_churn (default 0)")
    p.add_argument(
        "--spacing",
        choices=samplers.SPACINGS,
        help="time grid: diffusers' spacings, or Karras / exponential noise levels "
        "(default karras on the edm schedule and for heun and rk4 on diffusion paths, trailing "
        "elsewhere); see docs/samplers.md",
    )
    p.add_argument(
        "--no-clip",
        dest="clip",
        action="store_false",
        help="diffusion, flow, edm: leave the x0 estimate unclamped (by default it is clamped to the training data's "
        "range, as diffusers' clip_sample does; docs/diffusers.md)",
    )
    add_count(p, None, f"number of samples (default 2000; text: {TEXT_SAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="sample i depends only on (seed, i)")
    add_guidance(p)
    add_data(p)
    p.add_argument("--temperature", type=float, help="ar, var: divide the logits by this (default 1)")
    p.add_argument("--top-k", type=int, help="ar, var: draw among the k likeliest tokens only (default: all)")
    p.add_argument(
        "--top-p",
        type=float,
        help="ar, var: nucleus sampling, the likeliest tokens holding this much probability, in (0, 1] (default 1)",
    )
    p.add_argument("--length", type=positive("length"), help="text: characters per sample (default: the context)")
    p.add_argument("--prompt", help="text: the sample's first characters (ar continues them; mdlm, duo fill the rest)")
    p.add_argument("--suffix", help="text, mdlm and duo: the sample's last characters, so the model fills the middle")
    p.add_argument(
        "--unmask",
        choices=("random", "confident"),
        help="mdlm: ancestral order (random, default) or LLaDA's low-confidence remasking, surest first (confident)",
    )
    p.add_argument(
        "--guidance-ramp",
        action="store_true",
        help="ar, var: VAR's guidance ramp, from w = 1 at the first level (scale or token) to --guidance at the last",
    )
    add_dist(p)


@dataclass
class Drawn:
    """Samples a command drew: the run, the samples in data units, their labels (None: unconditional), the sampler
    in words, network evaluations per sample (counted) and the seconds it took."""

    run: Run
    x: torch.Tensor
    labels: torch.Tensor | None
    sampler: str
    nfe: float
    seconds: float


def draw(args, run=None):
    """Sample the run as the sampling arguments say (sharded over processes under torchrun)."""
    run = run or Run.load(args.run, args.data)
    start = time.perf_counter()
    evals = []  # (evaluation index within its batch) per network evaluation
    names = ("s_churn", "temperature", "top_k", "top_p", "length", "prompt", "suffix", "unmask")
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.guidance_ramp:
        options["guidance_ramp"] = True
    if not args.clip:
        options["clip"] = False
    if args.n is None:
        args.n = TEXT_SAMPLES if run.text else 2000  # a text sample is a passage: a few by default
    label = args.label
    if label is None and run.images and run.cfg.conditional:
        label = guidance.EACH  # image runs: one row per class, and class accuracy
    if args.autoguide is not None:
        options["guide"] = Run.load(args.autoguide)
    x = dist.sample(
        run,
        args.n,
        sampler=args.sampler,
        nfe=args.nfe,
        seed=args.seed,
        eta=args.eta,
        spacing=args.spacing,
        progress=True,
        callback=lambda i, *_: evals.append(i),
        label=label,
        guidance=args.guidance,
        **options,
    )
    labels = None
    if label is not None or (args.guidance != 1 and args.autoguide is None):  # autoguided: unconditional
        labels = guidance.labels(run, label, 0, args.n)
    nfe = len(evals) / max(1, evals.count(0))  # evaluations per sample, counted
    return Drawn(run, x, labels, run.family.sampler_name(run, args.sampler), nfe, time.perf_counter() - start)


def check_output(path, suffixes):
    path = Path(path)
    if path.suffix not in suffixes:
        raise UnnoiseError(f"--out {path}: write {' or '.join(suffixes)}")
    return path


def write_points(points, out, title):
    """Save (n, 2) points as .npy, or as a scatter plot .png."""
    from ..viz import figures2d

    if out.suffix == ".npy":
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), points.numpy()))
    else:
        figures2d.save(figures2d.pairs(points, title=title), out)  # a scatter for 2D, pairs beyond
    print(f"wrote {len(points)} points to {out}")


def write_images(images, out, labels=None, title=None):
    """Save images (n, C, H, W) in [0, 1] as .npy, or as a .png grid (one row per class when labelled)."""
    from ..viz import figures2d
    from ..viz.images import sample_grid

    if out.suffix == ".npy":
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), images.numpy()))
    else:  # a grid of at most 10 per class, or of the first 100
        shown = images if labels is not None else images[:100]
        figures2d.save(sample_grid(shown, labels, title=title), out)
    print(f"wrote {len(images)} images ({'x'.join(map(str, images.shape[1:]))}) to {out}")


def write_text(run, ids, out):
    """Save text samples (n, length) as one paragraph each, separated by a blank line."""
    from ..families.text import decode

    passages = "\n\n".join(decode(run, row) for row in ids) + "\n"
    atomic_write(out, lambda tmp: Path(tmp).write_text(passages, encoding="utf-8"))
    print(f"wrote {len(ids)} samples of {ids.shape[1]} characters to {out}")


def real_points(run, split, n, label=None):
    """n real points of the split, or of class `label` only (what --class samples are compared with)."""
    if label in (None, "each"):
        return data.load(run.cfg.data, split, n).x
    real = data.load(run.cfg.data, split, n * run.num_classes * 2)
    return real.x[real.y == label][:n]
