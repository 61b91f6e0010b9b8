"""Quality against cost: W2 / floor for every sampler at each NFE, on trained 2D runs (moons, 8 gaussians).

Trains (or reuses) one run per data set and family in ROOT/<data>/<family> (ROOT: qvn in the system temp
folder unless --root says otherwise): diffusion is eps prediction on the linear discrete schedule (the
project default), flow is rectified flow. Every sampler that accepts the run draws n points at each NFE
budget (a sampler that refuses a budget, or the run, is skipped; dopri5 runs once, adaptive). W2 is exact
(POT) against the held-out draw, averaged over the sample seeds; the floor is W2 between a fresh real draw
and the held-out draw at the same n, averaged over fresh draws seeded 100, 101, 102. The ratio is mean W2 /
mean floor. Writes a CSV and one figure next to this script.
Target (issue): some sampler within 1.5 x floor at NFE <= 10.

    python benchmarks/quality_vs_nfe.py [--data moons 8gaussians] [--families diffusion flow]
        [--nfe 1 2 4 8 16 32 64 128] [--n 2000] [--seeds 3] [--steps 3000] [--root DIR] [--append]
"""

import argparse
import csv
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
from unnoise import data  # noqa: E402
from unnoise.config import TrainConfig  # noqa: E402
from unnoise.errors import UnnoiseError  # noqa: E402
from unnoise.metrics.points import w2  # noqa: E402
from unnoise.pipeline import get_or_train  # noqa: E402
from unnoise.samplers import SAMPLERS  # noqa: E402

FLOOR_SEEDS = (100, 101, 102)
TARGET, LOW_NFE = 1.5, 10
COLUMNS = ("data", "family", "sampler", "nfe_requested", "nfe_counted", "w2", "floor", "ratio")


def run_for(root, name, family, steps):
    """The trained run for (data set, family): loaded if its folder holds one, else trained; and the seconds it
    took to train here (None for a run that was there already)."""
    folder = Path(root) / name / family
    reused, start = (folder / "config.json").exists(), time.perf_counter()
    run = get_or_train(TrainConfig(data=name, family=family, steps=steps), folder, progress=False)
    return run, None if reused else time.perf_counter() - start


def floor_of(name, heldout, n):
    """Mean W2 between fresh real draws (FLOOR_SEEDS) and the held-out draw."""
    return statistics.mean(w2(data.load(name, "fresh", n, seed=s).x, heldout) for s in FLOOR_SEEDS)


def draw(run, sampler, nfe, n, seed):
    """n samples and the network evaluations counted per batch (every batch restarts the count at 0)."""
    evals = []
    points = run.sample(n, sampler, nfe, seed, callback=lambda i, *_: evals.append(i))
    return points, len(evals) / max(1, evals.count(0))


def measure(run, sampler, nfe, heldout, n, seeds):
    """(mean W2, mean counted NFE) over the sample seeds; W2 is nan when a sample is not finite."""
    scores, counted = [], []
    for seed in seeds:
        points, evals = draw(run, sampler, nfe, n, seed)
        scores.append(w2(points, heldout) if torch.isfinite(points).all() else math.nan)
        counted.append(evals)
    return statistics.mean(scores), statistics.mean(counted)


def evaluate(run, family, nfes, heldout, floor, n, seeds):
    """One CSV row per (sampler, NFE) the sampler accepts on this run."""
    rows = []
    for sampler in SAMPLERS:
        for nfe in [None] if sampler == "dopri5" else nfes:
            try:
                score, counted = measure(run, sampler, nfe or 1, heldout, n, seeds)
            except UnnoiseError as err:  # nfe too small for the solver, or a path it refuses
                print(f"  skip {sampler} nfe {nfe}: {err}", flush=True)
                continue
            rows.append(
                dict(
                    data=run.cfg.data,
                    family=family,
                    sampler=sampler,
                    nfe_requested=nfe,
                    nfe_counted=counted,
                    w2=score,
                    floor=floor,
                    ratio=score / floor,
                )
            )
            print(
                f"  {family:9s} {sampler:15s} nfe {nfe or '-':>4} counted {counted:6.1f}  w2 {score:.4f}  "
                f"ratio {score / floor:.2f}",
                flush=True,
            )
    return rows


