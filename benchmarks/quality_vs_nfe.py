"""Quality against cost: W2 beside its real-vs-real floor, per sampler and NFE, on trained 2D runs.

Trains (or reuses) one run per family in ROOT/<family>, then samples n points with every sampler at
each NFE budget, and reports W2, its floor (fresh vs held-out real data, same n) and their ratio, with
the NFE actually counted. W2 only (exact, POT), to keep the run short; 3 seeds are averaged.

    PYTHONPATH=src python benchmarks/quality_vs_nfe.py --root runs/quality [--steps 3000] [--n 2000]
        [--nfe 5 10 20 50] [--append BENCHMARKS.md]
"""

import argparse
import datetime
import statistics
import subprocess
from pathlib import Path

import torch

from unnoise import data
from unnoise.config import TrainConfig
from unnoise.metrics.points import w2
from unnoise.run import Run
from unnoise.samplers import SAMPLERS, steps_for
from unnoise.train import train

SEEDS = (0, 1, 2)


def run_for(root, family, steps, dataset):
    folder = Path(root) / family
    if (folder / "config.json").exists():
        return Run.load(folder)
    return train(TrainConfig(data=dataset, family=family, steps=steps), folder, progress=False)


def measure(run, sampler, nfe, n):
    """Mean W2, mean floor and mean counted NFE over SEEDS."""
    heldout, fresh = data.load(run.cfg.data, "heldout", n).x, data.load(run.cfg.data, "fresh", n).x
    floor = w2(fresh, heldout)
    scores, counted = [], []
    for seed in SEEDS:
        evals = []
        points = run.sample(n, sampler, nfe, seed, callback=lambda i, *_: evals.append(i))
        scores.append(w2(points, heldout))
        counted.append(len(evals) / max(1, evals.count(0)))
    return statistics.mean(scores), floor, statistics.mean(counted)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs/quality")
    parser.add_argument("--data", default="moons")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--families", nargs="+", default=["diffusion", "flow", "edm"])
    parser.add_argument("--append")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for family in args.families:
        run = run_for(args.root, family, args.steps, args.data)
        for sampler in SAMPLERS:
            if sampler == "euler_maruyama" and run.path.alpha(run.path.t_max) == 0:
                continue                                        # singular at pure noise (docs/samplers.md)
            for nfe in ([args.nfe[0]] if sampler == "dopri5" else args.nfe):
                try:
                    steps_for(sampler, nfe)
                except Exception:                               # nfe too small for this sampler
                    continue
                score, floor, counted = measure(run, sampler, nfe, args.n)
                rows.append((family, sampler, counted, score, floor, score / floor))
                print(f"{family:9s} {sampler:15s} nfe {counted:6.1f}  w2 {score:.4f}  floor {floor:.4f}  "
                      f"ratio {score / floor:.2f}", flush=True)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    table = "\n".join(["| family | sampler | NFE (counted) | W2 | floor | ratio |", "|---|---|---|---|---|---|"]
                      + [f"| {f} | {s} | {c:g} | {w:.4f} | {fl:.4f} | {r:.2f} |" for f, s, c, w, fl, r in rows])
    section = (f"\n## Quality vs NFE ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)\n\n"
               f"- nproc {nproc}; {args.data}, {args.steps} training steps per family, n = {args.n}, "
               f"W2 mean of seeds {SEEDS}\n- command: `PYTHONPATH=src python benchmarks/quality_vs_nfe.py "
               f"--root {args.root} --steps {args.steps} --n {args.n} --nfe {' '.join(map(str, args.nfe))} "
               f"--families {' '.join(args.families)}`\n\n{table}\n")
    print(section)
    if args.append:
        with open(args.append, "a") as f:
            f.write(section)


if __name__ == "__main__":
    main()
