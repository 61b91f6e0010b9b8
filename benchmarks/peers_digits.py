"""unnoise beside lucidrains' denoising-diffusion-pytorch on class-conditional digits: the same images, the same
wall-clock budget, the same judges.

Contestants, each with its own recipe:
  unnoise      `unnoise train --data digits --conditional` defaults (TrainConfig(data="digits", conditional=True):
               diffusion, v-prediction on the VP cosine path, logit-normal training times, U-Net width 32, batch
               32 (128 before 2026-12-02 17:30 UTC), fused AdamW lr 3e-3 with 200 warm-up steps (at most a tenth of the budget) and a cosine decay
               that follows the clock, EMA 0.995, label dropout 0.1), trained by
               `unnoise.train(..., seconds=budget)`; sampled with its default: dpmpp_2m_sde at 30 NFE since
               2026-12-03 17:00 UTC, dpmpp_2m at 20 NFE before
  unnoise-flow (only when named) the flow family with batch 256, the recipe that led at 120 s (docs/images.md)
  unnoise-b64, unnoise-b128 (only when named) the defaults at batch 64 or 128 (the default before 2026-12-02 17:30)
  ddpm-cfg     denoising-diffusion-pytorch's classifier-free-guidance model, as its module's own example builds it
               (classifier_free_guidance.Unet(dim, num_classes, cond_drop_prob=0.5), GaussianDiffusion(timesteps=1000,
               cosine betas, pred_noise)), sized to 8x8: dim 32, dim_mults (1, 2, 4), one channel; trained with its
               Trainer's optimisation defaults (Adam lr 1e-4, betas (0.9, 0.99), batch 16, ema_pytorch EMA 0.995
               updated every 10 steps) and sampled with its DDIM sampler at sampling_timesteps 50 (eta 1, its default)
  ddpm-cfg-256 (only when named) the same at batch 256 and lr 2e-4: the peer given a larger batch (1.6 s a step here)

The peer's package __init__ imports its image Trainer (torchvision, accelerate), which none of this uses and whose
torchvision does not load beside torch 2.13.0 here; its classifier_free_guidance module imports only torch, einops
and tqdm, so it is loaded from its file. Its forward_with_cond_scale returns one tensor at cond_scale == 1, which its
own sampler cannot unpack (2.3.4), so w = 1 is asked as 1 + 1e-6; its sampler then makes two network calls a step.
Guidance follows one convention on both sides: w = 1 is the plain conditional model.

Each (contestant, budget, seed) trains in a fresh process (this script with --one) with 2 torch threads, for
`budget` seconds of training loop only (set-up and sampling outside the clock), then draws n class-conditional
samples (classes in turn) at w = 1, 1.1 and 1.25, scored by benchmarks/images.py's judge: class accuracy of the default
judge, FID beside its held-out floor under three judges, memorization. Time to quality: the smallest budget at
which the mean over seeds of the worst judge's FID / floor is within 1.5 x (1.2 x), at the better w.

Peers are an optional extra; keep the installed torch with
`pip install --no-deps denoising-diffusion-pytorch==2.3.4 ema-pytorch==0.8.3 einops==0.8.2`.

    python benchmarks/peers_digits.py --budgets 60,180 --seeds 2 --append
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import images as scoring
import unnoise
from peers import ratio_text, train_for, versions
from unnoise.checkpoint import load_json
from unnoise.pipeline import UNCAPPED

THREADS = 2
SCALES = (1.0, 1.1, 1.25)
LEVELS = (1.5, 1.2)
CONTESTANTS = ("unnoise", "ddpm-cfg")
OPTIONAL = (
    "unnoise-flow",
    "unnoise-b64",
    "unnoise-b128",
    "unnoise-b16",
    "unnoise-w24",
    "unnoise-lr5e-3",
    "ddpm-cfg-256",
)
# settings over unnoise's defaults, per unnoise contestant
UNNOISE = {
    "unnoise": {},
    "unnoise-flow": {"family": "flow", "batch_size": 256},
    "unnoise-b64": {"batch_size": 64},
    "unnoise-b128": {"batch_size": 128},
    "unnoise-b16": {"batch_size": 16},
    "unnoise-w24": {"width": 24},
    "unnoise-lr5e-3": {"lr": 5e-3},
}
PEERS = ("ddpm-cfg", "ddpm-cfg-256")
PEER = {"ddpm-cfg": {"batch": 16, "lr": 1e-4}, "ddpm-cfg-256": {"batch": 256, "lr": 2e-4}}
RECIPES = {
    "unnoise": "defaults (diffusion, v on the VP cosine path, logit-normal times since 2026-12-02 15:00 UTC, U-Net "
    "width 32, batch 32 (128 before 17:30 UTC), AdamW 3e-3, warm-up to a tenth of the budget + cosine over the clock, EMA); "
    "the image default sampler (dpmpp_2m_sde 30 NFE; dpmpp_2m 20 NFE before 2026-12-03 17:00 UTC)",
    "unnoise-flow": "flow family, batch 256, otherwise the defaults",
    "unnoise-b64": "the defaults at batch 64",
    "unnoise-b128": "the defaults at batch 128 (the default before 2026-12-02 17:30 UTC)",
    "unnoise-b16": "the defaults at batch 16",
    "unnoise-w24": "the defaults with a U-Net of width 24",
    "unnoise-lr5e-3": "the defaults with lr 5e-3",
    "ddpm-cfg": "denoising-diffusion-pytorch 2.3.4 classifier_free_guidance: Unet(dim 32, dim_mults (1, 2, 4), "
    "cond_drop_prob 0.5), 1000 cosine-beta steps, pred_noise; batch 16, Adam 1e-4 (0.9, 0.99), EMA 0.995 "
    "every 10 steps; DDIM 50 steps (100 NFE with guidance)",
    "ddpm-cfg-256": "as ddpm-cfg at batch 256 and Adam 2e-4",
}


def cfg_module():
    """denoising_diffusion_pytorch.classifier_free_guidance, loaded from its file without the package __init__."""
    spec = importlib.util.find_spec("denoising_diffusion_pytorch")
    if spec is None:
        raise SystemExit(
            "denoising-diffusion-pytorch is not installed: pip install --no-deps "
            "denoising-diffusion-pytorch==2.3.4 ema-pytorch==0.8.3 einops==0.8.2"
        )
    path = Path(spec.submodule_search_locations[0]) / "classifier_free_guidance.py"
    module_spec = importlib.util.spec_from_file_location("ddp_classifier_free_guidance", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def run_peer(name, budget, seed, n):
    """The peer's recipe for budget seconds: ({w: (images in [0, 1], NFE per image, seconds per image)}, steps, seconds)."""
    from ema_pytorch import EMA

    ddp = cfg_module()
    train = unnoise.data.load("digits", "train")
    x, y = train.x, train.y  # (N, 1, 8, 8) in [0, 1], as the peer expects (it normalises to [-1, 1] itself)
    model = ddp.Unet(dim=32, dim_mults=(1, 2, 4), num_classes=10, cond_drop_prob=0.5, channels=1)
    diffusion = ddp.GaussianDiffusion(model, image_size=8, timesteps=1000, sampling_timesteps=50)
    optimizer = torch.optim.Adam(diffusion.parameters(), lr=PEER[name]["lr"], betas=(0.9, 0.99))
    ema = EMA(diffusion, beta=0.995, update_every=10)
    generator = torch.Generator().manual_seed(seed)

    def step():
        rows = torch.randint(0, len(x), (PEER[name]["batch"],), generator=generator)
        loss = diffusion(x[rows], classes=y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update()

    steps, seconds = train_for(budget, step)
    sampler = ema.ema_model.eval()
    calls = [0]
    forward = sampler.model.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return forward(*args, **kwargs)

    sampler.model.forward = counted
    labels = torch.arange(n) % 10
    out = {}
    for w in SCALES:
        torch.manual_seed(seed)
        calls[0], start, chunks = 0, time.perf_counter(), []
        for part in labels.split(500):
            chunks.append(sampler.sample(classes=part, cond_scale=w if w != 1 else 1 + 1e-6))
        seconds_per = (time.perf_counter() - start) / n
        out[w] = (torch.cat(chunks), calls[0] / len(labels.split(500)), seconds_per)
    return out, steps, seconds


def run_unnoise(contestant, budget, seed, n):
    """unnoise's defaults (or a recipe of UNNOISE) for budget seconds, sampled with the defaults: as run_peer."""
    extra = UNNOISE[contestant]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = unnoise.TrainConfig(data="digits", conditional=True, seed=seed, steps=UNCAPPED, **extra)
        run = unnoise.train(cfg, Path(tmp) / "run", progress=False, seconds=budget)
        seconds = float(load_json(Path(tmp) / "run" / "config.json")["train_seconds"])
        out = {}
        for w in SCALES:
            evals, start = [], time.perf_counter()
            images = run.sample(n, seed=seed, label="each", guidance=w, callback=lambda i, *_: evals.append(i))  # noqa: B023 (called before the loop moves on)
            out[w] = (images, len(evals) / max(1, evals.count(0)), (time.perf_counter() - start) / n)
        return out, run.step, seconds


def one(contestant, budget, seed, n):
    """Train and score one contestant with one seed and budget; returns a JSON-ready dict."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    if contestant.startswith("unnoise"):
        out, steps, seconds = run_unnoise(contestant, budget, seed, n)
    else:
        out, steps, seconds = run_peer(contestant, budget, seed, n)
    scores = {}
    for w, (images, nfe, per_image) in out.items():
        r = scoring.judge(images.clamp(0, 1), torch.arange(n) % 10, "digits", 8, 1)
        scores[str(w)] = {
            "accuracy": r["class_accuracy"],
            "fid_ratios": scoring.ratios(r),
            "memorization": r["memorization_ratio"],
            "nfe": nfe,
            "ms_per_image": 1000 * per_image,
        }
    return {
        "contestant": contestant,
        "budget": budget,
        "seed": seed,
        "steps": int(steps),
        "train_seconds": round(seconds, 2),
        "scores": scores,
    }


def spawn(contestant, budget, seed, n):
    """one() in a fresh process of this script: its result dict."""
    command = [sys.executable, __file__, "--one", f"{contestant}:{budget:g}:{seed}:{n}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode:
        raise SystemExit(f"{contestant} ({budget:g} s, seed {seed}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worst(score):
    """The worst judge's FID / floor."""
    return max(score["fid_ratios"])


def summarise(results):
    """(contestant, budget) -> steps, and per w: mean accuracy, mean worst FID ratio (sd), mean memorization."""
    table = {}
    for r in results:
        table.setdefault((r["contestant"], r["budget"]), []).append(r)
    out = {}
    for key, rows in table.items():
        out[key] = {"steps": statistics.mean(r["steps"] for r in rows)}
        for w in SCALES:
            s = [r["scores"][str(w)] for r in rows]
            fids = [worst(x) for x in s]
            out[key][w] = {
                "accuracy": statistics.mean(x["accuracy"] for x in s),
                "fid": statistics.mean(fids),
                "fid_sd": statistics.stdev(fids) if len(fids) > 1 else 0.0,
                "memorization": statistics.mean(x["memorization"] for x in s),
                "nfe": s[0]["nfe"],
                "ms": statistics.mean(x["ms_per_image"] for x in s),
            }
    return out


def best_fid(row):
    """The better of the two guidance scales' mean worst-judge FID ratio."""
    return min(row[w]["fid"] for w in SCALES)


def time_to_quality(summary, contestant, budgets, level):
    """The smallest budget whose better-w mean worst-judge FID / floor is within level, or None."""
    return next((b for b in sorted(budgets) if best_fid(summary[contestant, b]) <= level), None)


def tables(summary, contestants, budgets):
    """Markdown: quality at equal budget, then time to quality and unnoise's ratio to the best peer."""
    longest = max(budgets)
    head = " | ".join(f"w = {w:g}: accuracy / worst FID ratio / memorization" for w in SCALES)
    lines = ["", f"| contestant | budget s | steps | {head} | NFE | ms / image |", "|---" * (5 + len(SCALES)) + "|"]
    for c in contestants:
        for b in budgets:
            row = summary[c, b]
            cells = " | ".join(
                f"{row[w]['accuracy']:.3f} / {row[w]['fid']:.2f} ± {row[w]['fid_sd']:.2f} / "
                f"{row[w]['memorization']:.2f}"
                for w in SCALES
            )
            lines.append(f"| {c} | {b:g} | {row['steps']:.0f} | {cells} | {row[1.0]['nfe']:g} | {row[1.0]['ms']:.1f} |")
    lines += [
        "",
        "| time to quality (worst judge, better w) | " + " | ".join(f"{lv:g} x" for lv in LEVELS) + " |",
        "|---|" + "---|" * len(LEVELS),
    ]
    ttq = {c: [time_to_quality(summary, c, budgets, lv) for lv in LEVELS] for c in contestants}
    for c in contestants:
        lines.append(
            f"| {c} | " + " | ".join(f"{t:g} s" if t is not None else f"> {longest:g} s" for t in ttq[c]) + " |"
        )
    peers = [c for c in contestants if c in PEERS]
    for mine in (c for c in contestants if c.startswith("unnoise")):
        if peers:
            best = [min((ttq[p][k] for p in peers if ttq[p][k] is not None), default=None) for k in range(len(LEVELS))]
            lines.append(
                f"| {mine} / best peer | "
                + " | ".join(ratio_text(m, p, longest) for m, p in zip(ttq[mine], best))
                + " |"
            )
    return lines


def plot(summary, contestants, budgets, path):
    """Worst-judge FID / floor (better w) and class error against the budget, one line per contestant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for c in contestants:
        axes[0].plot(budgets, [best_fid(summary[c, b]) for b in budgets], "o-", label=c)
        axes[1].plot(budgets, [max(1 - summary[c, b][1.0]["accuracy"], 1e-3) for b in budgets], "o-", label=c)
    for level, style in ((1.0, "-"), (1.2, "--"), (1.5, ":")):
        axes[0].axhline(level, color="gray", linestyle=style, linewidth=1)
    axes[1].axhline(0.01, color="red", linestyle="--", linewidth=1, label="target (accuracy 0.99)")
    axes[0].set(
        yscale="log",
        xlabel="training budget (s, 2 threads)",
        ylabel="FID / floor (worst of 3 judges, better w)",
        title="digits 8x8: FID beside the floor",
    )
    axes[1].set(
        yscale="log",
        xlabel="training budget (s, 2 threads)",
        ylabel="class error at w = 1",
        title="digits 8x8: class error",
    )
    for ax in axes:
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="60,180", help="training seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--n",
        type=int,
        default=400,
        help="samples per guidance scale (FID uses min(n, 359 held-out); the peer takes ~0.2 s each). "
        "One draw of 359 moves the worst judge by up to 0.5: quote a 1.0 target at n = 3000 "
        "(recipes_digits.py --rescore; docs/performance.md, seventh round)",
    )
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help=f"comma-separated, of {', '.join(CONTESTANTS + OPTIONAL)}"
    )
    parser.add_argument("--append", action="store_true", help="append to BENCHMARKS.md and plot into benchmarks/")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # contestant:budget:seed:n, run in this process
    args = parser.parse_args()
    if args.one:
        contestant, budget, seed, n = args.one.split(":")
        print(json.dumps(one(contestant, float(budget), int(seed), int(n))))
        return
    budgets = sorted(float(b) for b in args.budgets.split(","))
    contestants = args.contestants.split(",")
    unknown = sorted(set(contestants) - set(CONTESTANTS + OPTIONAL))
    if unknown:
        parser.error(f"unknown contestants {unknown}; choose from {', '.join(CONTESTANTS + OPTIONAL)}")
    results = []
    for seed in range(args.seeds):
        for budget in budgets:
            for contestant in contestants:
                r = spawn(contestant, budget, seed, args.n)
                results.append(r)
                text = "; ".join(
                    f"w = {w}: accuracy {s['accuracy']:.3f}, FID ratios "
                    f"{' / '.join(f'{q:.2f}' for q in s['fid_ratios'])}, memorization "
                    f"{s['memorization']:.2f}, {s['nfe']:g} NFE, {s['ms_per_image']:.1f} ms per image"
                    for w, s in r["scores"].items()
                )
                print(
                    f"seed {seed} {budget:g} s {contestant}: {r['steps']} steps in {r['train_seconds']:.1f} s; {text}",
                    flush=True,
                )
    summary = summarise(results)
    lines = [
        f"- peers: {versions(('denoising-diffusion-pytorch', 'ema-pytorch', 'einops', 'torch'))}; every job a fresh process with {THREADS} torch threads, run one at a time",
        f"- digits 8x8, class-conditional (1,438 training images); budgets {', '.join(f'{b:g}' for b in budgets)} "
        f"s of training loop; seeds {list(range(args.seeds))}; n = {args.n} samples (classes in turn) at w = "
        f"{' and '.join(f'{w:g}' for w in SCALES)}, scored by benchmarks/images.py's judge: class accuracy "
        "(default judge), FID / held-out floor under three judges (the worst shown, mean ± sd over seeds), "
        "memorization; time to quality: the smallest budget whose better-w mean is within 1.5 x (1.2 x)",
        *(f"- {c}: {RECIPES[c]}" for c in contestants),
    ]
    lines += tables(summary, contestants, budgets)
    if args.append:
        path = Path(__file__).resolve().parent / f"peers-digits-{'-'.join(contestants)}.png"
        plot(summary, contestants, budgets, path)
        lines += ["", f"![digits: FID / floor and class error against the budget](benchmarks/{path.name})"]
        common.append("peers on digits: unnoise beside denoising-diffusion-pytorch at equal wall-clock budgets", lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
