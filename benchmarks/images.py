"""Class-conditional diffusion and flow U-Nets on digits (8x8) and MNIST (16x16), each under a training budget.

For every (data set, family): training seconds and steps, the sampler and its counted NFE, sample seconds
per image (batch 360), and the image metrics of metrics/images.py beside their held-out floors: class
accuracy, classifier-feature FID, precision / recall, memorization ratio. Then accuracy and FID against
the guidance scale w, a sample grid per run, and one plot of the guidance sweep.

Targets (images issue), the model trained on the training split only:
  digits: class accuracy >= 0.99, FID <= 1.2 x floor, memorization ratio >= 0.9, within 2 minutes;
  mnist:  class accuracy >= 0.97, FID <= 1.5 x floor, within 15 minutes, at the same sampler setting.

    python benchmarks/images.py [--data digits mnist] [--families diffusion flow] [--out benchmarks/images]
"""

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import torch  # noqa: E402
import unnoise  # noqa: E402
from unnoise.metrics.images import report  # noqa: E402
from unnoise.viz import figures2d  # noqa: E402
from unnoise.viz.images import sample_grid  # noqa: E402

BUDGET = {"digits": 120.0, "mnist": 900.0}            # training seconds, from the targets
TARGET = {"digits": (0.99, 1.2), "mnist": (0.97, 1.5)}  # (class accuracy, FID / floor)
SAMPLER, NFE = "dpmpp_2m", 20
SCALES = (0.0, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0)


def calibrate(cfg, scratch):
    """(seconds per step, fixed seconds per run) from timed 20- and 100-step runs after an untimed warm-up."""
    unnoise.train(dataclasses.replace(cfg, steps=10, warmup=5), scratch / "warmup", progress=False)
    times = {}
    for steps in (20, 100):
        start = time.perf_counter()
        unnoise.train(dataclasses.replace(cfg, steps=steps, warmup=5), scratch / str(steps), progress=False)
        times[steps] = time.perf_counter() - start
    per_step = (times[100] - times[20]) / 80
    return per_step, max(0.0, times[20] - 20 * per_step)


def budgeted(cfg, folder, budget, scratch):
    """Train cfg for as many steps as fit in budget seconds: (run, steps, seconds)."""
    per_step, fixed = calibrate(cfg, scratch)
    steps = int(0.97 * (budget - fixed) / per_step)
    start = time.perf_counter()
    run = unnoise.train(dataclasses.replace(cfg, steps=steps), folder, progress=False)
    return run, steps, time.perf_counter() - start


def evaluate(run, n, guidance=1.0):
    """Image metrics of n class-conditional samples (classes in turn) at guidance w, and seconds per image."""
    evals = []
    start = time.perf_counter()
    images = run.sample(n, SAMPLER, NFE, seed=0, label="each", guidance=guidance,
                        callback=lambda i, *_: evals.append(i))
    per_image = (time.perf_counter() - start) / n
    labels = torch.arange(n) % run.num_classes
    result = report(images, labels, run.cfg.data, run.cfg.size, run.cfg.channels, verbose=False)
    result.update(nfe=len(evals) / max(1, evals.count(0)), seconds_per_image=per_image, guidance=guidance)
    return result, images, labels


