"""A fair race: diffusion, flow, raster AR (pixels and VQ tokens) and VAR on the same images, budget and judges.

Every family is class-conditional, trained on the training split only under the same wall-clock budget
(a tokenizer's training counts: it gets TOKENIZER_SHARE of the budget, its prior the rest), with networks
of about the same size (the U-Net at width 32, the transformers at width 64 and depth 5, or 3 with today's
defaults; counts printed). These
recipes are the ones BENCHMARKS.md's races ran; the defaults have since changed (docs/performance.md), and
`--recipes defaults` trains every family with today's defaults instead (diffusion and flow at batch 32,
raster AR and VAR at depth 3, batch 16, lr 4e-3).
For each run: forward passes per sample, milliseconds per image at batch 1 and batch 100 (median of 5
after a warm-up), and the image metrics beside their held-out floors under three judges; bits per
dimension on the same K-level grid (AR exactly; diffusion and flow as a dequantized upper bound through
the probability-flow ODE, seed 0 only); the tokenizers' reconstruction error. "raw" is temperature 1,
no guidance, no top-k/p; "tuned" the best FID ratio (judge 0) over a small grid of guidance and top-k.

    python benchmarks/families.py [--data digits] [--seeds 0 1 2] [--budget 180] [--families ...]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import common
import images as image_bench
import unnoise
from unnoise.likelihood import nll
from unnoise.metrics.images import report
from unnoise.tokenizers.multiscale import reconstruction_report
from unnoise.viz import figures2d
from unnoise.viz.images import sample_grid

TOKENIZER_SHARE = 0.4
CONTINUOUS = {"sampler": "dpmpp_2m", "nfe": 20}
OLD_TRANSFORMER = {"batch_size": 64, "depth": 5, "lr": 2e-3}  # the ar, var defaults until 2026-12-03
OLD_CONTINUOUS = {"batch_size": 256}  # the races' diffusion and flow batch
RECIPES = {  # over the defaults; continuous as benchmarks/images.py
    "diffusion": {"family": "diffusion", "prediction": "v", "schedule": "vp-cosine", **OLD_CONTINUOUS},
    "flow": {"family": "flow", **OLD_CONTINUOUS},
    "ar-pixels": {"family": "ar", **OLD_TRANSFORMER},
    "ar-tokens": {"family": "ar", "tokens": "single", **OLD_TRANSFORMER},
    "var": {"family": "var", "tokens": "multi", **OLD_TRANSFORMER},
}
TUNED = {
    "continuous": [{"guidance": 1.1}, {"guidance": 1.5}],
    "tokens": [{"guidance": 1.5}, {"guidance": 2.5, "guidance_ramp": True}, {"guidance": 1.5, "top_k": "20%"}],
}


def train_family(name, data, seed, budget, root, recipes="race"):
    """Train one family under the budget; returns (run, steps, seconds, tokenizer report or None).

    recipes: "race" trains every family as the published races did (OLD_CONTINUOUS, OLD_TRANSFORMER),
    "defaults" with today's defaults (config.DEFAULTS, config.TRANSFORMER)."""
    recipe = dict(RECIPES[name])
    if recipes == "defaults":
        recipe = {k: v for k, v in recipe.items() if k not in {**OLD_TRANSFORMER, **OLD_CONTINUOUS}}
    folder, tok_report, tok_seconds = root / f"{data}-{name}-{seed}", None, 0.0
    if recipe.get("tokens"):
        side = unnoise.tokenizers.multiscale.latent_side(unnoise.data.images.default_size(data))
        tok_cfg = unnoise.TrainConfig(
            data=data, family="vq", seed=seed, scales=str(side) if recipe["tokens"] == "single" else None
        )
        tok, _, tok_seconds = image_bench.budgeted(
            tok_cfg, root / f"{data}-{name}-{seed}-tok", TOKENIZER_SHARE * budget
        )
        heldout = tok.dataset.normalize(tok.dataset.x)
        tok_report = {**reconstruction_report(tok.net, heldout), **tok.net.summary(), "steps": tok.step}
        recon = tok.to_data(tok.net.decode(tok.net.tokens(heldout)))  # the prior's ceiling: judged like samples
        judged = report(recon, tok.dataset.y, data, tok.cfg.size, tok.cfg.channels, verbose=False)
        tok_report.update(recon_fid_ratio=judged["fid"] / judged["fid_floor"], recon_accuracy=judged["class_accuracy"])
        recipe["tokens"] = str(tok.folder)
    cfg = unnoise.TrainConfig(data=data, conditional=True, seed=seed, **recipe)
    run, steps, seconds = image_bench.budgeted(cfg, folder, budget - tok_seconds)
    return run, steps, tok_seconds + seconds, tok_report


