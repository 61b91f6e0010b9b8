"""Train on moons with the defaults; print training seconds and W2 / floor at the default sampler.

Target (foundation issue): W2 <= 1.5 x floor within 60 s of training on 2 cores.
The floor is W2 between the held-out draw and an independent real draw of the same n; the model's
W2 and the floor are each averaged over 3 seeds (3 sample seeds; 3 fresh real draws).
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import unnoise  # noqa: E402
from unnoise.metrics.points import w2  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="moons")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = Path(tempfile.mkdtemp()) / "run"
    cfg = unnoise.TrainConfig(data=args.data)
    start = time.perf_counter()
    run = unnoise.train(cfg, folder, progress=False)
    train_seconds = time.perf_counter() - start
    held = unnoise.data.load(args.data, "heldout", args.n).x
    floors = [w2(unnoise.data.load(args.data, "fresh", args.n, seed=100 + k).x, held) for k in range(args.seeds)]
    lines = [f"- data {args.data}, defaults: {cfg.family}, {cfg.prediction}, {cfg.schedule}, {cfg.steps} steps, "
             f"batch {cfg.batch_size}, MLP width {cfg.width} depth {cfg.depth}",
             f"- training seconds: {train_seconds:.1f}",
             f"- W2 floor (n={args.n}, {args.seeds} fresh draws): " + ", ".join(f"{f:.4f}" for f in floors)]
    for sampler, nfe in (("ddpm", 50), ("ddpm", 100), ("ddim", 50)):
        start = time.perf_counter()
        values = [w2(run.sample(args.n, sampler, nfe, seed=s), held) for s in range(args.seeds)]
        seconds = (time.perf_counter() - start) / args.seeds
        ratio = sum(values) / sum(floors)
        lines.append(f"- {sampler} {nfe} NFE: W2 " + ", ".join(f"{v:.4f}" for v in values)
                     + f"; mean W2 / mean floor = **{ratio:.2f}**; {seconds:.2f} s per {args.n} samples")
    shutil.rmtree(folder.parent, ignore_errors=True)
    common.append("train_2d: foundation target W2 <= 1.5 x floor in 60 s", lines)


if __name__ == "__main__":
    main()
