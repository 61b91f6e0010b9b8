"""docs/results.md: the headline results at a glance, generated from the benchmarks' JSON files (never typed).

    python benchmarks/results.py            # rewrite docs/results.md
    python benchmarks/results.py --check    # exit 1 when docs/results.md is not what the JSON files give

Each table names the command that wrote its JSON; every quality figure sits beside its floor, its n and its cost.
BENCHMARKS.md keeps the full log.
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results.md"
FAMILIES = "benchmarks/families/results-{data}.json"
FEW_POINTS, FEW_IMAGES = "benchmarks/few_step.json", "benchmarks/few_step_images.json"
LATENT = "benchmarks/latent"  # results-DATA SIZE.json, one per data set
TEXT = "benchmarks/text"  # results-DATA.json, one per data set
PEER_CONSISTENCY = "benchmarks/peers_consistency.json"


def load(name):
    return json.loads((ROOT / name).read_text())


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def spread(values):
    """'mean' or 'mean +- sd' over seeds."""
    m = mean(values)
    return f"{m:.2f}" if len(values) < 2 else f"{m:.2f} ± {statistics.stdev(values):.2f}"


def plural(k, word):
    return f"{k} {word}{'s' if k != 1 else ''}"


def families_table(data):
    """The families race on one data set: equal training seconds per family, one row per family over its seeds."""
    results = load(FAMILIES.format(data=data))
    first = next(iter(results.values()))[0]
    lines = [
        f"### The families race on {data} ({plural(len(next(iter(results.values()))), 'seed')}, about "
        f"{round(first['train_seconds'])} s of training each)",
        "",
        f"`python benchmarks/families.py --data {data}` (JSON: `{FAMILIES.format(data=data)}`). FID / floor under the "
        f"judge (n = {first['raw']['n']}; 1.0 is held-out real data), at the family's own sampler (raw) and at its "
        "best guidance and temperature (tuned).",
        "",
        "| family | steps | network calls | ms / image (batch 1) | class accuracy (floor) | FID / floor, raw | "
        "FID / floor, tuned |",
        "|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(results.items(), key=lambda kv: mean([r["tuned"]["fid_ratios"][0] for r in kv[1]]))
    for family, rows in ranked:
        accuracy = mean([r["raw"]["class_accuracy"] for r in rows])
        floor = rows[0]["raw"]["class_accuracy_floor"]
        lines.append(
            f"| {family} | {round(mean([r['steps'] for r in rows])):,} | {rows[0]['nfe']:g} | "
            f"{mean([r['ms_batch1'] for r in rows]):.0f} | {accuracy:.3f} ({floor:.3f}) | "
            f"{spread([r['raw']['fid_ratios'][0] for r in rows])} | {spread([r['tuned']['fid_ratios'][0] for r in rows])} |"
        )
    return lines


def few_points_table():
    """Few-step methods on the moons: exact W2 over its floor against network calls, mean over seeds."""
    saved = load(FEW_POINTS)
    runs = saved["results"]
    methods = list(runs[0]["methods"])
    nfes = sorted({int(k) for m in runs[0]["methods"].values() for k in m["nfe"]})
    lines = [
        f"### How few steps: the moons ({plural(len(runs), 'seed')}, n = {runs[0]['n']})",
        "",
        f"`{saved['command']}` (JSON: `{FEW_POINTS}`). Exact W2 to held-out points over its floor (two real draws), "
        "by network calls per sample.",
        "",
        "| method | training s | " + " | ".join(f"{k} call{'s' if k > 1 else ''}" for k in nfes) + " |",
        "|---|---|" + "---|" * len(nfes),
    ]
    for method in methods:
        cells = []
        for k in nfes:
            ratios = [
                r["methods"][method]["nfe"][str(k)]["w2"] / r["floor"]
                for r in runs
                if str(k) in r["methods"][method]["nfe"]
            ]
            cells.append(spread(ratios) if ratios else "-")
        seconds = mean([r["methods"][method]["train_seconds"] for r in runs])
        lines.append(f"| {method} | {seconds:.0f} | " + " | ".join(cells) + " |")
    return lines


def few_images_table():
    """Few-step methods on the digits: FID / floor (first judge) and class accuracy against network calls."""
    saved = load(FEW_IMAGES)
    runs = saved["results"]
    nfes = sorted({row["nfe"] for run in runs for row in run["rows"]})
    lines = [
        f"### How few steps: the digits ({plural(len({r['seed'] for r in runs}), 'seed')})",
        "",
        f"`python {saved['command']}` (JSON: `{FEW_IMAGES}`). FID / floor under the judge, then class accuracy, by "
        "network calls per image.",
        "",
        "| method | steps (training s) | " + " | ".join(f"{k} call{'s' if k > 1 else ''}" for k in nfes) + " |",
        "|---|---|" + "---|" * len(nfes),
    ]
    for run in runs:
        by_nfe = {row["nfe"]: row for row in run["rows"]}
        cells = [f"{by_nfe[k]['fid_ratios'][0]:.2f}, {by_nfe[k]['accuracy']:.2f}" if k in by_nfe else "-" for k in nfes]
        lines.append(f"| {run['method']} | {run['steps']} ({run['seconds']:.0f}) | " + " | ".join(cells) + " |")
    return lines


def peer_consistency_table():
    """Consistency training from scratch beside tonyduan/diffusion's: FID / floor per judge against network calls."""
    saved = load(PEER_CONSISTENCY)
    rows = saved["rows"]
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        f"### Consistency training beside a peer: digits, unconditional ({plural(len(seeds), 'seed')}, "
        f"{rows[0]['budget']:g} s of training each)",
        "",
        "; ".join(f"`python {c}`" for c in saved["commands"])
        + f" (JSON: `{PEER_CONSISTENCY}`). FID / floor under judges 0 / 1 / 2, mean over "
        "seeds, by network calls per image; the peer's sampler as written, and its `-fixed` rows sampled by Algorithm "
        "1 on float sigmas (benchmarks/peers_consistency.py says why).",
        "",
        "| contestant | steps | 1 call | 2 calls | 4 calls | recall at 4 calls (precision) |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["contestant"] for r in rows):
        mine = [r for r in rows if r["contestant"] == name]
        cells = [
            " / ".join(f"{mean([r['scores'][k]['fid_ratios'][j] for r in mine]):.0f}" for j in range(3))
            for k in ("1", "2", "4")
        ]
        recall = mean([r["scores"]["4"]["recall"] for r in mine])
        precision = mean([r["scores"]["4"]["precision"] for r in mine])
        lines.append(
            f"| {name} | {round(mean([r['steps'] for r in mine])):,} | "
            + " | ".join(cells)
            + f" | {recall:.2f} ({precision:.2f}) |"
        )
    return lines


