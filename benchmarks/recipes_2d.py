"""2D recipes against the clock: W2 / floor after a fixed training budget, for candidate defaults.

Each recipe trains with `--seconds BUDGET` (the learning rate decays over the clock, no step cap), or
for `--steps N` (what a newcomer's `unnoise train` does), in a fresh process with 2 threads, then
samples 2000 points with ddpm at 50 NFE and with dpmpp_2m at 20 NFE (what `unnoise evaluate` gives a
points run without flags), or with --samplers. The score is exact W2 to 2000 held-out points, averaged over 4 sample
draws, over the mean W2 of 8 fresh real draws to the same points (the floor). Seeds: one training per
seed.

    python benchmarks/recipes_2d.py --data moons --budget 20 --seeds 2 --recipes default,w64,flow
    python benchmarks/recipes_2d.py --data checkerboard --steps 1000 --seeds 3 --recipes default
    python benchmarks/recipes_2d.py --data moons --recipes default --samplers dpmpp_2m:20,dpmpp_2m_sde:30
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

N = 2000
RECIPES = {  # name -> TrainConfig settings over the defaults (width 128, lr 4e-3, 1000 steps, v on vp-cosine)
    "default": {},
    "old-default": {"width": 256, "lr": 2e-3, "prediction": "eps", "schedule": "linear"},  # before 2026-12-02
    "eps-linear": {"prediction": "eps", "schedule": "linear"},  # DDPM's own recipe
    "v-cosine": {"schedule": "cosine"},  # v on diffusers' discrete cosine betas (exportable)
    "w64": {"width": 64},
    "w64-b1024": {"width": 64, "batch_size": 1024},
    "w256": {"width": 256},
    "flow": {"family": "flow"},
    "flow-w64": {"family": "flow", "width": 64},
    "logit-normal": {"time_density": "logit-normal"},  # SD3's training times (the image default)
    "flow-logit-normal": {"family": "flow", "time_density": "logit-normal"},
    "w64-logit-normal": {"width": 64, "time_density": "logit-normal"},
}
SAMPLERS = (("ddpm", 50), ("dpmpp_2m", 20))
# W2 of one draw of 2000 points moves by +-20 % between draws (8 real draws against the same held-out points
# gave 0.67-1.33 x their mean), so each score is the mean over DRAWS draws and the floor over 8
DRAWS = 4


def one(data, recipe, seed, budget, threads=2, steps=None, samplers=SAMPLERS):
    """In this process: train one recipe for budget seconds (or a fixed number of steps); W2 at each sampler
    (the mean over DRAWS sample draws), steps done and training seconds."""
    import unnoise
    from unnoise.metrics.points import w2
    from unnoise.pipeline import UNCAPPED

    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp()) / "run"
    cfg = unnoise.TrainConfig(data=data, seed=seed, steps=steps or UNCAPPED, **RECIPES[recipe])
    start = time.perf_counter()
    run = unnoise.train(cfg, folder, progress=False, seconds=None if steps else budget)
    seconds = time.perf_counter() - start
    held = unnoise.data.load(data, "heldout", N).x
    return {
        "steps": run.step,
        "seconds": seconds,
        **{
            f"{s}-{nfe}": statistics.mean(w2(run.sample(N, s, nfe, seed=100 * seed + k), held) for k in range(DRAWS))
            for s, nfe in samplers
        },
    }


def floor(data, seeds=8):
    import unnoise
    from unnoise.metrics.points import w2

    held = unnoise.data.load(data, "heldout", N).x
    return statistics.mean(w2(unnoise.data.load(data, "fresh", N, seed=100 + k).x, held) for k in range(seeds))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="moons")
    parser.add_argument("--budget", type=float, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each training (default 2)")
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--steps", type=int, help="train a fixed number of steps instead of --budget seconds")
    parser.add_argument(
        "--samplers",
        default=",".join(f"{s}:{nfe}" for s, nfe in SAMPLERS),
        help="samplers to score each run with, as name:nfe, comma-separated (default %(default)s)",
    )
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    samplers = common.samplers(parser, args.samplers)
    if args.one:
        recipe, seed, data = args.one
        print(json.dumps(one(data, recipe, int(seed), args.budget, args.threads, args.steps, samplers)))
        return
    base = floor(args.data)
    spent = f"{args.steps} steps" if args.steps else f"{args.budget:g} s of training"
    lines = [
        f"- {args.data}, {spent} per run ({args.threads} threads, fresh process each), {args.seeds} seeds; "
        f"W2 / floor (floor {base:.4f}: mean of 8 real draws; each score the mean of {DRAWS} draws of n = {N}), "
        "mean (min-max) over seeds; steps done and training seconds"
    ]
    print(lines[0])
    for recipe in args.recipes.split(","):
        results = []
        for seed in range(args.seeds):
            extra = ["--steps", str(args.steps)] if args.steps else []
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    recipe,
                    str(seed),
                    args.data,
                    "--budget",
                    str(args.budget),
                    "--threads",
                    str(args.threads),
                    "--samplers",
                    args.samplers,
                ]
                + extra,
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        cells = []
        for s, nfe in samplers:
            r = [x[f"{s}-{nfe}"] / base for x in results]
            cells.append(f"{s} {nfe}: {statistics.mean(r):.2f} ({min(r):.2f}-{max(r):.2f})")
        line = (
            f"- {recipe} {RECIPES[recipe] or '(the defaults)'}: "
            + "; ".join(cells)
            + f"; {statistics.mean(x['steps'] for x in results):.0f} steps in "
            f"{statistics.mean(x['seconds'] for x in results):.1f} s"
        )
        print(line, flush=True)
        lines.append(line)
    if args.append:
        common.append(f"2D recipes: {args.data}, {spent}", lines)


if __name__ == "__main__":
    main()
