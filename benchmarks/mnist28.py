"""MNIST at its native 28x28 under a training budget: `unnoise train --data mnist --size 28 --conditional`.

Issue 15's target: class accuracy >= 0.98 AND FID <= 1.2 x floor under all three judges within 10
minutes of training, with the defaults. The script trains the defaults (or one override, e.g.
`--patch 1` for the U-Net before patches, `--family flow`) for the budget, then scores n class-conditional samples
(the image default, dpmpp_2m_sde at 30 NFE; --sampler, --nfe) at w = 1, 1.1 and 1.25 (--scales) with
benchmarks/images.py's evaluate: accuracy, FID beside the floor under three judges, memorization, seconds per image.
The three 28x28 judges are trained on first use (about 9 minutes each here) and cached; their time is not part of
the budget.

    python benchmarks/mnist28.py [--seconds 600] [--patch P] [--width W] [--family F] [--batch B] [--n 1000] [--out DIR]
    python benchmarks/mnist28.py --run RUN --sampler dpmpp_2m_sde --nfe 30 --scales 1.25   # score a saved run again
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import common
import images
import unnoise
from unnoise.viz import figures2d
from unnoise.viz.images import sample_grid

TARGET = (0.98, 1.2)  # class accuracy, FID / floor under every judge
SCALES = (1.0, 1.1, 1.25)


def common_flags(args):
    """The command-line flags of the overrides given, e.g. ' --family flow --width 48'."""
    given = {
        "--family": None if args.family == "diffusion" else args.family,
        "--patch": args.patch,
        "--width": args.width,
        "--batch-size": args.batch,
    }
    return "".join(f" {flag} {value}" for flag, value in given.items() if value is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="training budget in wall seconds")
    parser.add_argument("--patch", type=int, default=None, help="the U-Net's patch side (default: the config's)")
    parser.add_argument("--width", type=int, default=None, help="the U-Net's base width (default: the config's)")
    parser.add_argument(
        "--family",
        default="diffusion",
        choices=("diffusion", "flow", "edm"),
        help="the continuous family (default diffusion)",
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--n", type=int, default=1000, help="samples per guidance scale")
    parser.add_argument("--out", default="benchmarks/images", help="folder for the sample grid")
    parser.add_argument("--no-append", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--run", help="score this saved run instead of training one (prints only)")
    parser.add_argument(
        "--sampler",
        default=images.SAMPLER,
        choices=tuple(unnoise.samplers.SAMPLERS),
        help=f"sampler of the scoring (default {images.SAMPLER})",
    )
    parser.add_argument("--nfe", type=int, default=images.NFE, help=f"its network evaluations (default {images.NFE})")
    parser.add_argument("--scales", default=",".join(f"{w:g}" for w in SCALES), help="guidance scales, comma-separated")
    parser.add_argument(
        "--guide",
        metavar="WEAK",
        help="autoguidance (Karras et al. 2024): guide by this weaker "
        "conditional run instead of the unconditional model",
    )
    args = parser.parse_args()
    try:
        scales = [float(w) for w in args.scales.split(",")]
    except ValueError:
        scales = [-1.0]
    if not all(w >= 0 for w in scales) or args.nfe < 1:
        parser.error(f"--scales must be guidance scales >= 0 and --nfe positive, got {args.scales!r} and {args.nfe}")
    torch.set_num_threads(2)
    if args.run:
        run = unnoise.Run.load(args.run)
        cfg, steps = run.cfg, run.step
        seconds = json.loads((Path(args.run) / "config.json").read_text()).get("train_seconds") or float("nan")
        args.no_append = True
    else:
        cfg = unnoise.TrainConfig(
            data="mnist",
            size=28,
            conditional=True,
            patch=args.patch,
            width=args.width,
            family=args.family,
            batch_size=args.batch,
        )
        folder = Path(tempfile.mkdtemp()) / "mnist28"
        run, steps, seconds = images.budgeted(cfg, folder, args.seconds)
        print(f"- the run is kept in {folder} (score it again with --run)", flush=True)
    command = f"`unnoise train --data mnist --size 28 --conditional{common_flags(args)}`"
    what = f"the saved run {args.run}" if args.run else command
    guide = unnoise.Run.load(args.guide) if args.guide else None
    what += f", autoguided by {args.guide}" if args.guide else ""
    lines = [
        f"- {what}: {cfg.family} ({cfg.prediction}, "
        f"{cfg.schedule}, {cfg.time_density} times), U-Net width {cfg.width}, patch {cfg.patch}, batch {cfg.batch_size}, lr {cfg.lr:g}; "
        f"trained {seconds:.0f} s ({steps} steps, {1000 * seconds / steps:.0f} ms per step); "
        f"{args.sampler} {args.nfe} NFE, n = {args.n}"
    ]
    for w in scales:
        r, samples, labels = images.evaluate(run, args.n, w, sampler=args.sampler, nfe=args.nfe, guide=guide)
        ratios = images.ratios(r)
        met = r["class_accuracy"] >= TARGET[0] and max(ratios) <= TARGET[1]
        lines.append(
            f"- w = {w:g}: class accuracy {r['class_accuracy']:.3f} (judge on held-out real "
            f"{r['class_accuracy_floor']:.3f}); FID ratio {' / '.join(f'{q:.2f}' for q in ratios)} (three "
            f"judges); memorization {r['memorization_ratio']:.2f}; {1000 * r['seconds_per_image']:.0f} ms "
            f"per image; target {'met' if met else 'missed'}"
        )
        print(lines[-1], flush=True)
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
    grid = Path(args.out) / f"mnist28-patch{cfg.patch}{'' if cfg.family == 'diffusion' else '-' + cfg.family}.png"
    grid.parent.mkdir(parents=True, exist_ok=True)
    figures2d.save(
        sample_grid(
            samples[keep],
            labels[keep],
            title=f"mnist 28x28, patch {cfg.patch}, {steps} steps in {seconds:.0f} s, w = {scales[-1]:g}",
        ),
        grid,
    )
    lines.append(f"- sample grid: `{grid}`")
    common.publish(f"MNIST 28x28 in {args.seconds:g} s of training", lines, args.no_append)


if __name__ == "__main__":
    main()
