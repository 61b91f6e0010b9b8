"""Claim "efficiency": any differentiable process can be learned; the difference between families is cost.

Read from the families race (benchmarks/families.py): every family trained on the same images for the
same seconds, then its quality beside the floor and its sampling time. The race is long (about an
hour), so this claim reads its results rather than rerunning it.
"""

import json
import statistics
from pathlib import Path

from ..errors import UnnoiseError

NAME = "efficiency"
TITLE = "Any differentiable process can be learned; the difference is efficiency"
ROLES = ()
QUICK_SECONDS = 0  # with --quick on 2 cores (docs/claims.md, Time)
RESULTS = "benchmarks/families/results-{data}.json"  # in the working folder, else in unnoise's checkout


def load(data="digits"):
    """The race's results: from ./benchmarks/..., else from the source checkout unnoise runs from."""
    name = RESULTS.format(data=data)
    for path in (Path(name), Path(__file__).resolve().parents[3] / name):
        if path.exists():
            return json.loads(path.read_text())
    raise UnnoiseError(
        f"claim {NAME} reads the families race: run `python benchmarks/families.py --data {data}` "
        f"(about an hour) to write {name}"
    )


def measure(runs, quick=False, data="digits"):
    results, table = load(data), []
    for name, rs in results.items():
        table.append(
            {
                "family": name,
                "train_seconds": statistics.mean(r["train_seconds"] for r in rs),
                "nfe": rs[0]["nfe"],
                "ms_batch1": statistics.mean(r["ms_batch1"] for r in rs),
                "accuracy": statistics.mean(r["raw"]["class_accuracy"] for r in rs),
                "fid_ratio": statistics.mean(r["raw"]["fid_ratios"][0] for r in rs),
                "tuned_fid_ratio": statistics.mean(r["tuned"]["fid_ratios"][0] for r in rs),
                "seeds": len(rs),
            }
        )
    return {"data": data, "table": table}


def figure(result, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in result["table"]:
        ax.plot(row["ms_batch1"], row["fid_ratio"], "o", label=f"{row['family']} raw")
        ax.plot(row["ms_batch1"], row["tuned_fid_ratio"], "^", color=ax.lines[-1].get_color())
    ax.axhline(1, color="grey", ls="--", label="floor")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="ms per image at batch 1",
        ylabel="FID / floor (o raw, ^ tuned)",
        title=f"{result['data']}: same training seconds for every family",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def row(result):
    learned = [r for r in result["table"] if r["accuracy"] > 0.5 and r["tuned_fid_ratio"] < 10]
    failed = [r for r in result["table"] if r not in learned]
    best = min(result["table"], key=lambda r: r["tuned_fid_ratio"])
    seconds = result["table"][0]["train_seconds"]
    words = "; ".join(f"{r['family']} {r['tuned_fid_ratio']:.1f}x in {r['ms_batch1']:.0f} ms" for r in result["table"])
    verdict = (
        f"{'Half true' if failed else 'True at this budget'}. At {seconds:.0f} s of training, "
        f"{', '.join(r['family'] for r in learned) or 'no family'} "
        f"learned the {result['data']} (accuracy above 0.5, FID under 10x the floor; best {best['family']} "
        f"at {best['tuned_fid_ratio']:.1f}x)"
    )
    verdict += (
        f", while {', '.join(r['family'] for r in failed)} did not yet. The difference at this budget is "
        "efficiency, not what can be learned."
        if failed
        else ". They differ in cost: in how near the floor the same seconds bring them, and in milliseconds per image."
    )
    return {
        "claim": TITLE,
        "experiment": f"the families race on {result['data']}: {seconds:.0f} s of training each, "
        f"{result['table'][0]['seeds']} seeds, FID beside the held-out floor",
        "ours": words,
        "reference": "a prediction: all families reach the data given enough compute",
        "verdict": verdict,
    }
