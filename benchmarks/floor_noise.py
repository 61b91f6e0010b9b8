"""How noisy is the image FID floor itself? The floor over random re-splits of the data, each with its own judge.

Every image FID in unnoise is quoted as a ratio to its floor: the FID between the held-out split and the
training split, under a judge (a small CNN, metrics/classifier.py) trained on the training split. That floor
is one draw. A sampler of the true distribution would score the floor's expected value, not the one draw, so
every figure is also quoted against real data's expected level, the mean floor over re-splits
(metrics/level.py). This script measures it, and with --write keeps it in the package for the built-in sets:

    python benchmarks/floor_noise.py --judges 0,1,2 --splits 3 --write        # digits 8x8
    python benchmarks/floor_noise.py --data mnist --size 28 --judges 0,1,2 --splits 3 --write
    python benchmarks/floor_noise.py --data emoji --size 32 --judges 0 --splits 3 --write

Each re-split holds out the same share of every class as the canonical split (data/images.split_mask, seed
1000 + k), trains a judge on its training part (emoji: the rotation task), and scores the held-out part against
the training part exactly as metrics.images.report scores the floor. The canonical split is scored under the
cached judge. mean_j / canonical_j is about what a perfect sampler scores against the canonical floor under
judge j; the largest over the judges is its "worst judge", the figure the image targets bound.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from unnoise.checkpoint import save_json
from unnoise.data import images as data
from unnoise.metrics import classifier as clf
from unnoise.metrics import level

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "unnoise" / "metrics" / clf.SHIPPED


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", choices=data.SOURCES)
    parser.add_argument("--size", type=int, help="image size (default: the data set's)")
    parser.add_argument("--splits", type=int, default=level.SPLITS, help="random re-splits besides the canonical one")
    parser.add_argument(
        "--judges",
        default="0",
        help="judge seeds for the re-splits, comma-separated (the benchmarks' three judges are 0,1,2)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--write", action="store_true", help="keep each level in the package (src/unnoise/metrics/judges)"
    )
    parser.add_argument("--no-append", action="store_true", help="print, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    if args.splits < 2:
        parser.error(f"--splits must be at least 2, got {args.splits}")
    if args.size is not None and args.size < 4:
        parser.error(f"--size must be at least 4, got {args.size}")
    try:
        judges = [int(j) for j in args.judges.split(",")]
    except ValueError:
        judges = []
    if not judges or min(judges) < 0:
        parser.error(f"--judges must be comma-separated judge seeds >= 0, e.g. 0,1,2; got {args.judges!r}")
    torch.set_num_threads(args.threads)
    size = args.size or data.default_size(args.data)
    lines, worst, total = [], {}, 0.0
    for j in judges:
        found = level.measure(args.data, size, judge_seed=j, splits=args.splits)
        total += found["seconds"]
        if args.write:
            save_json(SHIPPED / f"level-{found['judge']}.json", found)
        base, fids = found["canonical_floor"], found["floors"]
        worst[j] = found["ratio"]
        lines += [
            f"- judge {j} ({found['judge']}): canonical split (seed {data.SPLIT_SEED}) floor {base:.3f} at held-out "
            f"n = {found['heldout_n']}; {len(fids)} re-splits (seeds {found['split_seeds'][0]}-"
            f"{found['split_seeds'][-1]}): " + ", ".join(f"{f:.3f}" for f in fids),
            f"- judge {j}: real data's expected level {found['level']:.3f} +- {found['level_sd']:.3f} (sd over "
            f"re-splits); the canonical floor is above {sum(f < base for f in fids)} of {len(fids)}; a fresh real "
            f"draw scores about {found['ratio']:.2f} x the canonical floor; {found['seconds']:.0f} s",
        ]
    lines.append(
        f"- a perfect sampler's worst judge over seeds {args.judges}: about {max(worst.values()):.2f} x the canonical "
        f"floors; {total:.0f} s in all" + ("; written to the package" if args.write else "")
    )
    common.publish(f"Real data's expected FID level, {args.data} {size}x{size}", lines, args.no_append)


if __name__ == "__main__":
    main()
