"""Few-step sampling: W2 / floor at NFE 1, 2, 4, 8 for diffusion, flow matching, OT-CFM, reflow and the few-step
families (shortcut, MeanFlow, consistency training and distillation).

Each method gets the same wall-clock training budget (default 60 s; reflow's budget covers its base
flow, the pair generation and the reflow training together). Step counts come from a timed
calibration run, so the budget holds on any machine. Flows sample with Euler (DDIM eta = 0 on the
rectified path); diffusion with the better of DDPM and DDIM at each NFE; the few-step families with their own
sampler (shortcut and MeanFlow: Euler told the step; consistency: multistep consistency sampling). Every W2 is exact (POT),
on n samples against n held-out points, beside the floor: W2 of n fresh real points to the same n.

    python benchmarks/few_step.py --seeds 0 1 2 --jobs 6 --append BENCHMARKS.md
"""

import argparse
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from unnoise import data
from unnoise.config import TrainConfig
from unnoise.metrics.points import w2
from unnoise.pipeline import train, write_pairs

NFES = (1, 2, 4, 8)
METHODS = ("diffusion", "flow", "ot-cfm", "reflow", "shortcut", "meanflow", "consistency", "consistency-distilled")
OWN_SAMPLER = ("shortcut", "meanflow", "consistency", "consistency-distilled")


def seconds_per_step(cfg, folder, steps=100):
    """Seconds per training step of cfg: the time of 20 + steps steps minus that of 20 (start-up cancels),
    after one untimed warm-up run (first calls, data caches)."""
    times = []
    train(dataclasses.replace(cfg, steps=10, warmup=5), folder / "warmup", progress=False)
    for k in (20, 20 + steps):
        start = time.perf_counter()
        train(dataclasses.replace(cfg, steps=k, warmup=10), folder / str(k), progress=False)
        times.append(time.perf_counter() - start)
    return max((times[1] - times[0]) / steps, 0.5 * times[1] / (20 + steps))


def budgeted(cfg, folder, budget, scratch):
    """Train cfg for as many steps as fit in budget seconds; returns (run, steps, seconds)."""
    steps = max(50, int(budget / seconds_per_step(cfg, scratch)))
    start = time.perf_counter()
    run = train(dataclasses.replace(cfg, steps=steps), folder, progress=False)
    return run, steps, time.perf_counter() - start


def train_reflow(cfg, folder, budget, scratch, pairs):
    """Half the budget for the base flow; pairs (dopri5) and the reflow training share what is left."""
    sec = seconds_per_step(cfg, scratch)
    start = time.perf_counter()
    base_steps = int(0.5 * budget / sec)
    train(dataclasses.replace(cfg, steps=base_steps), folder / "base", progress=False)
    base = write_pairs(folder / "base", folder / "reflow", pairs, cfg.seed)
    steps = max(50, int((budget - (time.perf_counter() - start)) / sec))
    reflow_cfg = dataclasses.replace(cfg, coupling="reflow", steps=steps)
    run = train(reflow_cfg, folder / "reflow", progress=False, init=base.net.state_dict())
    return run, f"{base_steps}+{steps}", time.perf_counter() - start


def train_distilled(cfg, folder, budget, scratch):
    """Half the budget for a flow teacher, the rest for consistency distillation from it (both counted)."""
    start = time.perf_counter()
    teacher, base_steps, _ = budgeted(cfg, folder / "teacher", 0.5 * budget, scratch / "teacher")
    student = dataclasses.replace(cfg, family="consistency", teacher=str(folder / "teacher"))
    left = budget - (time.perf_counter() - start)
    run, steps, _ = budgeted(student, folder / "student", left, scratch / "student")
    return run, f"{base_steps}+{steps}", time.perf_counter() - start


def evaluate(method, run, heldout, n):
    """W2 at each NFE (and, for diffusion, which sampler won)."""
    out = {}
    for nfe in NFES:
        if method in OWN_SAMPLER:
            name = run.family.sampler_name(run)
            out[nfe] = {"w2": w2(run.sample(n, nfe=nfe, seed=1), heldout), "sampler": name}
            continue
        samplers = ("ddim", "ddpm") if method == "diffusion" else ("ddim",)
        scores = {s: w2(run.sample(n, s, nfe, seed=1), heldout) for s in samplers}
        best = min(scores, key=scores.get)
        out[nfe] = {"w2": scores[best], "sampler": best if method == "diffusion" else "euler"}
    return out