def levels(x):
    """' [a / b / c]': FID over real data's expected level under each judge, where the JSON holds it."""
    found = x.get("level_ratios")
    return f" [{' / '.join(f'{q:.2f}' for q in found)}]" if found else ""


def latent_table(path):
    """Pixels or latents, U-Net or DiT, at equal seconds on one data set: FID / floor per judge at each scale."""
    saved = json.loads(path.read_text())
    rows = saved["configs"].values()
    data, side = re.fullmatch(r"results-([a-z]+)(\d+)", path.stem).groups()
    n = next(iter(rows))["scales"][0]["n"]
    lines = [
        f"### Pixels or latents: {data} {side}x{side} ({round(saved['seconds'])} s of training each, seed {saved['seed']})",
        "",
        f"`{saved['command']}` (JSON: `{path.relative_to(ROOT)}`). FID / floor under {saved['judges']} (n = {n}), "
        "then, in brackets, FID / real data's expected level (the mean floor over re-splits, metrics/level.py) where "
        "it is stored, then class accuracy where the data has classes; the sample grids below the table.",
        "",
        "| configuration | steps (ms each) | ms / image | FID / floor [/ level] (accuracy), by guidance w |",
        "|---|---|---|---|",
    ]
    for config, row in saved["configs"].items():
        by_w = [
            f"w = {x['w']:g}: {' / '.join(f'{q:.2f}' for q in x['fid_ratios'])}{levels(x)}"
            + (f" ({x['accuracy']:.3f})" if x["accuracy"] is not None else "")
            for x in row["scales"]
        ]
        ms_image = min(x["ms_per_image"] for x in row["scales"])
        lines.append(
            f"| {config} (`{row['flags'] or 'the defaults'}`) | {row['steps']:,} ({1000 * row['seconds'] / row['steps']:.0f}) | "
            f"{ms_image:.0f} | {'; '.join(by_w)} |"
        )
    if saved["ae"]:
        ae = saved["ae"]
        lines.append(
            f"| the autoencoder's reconstructions (the ceiling; {ae['steps']:,} steps) | | | "
            f"{' / '.join(f'{q:.2f}' for q in ae['fid_ratios'])}{levels(ae)}"
            + (f" ({ae['accuracy']:.3f})" if ae["accuracy"] is not None else "")
            + " |"
        )
    lines += ["", " ".join(f"![{config}](../{row['grid']})" for config, row in saved["configs"].items())]
    return lines