def sample(run, n, seed=0, **options):
    """n class-conditional images (classes in turn) and the forward passes per sample, counted."""
    evals = []
    extra = CONTINUOUS if not run.family.discrete else {}
    if options.get("top_k") == "20%":
        options["top_k"] = max(1, run.net.vocab // 5)
    images = run.sample(n, seed=seed, label="each", callback=lambda i, *_: evals.append(i), **extra, **options)
    return images, len(evals) / max(1, evals.count(0))


def ms_per_image(run, batch):
    """Median of 5 timed draws of `batch` images after a warm-up, in milliseconds per image."""
    sample(run, batch)
    times = []
    for repeat in range(5):
        start = time.perf_counter()
        sample(run, batch, seed=repeat + 1)
        times.append((time.perf_counter() - start) / batch * 1000)
    return statistics.median(times)


def judge(run, images, n):
    labels = torch.arange(n) % run.num_classes
    judged = [
        report(images, labels, run.cfg.data, run.cfg.size, run.cfg.channels, verbose=False, classifier_seed=s)
        for s in image_bench.JUDGES
    ]
    result = judged[0]
    result["fid_ratios"] = [r["fid"] / r["fid_floor"] for r in judged]
    return result


LIKELIHOOD = True  # --no-likelihood: skip the continuous families' ODE bound (minutes per run on MNIST)


def bits(run, seed):
    """Held-out bits per dimension on the K-level grid: exact for pixel AR, a dequantized bound for continuous runs."""
    levels = 17 if run.cfg.data == "digits" else 16
    if run.family.discrete:
        held = run.family.bits(run, run.dataset.x)
        train = run.family.bits(run, unnoise.data.load(run.cfg.data, "train", size=run.cfg.size).x)
        return {
            "bpd": held["bpd"],
            "bits_per_image": held["bits_per_image"],
            "bits_per_image_train": train["bits_per_image"],
            "how": "exact" if held["bpd"] else "token code length",
        }
    if seed != 0 or run.path.discrete or not LIKELIHOOD:
        return {}
    result = nll(run, 10**6, "hutchinson", 1, seed=0, levels=levels)
    return {
        "bpd": result["bpd"],
        "how": f"dequantized bound, probability-flow ODE (Hutchinson), {result['seconds']:.0f} s",
    }


def evaluate(run, name, n, seed, out):
    raw_images, nfe = sample(run, n)
    raw = judge(run, raw_images, n)
    tuned = []
    for options in TUNED["tokens" if run.family.discrete else "continuous"]:
        images, _ = sample(run, n, **dict(options))
        tuned.append({**judge(run, images, n), "options": options})
    best = min(tuned, key=lambda r: r["fid_ratios"][0])
    labels = torch.arange(n) % run.num_classes
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
    figures2d.save(
        sample_grid(raw_images[keep], labels[keep], title=f"{run.cfg.data} {name} (raw), {nfe:g} NFE"),
        out / f"{run.cfg.data}-{name}-{seed}.png",
    )
    return {
        "nfe": nfe,
        "raw": raw,
        "tuned": best,
        "ms_batch1": ms_per_image(run, 1),
        "ms_batch100": ms_per_image(run, 100),
        "params": sum(p.numel() for p in run.net.parameters()),
        **bits(run, seed),
    }


def row(name, rs):
    """One table row: means over seeds (and the spread of the FID ratio)."""

    def mean(f):
        values = [f(r) for r in rs if f(r) is not None]
        return statistics.mean(values) if values else None

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    raw_ratio = [r["raw"]["fid_ratios"][0] for r in rs]
    tuned_ratio = [r["tuned"]["fid_ratios"][0] for r in rs]
    tok = mean(lambda r: r["tokenizer"]["rmse_per_prefix"][-1] if r.get("tokenizer") else None)
    tok_fid = mean(lambda r: r["tokenizer"]["recon_fid_ratio"] if r.get("tokenizer") else None)
    return (
        f"| {name} | {rs[0]['params']:,} | {mean(lambda r: r['steps']):.0f} | {rs[0]['nfe']:g} | "
        f"{mean(lambda r: r['ms_batch1']):.1f} | {mean(lambda r: r['ms_batch100']):.2f} | "
        f"{mean(lambda r: r['raw']['class_accuracy']):.3f} | {statistics.mean(raw_ratio):.2f} "
        f"({min(raw_ratio):.2f}-{max(raw_ratio):.2f}) | "
        f"{mean(lambda r: statistics.mean(r['raw']['fid_ratios'])):.2f} | "
        f"{mean(lambda r: r['raw']['precision']):.2f} / {mean(lambda r: r['raw']['recall']):.2f} | "
        f"{mean(lambda r: r['raw']['memorization_ratio']):.2f} | "
        f"{mean(lambda r: r['tuned']['class_accuracy']):.3f} / {statistics.mean(tuned_ratio):.2f} "
        f"({rs[0]['tuned']['options']}) | {fmt(mean(lambda r: r.get('bpd')), '.3f')} | {fmt(tok, '.4f')} / "
        f"{fmt(tok_fid, '.2f')} |"
    )


def plot(results, out):
    """FID ratio (raw and tuned, judge 0) against milliseconds per image at batch 1, one point per run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, rs in results.items():
        xs = [r["ms_batch1"] for r in rs]
        (line,) = ax.plot(xs, [r["raw"]["fid_ratios"][0] for r in rs], "o", label=f"{name} raw")
        ax.plot(xs, [r["tuned"]["fid_ratios"][0] for r in rs], "^", color=line.get_color(), label=f"{name} tuned")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="floor (held-out real)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="ms per image at batch 1 (2 threads)",
        ylabel="FID / floor (judge 0)",
        title="quality against sampling time, same training budget",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    figures2d.save(fig, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", choices=("digits", "mnist"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds per family (default 180)")
    parser.add_argument("--families", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--n", type=int, default=1000, help="samples per setting (metrics use min(n, held-out))")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add these seeds to the results file already there (the table covers all of them)",
    )
    parser.add_argument(
        "--no-likelihood",
        action="store_true",
        help="skip the diffusion / flow bits-per-dimension bound (the probability-flow ODE over every held-out image)",
    )
    parser.add_argument("--out", default="benchmarks/families")
    parser.add_argument(
        "--recipes",
        default="race",
        choices=("race", "defaults"),
        help="the races' recipes (diffusion and flow at batch 256; raster AR and VAR at depth 5, "
        "batch 64, lr 2e-3) or today's defaults for every family",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    global LIKELIHOOD
    LIKELIHOOD = not args.no_likelihood
    out, root = Path(args.out), Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    saved = out / f"results-{args.data}.json"
    results = json.loads(saved.read_text()) if args.merge and saved.exists() else {}
    for name in args.families:
        for seed in args.seeds:
            run, steps, seconds, tok = train_family(name, args.data, seed, args.budget, root, args.recipes)
            result = {
                **evaluate(run, name, args.n, seed, out),
                "steps": steps,
                "train_seconds": seconds,
                "tokenizer": tok,
                "seed": seed,
            }
            results.setdefault(name, []).append(result)
            print(json.dumps({k: v for k, v in result.items() if k not in ("raw", "tuned")}), flush=True)
            (out / f"results-{args.data}.json").write_text(json.dumps(results, indent=1, default=str))
    plot(results, out / f"quality-vs-time-{args.data}.png")
    recipes = (
        f"the races' recipes (diffusion and flow {OLD_CONTINUOUS}, raster AR and VAR {OLD_TRANSFORMER})"
        if args.recipes == "race"
        else "every family at today's defaults"
    )
    head = (
        "| family | params | steps | NFE | ms/img b1 | ms/img b100 | raw acc | raw FID ratio (seeds) | raw FID "
        "ratio, 3 judges | raw P / R | memo | tuned acc / FID ratio (setting) | bpd | tokenizer rmse / recon FID ratio |"
    )
    lines = [
        f"- {args.data}, class-conditional, {args.budget:g} s of training per family (tokenizer "
        f"{TOKENIZER_SHARE:.0%} of it), seeds {sorted({r['seed'] for rs in results.values() for r in rs})}, n = {args.n} samples per setting (metrics at "
        f"min(n, held-out)); continuous: {CONTINUOUS}; means over seeds; FID ratio = FID / floor under judge 0, "
        f"then the mean of the three judges; {recipes}",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    lines += [row(name, rs) for name, rs in results.items()]
    lines += [
        "",
        f"- plot: `{out}/quality-vs-time-{args.data}.png`; grids `{out}/{args.data}-<family>-<seed>.png`; "
        f"raw numbers `{out}/results-{args.data}.json`",
    ]
    common.publish(f"families: diffusion, flow, raster AR and VAR on {args.data}", lines, args.no_append)


if __name__ == "__main__":
    main()