def guidance_plot(sweeps, out):
    """Class accuracy and FID / floor against the guidance scale, one line per run."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, rows in sweeps.items():
        ws = [r["guidance"] for r in rows]
        axes[0].plot(ws, [r["class_accuracy"] for r in rows], "o-", label=name)
        axes[1].plot(ws, [r["fid"] / r["fid_floor"] for r in rows], "o-", label=name)
    axes[0].set(xlabel="guidance scale w", ylabel="class accuracy", title="recognisability rises with w")
    axes[1].set(xlabel="guidance scale w", ylabel="FID / floor", yscale="log",
                title="FID (diversity and fidelity) is best near w = 1")
    axes[1].axhline(1.0, color="grey", ls="--", lw=1, label="floor (held-out real)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    figures2d.save(fig, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "mnist"], choices=tuple(BUDGET))
    parser.add_argument("--families", nargs="+", default=["diffusion", "flow"])
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every training budget (smoke tests)")
    parser.add_argument("--n", type=int, default=1000, help="samples per evaluation (the floor uses min(n, held-out))")
    parser.add_argument("--no-append", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--out", default="benchmarks/images", help="folder for the grids, the plot and results.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp())
    lines, results, sweeps = [], [], {}
    for name in args.data:
        for family in args.families:
            cfg = unnoise.TrainConfig(data=name, family=family, conditional=True, seed=0)
            budget = BUDGET[name] * args.budget_scale
            run, steps, seconds = budgeted(cfg, root / f"{name}-{family}", budget, root / f"scratch-{name}-{family}")
            result, images, labels = evaluate(run, args.n)
            result.update(data=name, family=family, steps=steps, train_seconds=seconds, size=run.cfg.size)
            results.append(result)
            keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
            figures2d.save(sample_grid(images[keep], labels[keep], title=f"{name} {family}: {SAMPLER}, "
                                       f"{result['nfe']:g} NFE, trained {seconds:.0f} s"),
                           out / f"{name}-{family}.png")
            sweeps[f"{name} {family}"] = [evaluate(run, args.n, w)[0] for w in SCALES]
            lines.append(summary(result))
            print(lines[-1], flush=True)
    tag = "-".join(args.data)
    guidance_plot(sweeps, out / f"guidance-{tag}.png")
    (out / f"results-{tag}.json").write_text(json.dumps({"runs": results, "guidance": sweeps}, indent=1))
    lines.append(sweep_table(sweeps))
    lines.append(f"- sample grids: `{out}/<data>-<family>.png`; guidance plot: `{out}/guidance-{tag}.png`")
    if args.no_append:
        print("\n".join([setup(args)] + lines))
    else:
        common.append("images: class-conditional U-Nets on digits and MNIST", [setup(args)] + lines)


def setup(args):
    cfg = unnoise.TrainConfig(data="digits")
    return (f"- U-Net width {cfg.width}, batch {cfg.batch_size}, lr {cfg.lr:g} (warm-up {cfg.warmup}, cosine), "
            f"EMA {cfg.ema}, label dropout {cfg.label_dropout}; steps: as many as the budget holds; digits 8x8 (1,438 train / 359 held-out), mnist 16x16 (4,000 / 1,000); "
            f"{SAMPLER} at {NFE} NFE, guidance w = 1 (the conditional model), n = {args.n} samples against "
            f"min(n, held-out) real images for every floor; budgets x{args.budget_scale:g}")


def summary(r):
    """One line per run with its verdict against the issue's target."""
    accuracy, ratio = TARGET[r["data"]]
    fid_ratio = r["fid"] / r["fid_floor"]
    met = r["class_accuracy"] >= accuracy and fid_ratio <= ratio and (r["data"] != "digits" or r["memorization_ratio"] >= 0.9)
    return (f"- **{r['data']} {r['family']}** ({r['size']}x{r['size']}): trained {r['train_seconds']:.0f} s "
            f"({r['steps']} steps); {SAMPLER} {r['nfe']:g} NFE, {1000 * r['seconds_per_image']:.1f} ms per image; "
            f"class accuracy {r['class_accuracy']:.3f} (classifier on held-out real {r['class_accuracy_floor']:.3f}); "
            f"FID {r['fid']:.3f}, floor {r['fid_floor']:.3f}, ratio **{fid_ratio:.2f}**; "
            f"precision {r['precision']:.3f} / recall {r['recall']:.3f} (floor {r['precision_floor']:.3f} / "
            f"{r['recall_floor']:.3f}); memorization ratio {r['memorization_ratio']:.2f}; n={r['n']}; "
            f"target {'met' if met else 'missed'}")


def sweep_table(sweeps):
    """Class accuracy and FID / floor per guidance scale, one row per run."""
    head = "| run | " + " | ".join(f"w={w:g}" for w in SCALES) + " |"
    rows = [head, "|---|" + "---|" * len(SCALES)]
    for name, sweep in sweeps.items():
        cells = [f"{r['class_accuracy']:.3f} / {r['fid'] / r['fid_floor']:.2f}" for r in sweep]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n- guidance sweep, class accuracy / FID ratio:\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