def text_table(path):
    """Text on the one transformer: held-out bits per character and the samples' judge, by family and sampling steps."""
    saved = json.loads(path.read_text())
    runs = saved["results"]
    data = path.stem.removeprefix("results-")
    floor = runs[0].get("bits_per_char_floor")
    ar = mean([r["bits_per_char"] for r in runs if r["family"] == "ar"])
    lines = [
        f"### Text: {data} ({plural(len({r['seed'] for r in runs}), 'seed')}, about {round(runs[0]['seconds'])} s of "
        "training each)",
        "",
        f"`python {saved['command']}` (JSON: `{path.relative_to(ROOT)}`). Held-out bits per character (ar exact; mdlm "
        "and duo their bound)" + (f", beside the true chain's {floor:.3f}" if floor else "") + "; then the samples, "
        "judged beside real held-out text: the judge's bits per character"
        + (" and the share of real words" if "word_share" in runs[0]["samples"][0] else "")
        + f" (n = {runs[0]['samples'][0]['n']} samples), by network calls per sample.",
        "",
        "| family | steps | held-out bits / char | network calls | judge bits / char (real) | real words (real) | "
        "ms / sample (batch 1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for k, row in enumerate(r["samples"]):
            words = f"{row['word_share']:.2f} ({row['real_word_share']:.2f})" if "word_share" in row else "-"
            bits = f"{r['bits_per_char']:.3f} ± {r['bits_per_char_stderr']:.3f}"
            if floor:
                bits += f" ({r['bits_per_char'] / floor:.2f} x the chain's)"
            elif ar and r["family"] != "ar":
                bits += f" ({r['bits_per_char'] / ar:.2f} x ar's)"
            head = [r["family"], f"{r['steps']:,}", bits]
            lines.append(
                "| " + " | ".join(head if k == 0 else ["", "", ""]) + f" | {row['steps']} | "
                f"{row['sample_bits_per_char']:.2f} ({row['real_bits_per_char']:.2f}) | {words} | "
                f"{row['ms_per_sample']:,.0f} |"
            )
    return lines


def page():
    """The whole of docs/results.md."""
    lines = [
        "# Results at a glance",
        "",
        "Generated by `python benchmarks/results.py` from the benchmarks' JSON files; do not edit by hand (a test",
        "checks that it is current). Every figure sits beside its floor; the runs, seeds and machines are in",
        "BENCHMARKS.md, which keeps the full log, and the methods in docs/.",
        "",
    ]
    latents = [latent_table(path) for path in sorted((ROOT / LATENT).glob("results-*.json"))]
    texts = [text_table(path) for path in sorted((ROOT / TEXT).glob("results-*.json"))]
    families = (families_table("digits"), families_table("mnist"))
    few = (few_points_table(), few_images_table(), peer_consistency_table())
    for block in (*families, *few, *latents, *texts):
        lines += block + [""]
    lines += [
        "Text on the markov chain and the latent runs on MNIST 28 are in BENCHMARKS.md only: their runs came before",
        "their benchmarks kept a JSON file.",
        "",
        "The figures beside them: ![W2 against network calls on the moons](../benchmarks/few_step.png)",
        "![peers on the moons](../benchmarks/peers-moons.png) ![peers on the digits](../benchmarks/peers-digits.png)",
        "![consistency training, unnoise](../benchmarks/peers-consistency-unnoise.png)",
        "![consistency training, tonyduan/diffusion](../benchmarks/peers-consistency-tonyduan-b64.png)",
        "",
    ]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when docs/results.md is out of date")
    args = p.parse_args()
    text = page()
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python benchmarks/results.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
