"""2D recipes against the clock: W2 / floor after a fixed training budget, for candidate defaults.

Each recipe trains with `--seconds BUDGET` (the learning rate decays over the clock, no step cap) in a
fresh process with 2 threads, then samples 2000 points with the sampler a newcomer gets (`unnoise
evaluate` without flags: ddpm, 50 NFE) and with dpmpp_2m at 20 NFE. The score is exact W2 to 2000
held-out points over the mean W2 of 3 fresh real draws to the same points (the floor). Seeds: one
training per seed.

    python benchmarks/recipes_2d.py --data moons --budget 20 --seeds 2 --recipes default,w128,flow
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

N = 2000
RECIPES = {     # name -> TrainConfig settings over the defaults
    "default": {},
    "w128": {"width": 128},
    "w128-b256": {"width": 128, "batch_size": 256},
    "w64-b256": {"width": 64, "batch_size": 256},
    "w128-d2": {"width": 128, "depth": 2},
    "lr4e-3": {"lr": 4e-3},
    "w128-lr4e-3": {"width": 128, "lr": 4e-3},
    "warm50": {"warmup": 50},
    "w128-warm50": {"width": 128, "warmup": 50},
    "ema0.995": {"ema": 0.995},
    "w128-ema0.995": {"width": 128, "ema": 0.995},
    "flow": {"family": "flow"},
    "flow-w128": {"family": "flow", "width": 128},
    "cosine": {"schedule": "cosine"},
    "v": {"prediction": "v"},
    "w128-v": {"width": 128, "prediction": "v"},
    "w128-d2-lr4e-3": {"width": 128, "depth": 2, "lr": 4e-3},
    "w128-lr6e-3": {"width": 128, "lr": 6e-3},
    "flow-w128-lr4e-3": {"family": "flow", "width": 128, "lr": 4e-3},
    "flow-w128-d2-lr4e-3": {"family": "flow", "width": 128, "depth": 2, "lr": 4e-3},
    "w64-lr4e-3": {"width": 64, "lr": 4e-3},
}
SAMPLERS = (("ddpm", 50), ("dpmpp_2m", 20))


def one(data, recipe, seed, budget, threads=2):
    """In this process: train one recipe for budget seconds; W2 at each sampler, steps done."""
    import unnoise
    from unnoise.metrics.points import w2
    from unnoise.train import UNCAPPED
    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp()) / "run"
    cfg = unnoise.TrainConfig(data=data, seed=seed, steps=UNCAPPED, **RECIPES[recipe])
    run = unnoise.train(cfg, folder, progress=False, seconds=budget)
    held = unnoise.data.load(data, "heldout", N).x
    return {"steps": run.step, **{f"{s}-{nfe}": w2(run.sample(N, s, nfe, seed=seed), held) for s, nfe in SAMPLERS}}


def floor(data, seeds=3):
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
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        recipe, seed, data = args.one
        print(json.dumps(one(data, recipe, int(seed), args.budget, args.threads)))
        return
    base = floor(args.data)
    lines = [f"- {args.data}, {args.budget:g} s of training per run ({args.threads} threads, fresh process each), "
             f"{args.seeds} seeds; W2 / floor (floor {base:.4f}, n = {N}), mean (min-max); steps done"]
    print(lines[0])
    for recipe in args.recipes.split(","):
        results = []
        for seed in range(args.seeds):
            out = subprocess.run([sys.executable, __file__, "--one", recipe, str(seed), args.data, "--budget",
                                  str(args.budget), "--threads", str(args.threads)], capture_output=True, text=True,
                                 check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        cells = []
        for s, nfe in SAMPLERS:
            r = [x[f"{s}-{nfe}"] / base for x in results]
            cells.append(f"{s} {nfe}: {statistics.mean(r):.2f} ({min(r):.2f}-{max(r):.2f})")
        line = (f"- {recipe} {RECIPES[recipe] or '(the defaults)'}: " + "; ".join(cells)
                + f"; {statistics.mean(x['steps'] for x in results):.0f} steps")
        print(line, flush=True)
        lines.append(line)
    if args.append:
        common.append(f"2D recipes against the clock: {args.data}, {args.budget:g} s", lines)


if __name__ == "__main__":
    main()
