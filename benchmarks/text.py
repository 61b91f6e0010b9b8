"""Text on the one transformer: ar, mdlm and duo at equal training seconds and equal networks.

For each family and seed: `unnoise train --data DATA --family F` (the text defaults: 4 blocks of width 128,
context 256) for --budget seconds, then held-out bits per character (ar exact; mdlm and duo their bound) beside the
floor where it is known (markov: the true chain's exact bits of the same windows), the samples judged beside real
held-out text (markov: exact bits under the chain; kjv: a 6-gram Kneser-Ney judge and the share of real words), and
milliseconds per sample of 256 characters at batch 1 against the diffusion families' step count K.

    python benchmarks/text.py --data markov --budget 300 --families ar mdlm duo
    python benchmarks/text.py --data kjv --budget 600 --families ar mdlm duo --out benchmarks/text/results-kjv.json
Scarce data, many epochs (Prabhudesai et al. 2025): --subset N trains on the first N training characters and
records held-out bits against epochs (--evals points along the run):
    python benchmarks/text.py --data kjv --subset 100000 --steps 3000 --families ar mdlm
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import unnoise
from unnoise.families.text import heldout_windows
from unnoise.metrics import text as text_metrics
from unnoise.run import Run

STEPS = (16, 64, 256)  # the diffusion families' K, judged and timed
SAMPLES = 32  # samples judged per setting


def draw(run, n, steps, seed=0):
    return run.sample(n, seed=seed, **({} if run.cfg.family == "ar" else {"nfe": steps}))


def ms_per_sample(run, steps):
    """Median of 3 timed draws of one sample of the full context after a warm-up."""
    draw(run, 1, steps)
    times = []
    for repeat in range(3):
        start = time.perf_counter()
        draw(run, 1, steps, seed=repeat + 1)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def judged(run, steps):
    samples = draw(run, SAMPLES, steps)
    result = text_metrics.judge(run.cfg.data, run.cfg.alphabet, samples)
    return {"steps": steps or run.cfg.context, "n": SAMPLES, "ms_per_sample": ms_per_sample(run, steps), **result}


def race(args, root):
    results = []
    for family in args.families:
        for seed in args.seeds:
            cfg = unnoise.TrainConfig(data=args.data, family=family, seed=seed, steps=unnoise.pipeline.UNCAPPED)
            start = time.perf_counter()
            run = unnoise.train(cfg, root / f"{family}-{seed}", progress=False, seconds=args.budget)
            seconds = time.perf_counter() - start
            report = run.family.report(run, 0, seed)
            rows = [judged(run, k) for k in ((None,) if family == "ar" else STEPS)]
            results.append({"family": family, "seed": seed, "steps": run.step, "seconds": seconds, **report,
                            "samples": rows})  # fmt: skip
            floor = report.get("bits_per_char_floor")
            for r in rows:
                print(
                    f"| {family} | {seed} | {run.step} | {report['bits_per_char']:.3f} +- "
                    f"{report['bits_per_char_stderr']:.3f} | {floor and report['bits_per_char'] / floor or float('nan'):.3f} | "
                    f"{r['steps']} | {r['sample_bits_per_char']:.3f} / {r['real_bits_per_char']:.3f} | "
                    f"{r.get('word_share', float('nan')):.3f} / {r.get('real_word_share', float('nan')):.3f} | "
                    f"{r['ms_per_sample']:.0f} |",
                    flush=True,
                )
    return results


class Curve:
    """A training callback: held-out bits of the EMA net (64 windows) every `every` steps, against epochs."""

    def __init__(self, cfg, folder, every, subset, label):
        self.cfg, self.folder, self.every, self.subset, self.label, self.points = cfg, folder, every, subset, label, []

    def __call__(self, step, loss, net, ema):
        if step % self.every:
            return
        run = Run(self.folder, self.cfg, ema.eval(), step, 0)
        bits = float(run.family.bits(run, heldout_windows(run, 64), 0).mean())
        ema.train()
        epochs = step * self.cfg.batch_size * self.cfg.context / self.subset
        self.points.append({"step": step, "epochs": epochs, "bits_per_char": bits})
        print(f"| {self.label} | {step} | {epochs:.1f} | {bits:.3f} |", flush=True)


def scarce(args, root):
    """Held-out bits against epochs on the first --subset training characters."""
    results = []
    for family in args.families:
        for seed in args.seeds:
            cfg = unnoise.TrainConfig(data=args.data, family=family, seed=seed, steps=args.steps, subset=args.subset)
            folder = root / f"{family}-{seed}"
            curve = Curve(cfg, folder, max(1, args.steps // args.evals), args.subset, f"{family} | {seed}")
            unnoise.train(cfg, folder, progress=False, callback=curve)
            results.append({"family": family, "seed": seed, "subset": args.subset, "curve": curve.points})
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="markov")
    p.add_argument("--families", nargs="+", default=["ar", "mdlm", "duo"], choices=("ar", "mdlm", "duo"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--subset", type=int, help="scarce data: train on the first N training characters")
    p.add_argument("--steps", type=int, default=3000, help="scarce data: training steps")
    p.add_argument("--evals", type=int, default=10, help="scarce data: held-out evaluations along the run")
    p.add_argument("--out", default="runs/bench/text.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp())
    results = scarce(args, root) if args.subset else race(args, root)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=1))


if __name__ == "__main__":
    main()