def write_csv(rows, path):
    """The rows as CSV, floats to 6 significant digits."""
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, COLUMNS)
        out.writeheader()
        for row in rows:
            out.writerow({k: (f"{v:.6g}" if isinstance(v, float) else "" if v is None else v) for k, v in row.items()})


def plot(rows, names, families, path):
    """One log-log panel per data set x family: W2 against counted NFE, floor dashed, 1.5 x floor dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names), len(families), figsize=(5.5 * len(families), 4.2 * len(names)), squeeze=False)
    colors = dict(zip(SAMPLERS, plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]))
    markers = dict(zip(SAMPLERS, "ov^sDPX<>hdp"))  # identical samplers (ddim = euler) stay visible
    for ax, (name, family) in zip(axes.flat, [(d, f) for d in names for f in families]):
        mine = [r for r in rows if r["data"] == name and r["family"] == family]
        for sampler in SAMPLERS:
            line = sorted((r["nfe_counted"], r["w2"]) for r in mine if r["sampler"] == sampler)
            if line:
                style = (
                    dict(marker="*", markersize=14, linestyle="none")
                    if sampler == "dopri5"
                    else dict(marker=markers[sampler], markersize=5, fillstyle="none", linewidth=1)
                )
                ax.plot(*zip(*line), color=colors[sampler], label=sampler, **style)
        if mine:
            floor = mine[0]["floor"]
            ax.axhline(floor, color="black", linestyle="--", linewidth=1, label="floor")
            ax.axhline(TARGET * floor, color="black", linestyle=":", linewidth=1, label=f"{TARGET} x floor")
        ax.set(xscale="log", yscale="log", title=f"{name} / {family}", xlabel="NFE (counted)", ylabel="W2")
        ax.grid(True, which="both", alpha=0.3)
    legend = {}
    for ax in axes.flat:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(legend.values(), legend.keys(), loc="center right", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def best_low(rows):
    """The row with the lowest ratio among counted NFE <= LOW_NFE, or None."""
    low = [r for r in rows if r["nfe_counted"] <= LOW_NFE and not math.isnan(r["ratio"])]
    return min(low, key=lambda r: r["ratio"]) if low else None


def cell(ratio):
    """A ratio for the table, bold where it meets the target."""
    if math.isnan(ratio):
        return "nan"
    text = f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"
    return f"**{text}**" if ratio <= TARGET else text


def table(rows, nfes):
    """Markdown table of one data set x family: rows sampler, columns requested NFE, cells ratio; dopri5 below."""
    lines = ["| sampler | " + " | ".join(f"NFE {k}" for k in nfes) + " |", "|---" * (len(nfes) + 1) + "|"]
    for sampler in SAMPLERS:
        got = {r["nfe_requested"]: r["ratio"] for r in rows if r["sampler"] == sampler}
        if got and sampler != "dopri5":
            lines.append(f"| {sampler} | " + " | ".join(cell(got[k]) if k in got else "-" for k in nfes) + " |")
    lines += [
        f"\ndopri5 (adaptive, {r['nfe_counted']:.0f} NFE counted): {cell(r['ratio'])}"
        for r in rows
        if r["sampler"] == "dopri5"
    ]
    return lines


def verdict(row, family=True):
    """'sampler (family) at counted NFE: ratio, target met / missed'."""
    if row is None:
        return f"no sampler at NFE <= {LOW_NFE}"
    met = "met" if row["ratio"] <= TARGET else "missed"
    who = f"{row['sampler']} ({row['family']})" if family else row["sampler"]
    return f"{who} at {row['nfe_counted']:g} NFE: **{row['ratio']:.2f}**, target {met}"


def report(rows, names, families, nfes, setup, seconds):
    """The BENCHMARKS.md lines: setup, per data set the best ratio at NFE <= 10, one table per panel."""
    lines = setup + [
        f"- total runtime {seconds / 60:.1f} min; figure `benchmarks/quality_vs_nfe.png`, "
        f"every number in `benchmarks/quality_vs_nfe.csv`",
        f"- target: some sampler within {TARGET} x floor at NFE <= {LOW_NFE} (counted NFE)",
    ]
    for name in names:
        mine = [r for r in rows if r["data"] == name]
        per_family = "; ".join(
            f"{f} {verdict(best_low([r for r in mine if r['family'] == f]), False)}" for f in families
        )
        lines.append(
            f"- {name} (floor {mine[0]['floor']:.4f}), best at NFE <= {LOW_NFE}: "
            f"{verdict(best_low(mine))} (per family: {per_family})"
        )
    lines += [
        f"- cells: mean W2 / mean floor at the requested NFE, **bold** within {TARGET} x floor, - where the "
        "sampler refuses the budget; heun and midpoint spend 2 (steps - 1) + 1 NFE and rk4 4 (steps - 1) + 1, "
        "so they count fewer than requested (NFE 8: 7 and 5); euler_maruyama refuses the rectified path "
        "(its reverse SDE is singular at alpha = 0)"
    ]
    for name in names:
        for family in families:
            lines += [f"\n**{name} / {family}**\n"] + table(
                [r for r in rows if r["data"] == name and r["family"] == family], nfes
            )
    lines.append("\n![W2 vs NFE](benchmarks/quality_vs_nfe.png)")
    return lines


def setup_line(run, n, seeds):
    """How the runs were trained and measured."""
    cfg = run.cfg
    return (
        f"- one run per data set x family, seed {cfg.seed}: {cfg.steps} steps, batch {cfg.batch_size}, "
        f"MLP width {cfg.width} depth {cfg.depth}, lr {cfg.lr:g}, EMA {cfg.ema}; diffusion = eps on the "
        f"linear discrete schedule (T = 1000), flow = rectified flow (velocity); default spacing (trailing), "
        f"x0 clipping on; n = {n} samples against {n} held-out points, exact W2, mean over sample seeds "
        f"{', '.join(map(str, seeds))}; floor = mean W2(fresh draw seeded "
        f"{FLOOR_SEEDS[0]}-{FLOOR_SEEDS[-1]}, held-out)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "qvn"), help="run folders, reused")
    parser.add_argument("--data", nargs="+", default=["moons", "8gaussians"])
    parser.add_argument("--families", nargs="+", default=["diffusion", "flow"])
    parser.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3, help="sample seeds 0 .. seeds - 1")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default=str(HERE / "quality_vs_nfe"), help="CSV and PNG path, without suffix")
    parser.add_argument("--append", action="store_true", help="append a section to BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, seeds, rows, trained = time.perf_counter(), tuple(range(args.seeds)), [], []
    for name in args.data:
        heldout = data.load(name, "heldout", args.n).x
        floor = floor_of(name, heldout, args.n)
        print(f"{name}: floor {floor:.4f}", flush=True)
        for family in args.families:
            run, seconds = run_for(args.root, name, family, args.steps)
            trained.append(f"{name}/{family} {seconds:.0f} s" if seconds else f"{name}/{family} reused")
            print(f" {family}: {trained[-1]}", flush=True)
            rows += evaluate(run, family, args.nfe, heldout, floor, args.n, seeds)
            write_csv(rows, args.out + ".csv")
    plot(rows, args.data, args.families, args.out + ".png")
    setup = [setup_line(run, args.n, seeds), "- training: " + ", ".join(trained)]
    lines = report(rows, args.data, args.families, args.nfe, setup, time.perf_counter() - start)
    if args.append:
        common.append(f"quality_vs_nfe: W2 / floor per sampler at NFE {', '.join(map(str, args.nfe))}", lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
