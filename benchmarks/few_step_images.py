"""Few-step sampling on images: each family trained with its defaults for the same seconds, judged at NFE 1, 2, 4
and its default by the three judges (FID / floor, class accuracy), with milliseconds per image at batch 1 and 64.

Every run is class-conditional (`unnoise train --data digits --family F --conditional`, nothing else), trained on
the training split for --budget seconds of wall time; consistency-distilled spends half on a flow teacher and half
on distilling it (both counted). Samples: n, classes in turn, seed 0, no guidance.

    python benchmarks/few_step_images.py --data digits --budget 180 --seeds 0
"""

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import families as race
import images as image_bench
import unnoise
import unnoise.samplers

DEFAULT = {"diffusion": None, "flow": None, "shortcut": 2, "meanflow": 1, "consistency": 2, "consistency-distilled": 2}
NFES = (1, 2, 4)


def train(method, data, seed, budget, root):
    """(run, steps, seconds) for a method under the budget."""
    cfg = unnoise.TrainConfig(data=data, family=method.split("-")[0], conditional=True, seed=seed)
    if method != "consistency-distilled":
        return image_bench.budgeted(cfg, root / f"{method}-{seed}", budget)
    start = time.perf_counter()
    teacher, base, _ = image_bench.budgeted(
        dataclasses.replace(cfg, family="flow"), root / f"teacher-{seed}", budget / 2
    )
    left = budget - (time.perf_counter() - start)
    student = dataclasses.replace(cfg, teacher=str(teacher.folder))
    run, steps, _ = image_bench.budgeted(student, root / f"{method}-{seed}", left)
    return run, f"{base}+{steps}", time.perf_counter() - start


def draw(run, n, nfe, seed=0):
    return run.sample(n, seed=seed, label="each", **({} if nfe is None else {"nfe": nfe}))


def ms_per_image(run, batch, nfe):
    """Median of 5 timed draws of `batch` images after a warm-up."""
    draw(run, batch, nfe)
    times = []
    for repeat in range(5):
        start = time.perf_counter()
        draw(run, batch, nfe, seed=repeat + 1)
        times.append((time.perf_counter() - start) / batch * 1000)
    return statistics.median(times)


def measure(run, n, nfe):
    judged = race.judge(run, draw(run, n, nfe), n)
    return {
        "nfe": nfe or unnoise.samplers.get(run.default_sampler).default_nfe,
        "fid_ratios": judged["fid_ratios"],
        "accuracy": judged["class_accuracy"],
        "ms_batch1": ms_per_image(run, 1, nfe),
        "ms_batch64": ms_per_image(run, 64, nfe),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits", choices=("digits", "mnist"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget", type=float, default=180.0)
    p.add_argument("--methods", nargs="+", default=list(DEFAULT), choices=list(DEFAULT))
    p.add_argument("--n", type=int, default=800)
    p.add_argument("--out", default="runs/bench/few_step_images.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    root, results = Path(tempfile.mkdtemp()), []
    for method in args.methods:
        for seed in args.seeds:
            run, steps, seconds = train(method, args.data, seed, args.budget, root)
            nfes = sorted(set(NFES) | {DEFAULT[method]} - {None}) + ([None] if DEFAULT[method] is None else [])
            rows = [measure(run, args.n, nfe) for nfe in nfes]
            results.append({"method": method, "seed": seed, "steps": steps, "seconds": seconds, "rows": rows})
            for r in rows:
                print(
                    f"| {method} | {seed} | {steps} | {seconds:.0f} | {r['nfe']} | {r['accuracy']:.3f} | "
                    + " / ".join(f"{x:.2f}" for x in r["fid_ratios"])
                    + f" | {r['ms_batch1']:.1f} | {r['ms_batch64']:.2f} |",
                    flush=True,
                )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=1))


if __name__ == "__main__":
    main()
