"""Train on moons with the defaults; print training seconds and W2 / floor at the default sampler.

Target (foundation issue): W2 <= 1.5 x floor within 60 s of training on 2 cores.
The floor is W2 between the held-out draw and an independent real draw of the same n; the model's
W2 and the floor are each averaged over 3 seeds (3 trainings, each sampled once; 3 fresh real draws).
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import unnoise
from unnoise.metrics.points import w2


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="moons")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    held = unnoise.data.load(args.data, "heldout", args.n).x
    floors = [w2(unnoise.data.load(args.data, "fresh", args.n, seed=100 + k).x, held) for k in range(args.seeds)]
    cfg = unnoise.TrainConfig(data=args.data)
    lines = [
        f"- data {args.data}, defaults: {cfg.family}, {cfg.prediction}, {cfg.schedule}, {cfg.steps} steps, "
        f"batch {cfg.batch_size}, MLP width {cfg.width} depth {cfg.depth}; one training per seed",
        f"- W2 floor (n={args.n}, {args.seeds} fresh draws): " + ", ".join(f"{f:.4f}" for f in floors),
    ]
    root = Path(tempfile.mkdtemp())
    results = {key: [] for key in (("ddpm", 50), ("ddpm", 100), ("ddim", 50))}
    sample_seconds = {key: [] for key in results}
    train_seconds = []
    for seed in range(args.seeds):
        cfg = unnoise.TrainConfig(data=args.data, seed=seed)
        start = time.perf_counter()
        run = unnoise.train(cfg, root / f"run{seed}", progress=False)
        train_seconds.append(time.perf_counter() - start)
        for sampler, nfe in results:
            start = time.perf_counter()
            results[sampler, nfe].append(w2(run.sample(args.n, sampler, nfe, seed=seed), held))
            sample_seconds[sampler, nfe].append(time.perf_counter() - start)
    lines.append("- training seconds per seed: " + ", ".join(f"{s:.1f}" for s in train_seconds))
    for (sampler, nfe), values in results.items():
        ratio = sum(values) / sum(floors)
        seconds = sorted(sample_seconds[sampler, nfe])[len(values) // 2]
        lines.append(
            f"- {sampler} {nfe} NFE: W2 "
            + ", ".join(f"{v:.4f}" for v in values)
            + f"; mean W2 / mean floor = **{ratio:.2f}**; median {seconds:.2f} s per {args.n} samples"
        )
    shutil.rmtree(root, ignore_errors=True)
    common.append("train_2d: foundation target W2 <= 1.5 x floor in 60 s", lines)


if __name__ == "__main__":
    main()
