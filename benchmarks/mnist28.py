"""MNIST at its native 28x28 under a training budget: `unnoise train --data mnist --size 28 --conditional`.

Issue 15's target: class accuracy >= 0.98 AND FID <= 1.2 x floor under all three judges within 10
minutes of training, with the defaults. The script trains the defaults (or one override, e.g.
`--patch 1` for the U-Net before patches, `--family flow`) for the budget, then scores n class-conditional samples
(dpmpp_2m, 20 NFE) at w = 1, 1.1 and 1.25 with benchmarks/images.py's evaluate: accuracy, FID beside the
floor under three judges, memorization, seconds per image. The three 28x28 judges are trained on
first use (about 9 minutes each here) and cached; their time is not part of the budget.

    python benchmarks/mnist28.py [--seconds 600] [--patch P] [--width W] [--family F] [--batch B] [--n 1000] [--out DIR]
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import images  # noqa: E402

import torch  # noqa: E402
import unnoise  # noqa: E402
from unnoise.viz import figures2d  # noqa: E402
from unnoise.viz.images import sample_grid  # noqa: E402

TARGET = (0.98, 1.2)          # class accuracy, FID / floor under every judge
SCALES = (1.0, 1.1, 1.25)


def common_flags(args):
    """The command-line flags of the overrides given, e.g. ' --family flow --width 48'."""
    given = {"--family": None if args.family == "diffusion" else args.family, "--patch": args.patch,
             "--width": args.width, "--batch-size": args.batch}
    return "".join(f" {flag} {value}" for flag, value in given.items() if value is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="training budget in wall seconds")
    parser.add_argument("--patch", type=int, default=None, help="the U-Net's patch side (default: the config's)")
    parser.add_argument("--width", type=int, default=None, help="the U-Net's base width (default: the config's)")
    parser.add_argument("--family", default="diffusion", choices=("diffusion", "flow", "edm"),
                        help="the continuous family (default diffusion)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--n", type=int, default=1000, help="samples per guidance scale")
    parser.add_argument("--out", default="benchmarks/images", help="folder for the sample grid")
    parser.add_argument("--no-append", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = unnoise.TrainConfig(data="mnist", size=28, conditional=True, patch=args.patch, width=args.width,
                              family=args.family, batch_size=args.batch)
    run, steps, seconds = images.budgeted(cfg, Path(tempfile.mkdtemp()) / "mnist28", args.seconds)
    lines = [f"- `unnoise train --data mnist --size 28 --conditional{common_flags(args)}`: {cfg.family} ({cfg.prediction}, "
             f"{cfg.schedule}, {cfg.time_density} times), U-Net width {cfg.width}, patch {cfg.patch}, batch {cfg.batch_size}, lr {cfg.lr:g}; "
             f"trained {seconds:.0f} s ({steps} steps, {1000 * seconds / steps:.0f} ms per step); "
             f"{images.SAMPLER} {images.NFE} NFE, n = {args.n}"]
    for w in SCALES:
        r, samples, labels = images.evaluate(run, args.n, w)
        ratios = images.ratios(r)
        met = r["class_accuracy"] >= TARGET[0] and max(ratios) <= TARGET[1]
        lines.append(f"- w = {w:g}: class accuracy {r['class_accuracy']:.3f} (judge on held-out real "
                     f"{r['class_accuracy_floor']:.3f}); FID ratio {' / '.join(f'{q:.2f}' for q in ratios)} (three "
                     f"judges); memorization {r['memorization_ratio']:.2f}; {1000 * r['seconds_per_image']:.0f} ms "
                     f"per image; target {'met' if met else 'missed'}")
        print(lines[-1], flush=True)
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
    grid = Path(args.out) / f"mnist28-patch{cfg.patch}{'' if cfg.family == 'diffusion' else '-' + cfg.family}.png"
    grid.parent.mkdir(parents=True, exist_ok=True)
    figures2d.save(sample_grid(samples[keep], labels[keep], title=f"mnist 28x28, patch {cfg.patch}, {steps} steps "
                               f"in {seconds:.0f} s, w = {SCALES[-1]:g}"), grid)
    lines.append(f"- sample grid: `{grid}`")
    if args.no_append:
        print("\n".join(lines))
    else:
        common.append(f"MNIST 28x28 in {args.seconds:g} s of training", lines)


if __name__ == "__main__":
    main()