def job(args):
    """Train and measure the four methods on one data set with one seed."""
    name, seed, budget, n, width, pairs, threads, methods = args
    torch.set_num_threads(threads)
    heldout, fresh = data.load(name, "heldout", n).x, data.load(name, "fresh", n).x
    floor = w2(fresh, heldout)
    base = dict(data=name, seed=seed, width=width, checkpoint_every=10**9)
    cfgs = {
        "diffusion": TrainConfig(family="diffusion", **base),
        "flow": TrainConfig(family="flow", **base),
        "ot-cfm": TrainConfig(family="flow", coupling="ot", **base),
        **{m: TrainConfig(family=m, **base) for m in ("shortcut", "meanflow", "consistency")},
    }
    result = {"data": name, "seed": seed, "n": n, "floor": floor, "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for method in methods:
            scratch = tmp / f"{method}-calibration"
            if method == "reflow":
                run, steps, seconds = train_reflow(cfgs["flow"], tmp / method, budget, scratch, pairs)
            elif method == "consistency-distilled":
                run, steps, seconds = train_distilled(cfgs["flow"], tmp / method, budget, scratch)
            else:
                run, steps, seconds = budgeted(cfgs[method], tmp / method, budget, scratch)
            scores = evaluate(method, run, heldout, n)
            result["methods"][method] = {"steps": steps, "train_seconds": seconds, "nfe": scores}
            print(
                f"{name} seed {seed} {method}: {steps} steps in {seconds:.1f} s; "
                + ", ".join(f"NFE {k} {v['w2'] / floor:.2f}x" for k, v in scores.items()),
                flush=True,
            )
    return result


def machine():
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {"nproc": os.cpu_count(), "cpu": model, "torch": torch.__version__}


def summarise(results):
    """Mean and std over seeds of W2 / floor, per data set, method and NFE; and the mean floor and train time."""
    table = {}
    for r in results:
        t = table.setdefault(r["data"], {"floor": [], "n": r["n"], "methods": {}})
        t["floor"].append(r["floor"])
        for method, m in r["methods"].items():
            row = t["methods"].setdefault(
                method,
                {
                    "seconds": [],
                    "ratios": {nfe: [] for nfe in NFES},
                    "w2": {nfe: [] for nfe in NFES},
                    "samplers": {nfe: [] for nfe in NFES},
                    "steps": [],
                },
            )
            row["seconds"].append(m["train_seconds"])
            row["steps"].append(m["steps"])
            for nfe in NFES:
                row["ratios"][nfe].append(m["nfe"][nfe]["w2"] / r["floor"])
                row["w2"][nfe].append(m["nfe"][nfe]["w2"])
                row["samplers"][nfe].append(m["nfe"][nfe]["sampler"])
    return table


def mean_std(xs):
    t = torch.tensor(xs, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(xs) > 1 else 0.0


def markdown(table, seeds, command, info, budget, plot):
    lines = [
        f"## few_step: W2 / floor at NFE {', '.join(map(str, NFES))} ({datetime.date.today()})",
        "",
        f"- machine: nproc {info['nproc']}, {info['cpu']}, torch {info['torch']} with {info['threads']} thread(s) per job, "
        f"load average {info['load'][0]:.1f} at the end (a shared machine)",
        f"- command: `{command}`",
        f"- seeds {', '.join(map(str, seeds))}; each cell: mean W2/floor over seeds (+- std), mean W2 in brackets; "
        f"training budget {budget:.0f} s per method (reflow: base flow + pairs + reflow together)",
        "- flows sample with Euler (DDIM eta=0 on the rectified path); diffusion (linear schedule, eps) with the "
        "better of DDPM / DDIM at each NFE (named in the cell)",
        "",
    ]
    for name, t in table.items():
        floor, floor_std = mean_std(t["floor"])
        lines += [
            f"**{name}**, n = {t['n']}, W2 floor {floor:.4f} (+- {floor_std:.4f} over seeds)",
            "",
            "| method | train s | steps | " + " | ".join(f"NFE {k}" for k in NFES) + " |",
            "|---|---|---|" + "---|" * len(NFES),
        ]
        for method, row in t["methods"].items():
            cells = []
            for nfe in NFES:
                m, s = mean_std(row["ratios"][nfe])
                w, _ = mean_std(row["w2"][nfe])
                sampler = (
                    f" {max(set(row['samplers'][nfe]), key=row['samplers'][nfe].count)}"
                    if method == "diffusion" or method in OWN_SAMPLER
                    else ""
                )
                cells.append(f"{m:.2f} +- {s:.2f} ({w:.3f}){sampler}")
            sec, _ = mean_std(row["seconds"])
            lines.append(f"| {method} | {sec:.1f} | {'/'.join(map(str, row['steps']))} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"![few-step W2 / floor]({plot})", ""]
    return "\n".join(lines)


def plot(table, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 3.8), squeeze=False)
    for ax, (name, t) in zip(axes[0], table.items()):
        for method, row in t["methods"].items():
            stats = [mean_std(row["ratios"][nfe]) for nfe in NFES]
            ax.errorbar(NFES, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3, label=method)
        ax.axhline(1.0, color="grey", ls=":", label="floor")
        ax.axhline(2.0, color="grey", ls="--", lw=0.8, label="2 x floor")
        ax.set_xscale("log", base=2), ax.set_yscale("log"), ax.set_xticks(NFES, [str(k) for k in NFES])
        ax.set_xlabel("NFE (network evaluations per sample)"), ax.set_ylabel("W2 / floor")
        ax.set_title(f"{name}, n={t['n']}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["moons", "8gaussians"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per method")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument(
        "--width", type=int, default=128, help="MLP width (default 128: 2-3 x the steps of 256 in the budget)"
    )
    p.add_argument("--pairs", type=int, default=10000, help="reflow pairs")
    p.add_argument("--jobs", type=int, default=1, help="(data, seed) jobs in parallel")
    p.add_argument("--threads", type=int, default=2, help="torch threads per job (1 is far faster on a loaded machine)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--out", default="benchmarks/few_step", help="writes OUT.json and OUT.png")
    p.add_argument("--append", help="append the table to this markdown file (e.g. BENCHMARKS.md)")
    args = p.parse_args()
    tasks = [
        (name, seed, args.budget, args.n, args.width, args.pairs, args.threads, args.methods)
        for name in args.data
        for seed in args.seeds
    ]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(job, tasks)
    else:
        results = [job(t) for t in tasks]
    info, table = dict(machine(), threads=args.threads, load=os.getloadavg()), summarise(results)
    command = "python benchmarks/few_step.py " + " ".join(sys.argv[1:])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({"machine": info, "command": command, "results": results}, indent=1))
    plot(table, args.out + ".png")
    text = markdown(table, args.seeds, command, info, args.budget, Path(args.out).name + ".png")
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
