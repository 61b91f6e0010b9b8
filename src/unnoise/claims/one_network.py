"""Claim "one-network": LLMs and image generators are "fundamentally different technologies".

One transformer file (nets/transformer.py) and one training loop serve both: here they learn text (kjv, character by
character) left to right (ar) and everywhere at once (masked diffusion, MDLM), and images (digits) line by line (raster
AR over 17-level pixels) and by diffusion, each pair for the same seconds. On text both share the network's widths,
depth and context; on images diffusion's denoiser is the U-Net, not yet the transformer (the latent issue brings the
transformer denoiser). Each wins where it wins: likelihood (held-out bits, exact for ar, a bound for MDLM), samples
judged by a model that is not theirs, and milliseconds per sample at batch 1.
"""

import statistics
import time
from pathlib import Path

from ..config import TrainConfig
from ..metrics import text as text_metrics
from ..metrics.measure import image_quality, ms_per_image
from ..pipeline import get_or_train

NAME = "one-network"
TITLE = "LLMs and image generators are fundamentally different technologies"
ROLES = ()
QUICK_SECONDS = 270  # with --quick on 2 cores (docs/claims.md, Time)
TRAINS = True
SETTINGS = {
    "quick": dict(seconds=60, n=16, steps=64, images=500),
    "full": dict(seconds=300, n=32, steps=64, images=1000),
}
TEXT = ("ar", "mdlm")
IMAGES = ("ar", "diffusion")
LITERATURE = (
    "text8 bits per character at equal size: AR 1.23, MDLM <= 1.40, MD4 <= 1.37 (Sahoo et al. 2024; Shi et al. 2024); "
    "masked diffusion needs ~16x AR's compute for its likelihood (SMDM, Nie et al. 2025) but overtakes AR on "
    "scarce, repeated data (Prabhudesai et al. 2025); LLaDA scales masked diffusion to 8B parameters"
)


def ms_per_text(run, steps, repeats=3):
    """Median milliseconds to write one full-context sample at batch 1 (after a warm-up)."""
    options = run.family.sampler_options(nfe=steps)
    run.sample(1, seed=0, **options)
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        run.sample(1, seed=k + 1, **options)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_text(seconds, n, steps, folder):
    rows = []
    for family in TEXT:
        cfg = TrainConfig(data="kjv", family=family, seed=0)
        start = time.perf_counter()
        run = get_or_train(cfg, Path(folder) / f"text-{family}", seconds=seconds, progress=False)
        took = time.perf_counter() - start
        held = run.family.report(run, 0, 0)
        options = run.family.sampler_options(nfe=steps)
        judged = text_metrics.judge(run.cfg.data, run.cfg.alphabet, run.sample(n, seed=1, **options))
        rows.append(
            {
                "modality": "text",
                "family": family,
                "bits": held["bits_per_char"],
                "bits_kind": held["bits_per_char_kind"],
                "quality": judged["sample_bits_per_char"] / judged["real_bits_per_char"],
                "word_share": judged["word_share"],
                "real_word_share": judged["real_word_share"],
                "passes": run.family.forward_passes(run, options.get("nfe")),
                "ms": ms_per_text(run, steps),
                "steps": run.step,
                "train_seconds": took,
            }
        )
    return rows


def measure_images(seconds, n, folder):
    rows = []
    for family in IMAGES:
        cfg = TrainConfig(data="digits", family=family, conditional=True, seed=0)
        start = time.perf_counter()
        run = get_or_train(cfg, Path(folder) / f"images-{family}", seconds=seconds, progress=False)
        took = time.perf_counter() - start
        quality = image_quality(run, n=n)
        bits = run.family.report(run, 0, 0).get("bpd") if family == "ar" else None
        rows.append(
            {
                "modality": "images",
                "family": family,
                "bits": bits,
                "bits_kind": "exact bits per dimension" if bits else None,
                "quality": quality["ratio"],
                "accuracy": quality["accuracy"],
                "passes": run.family.forward_passes(run),
                "ms": ms_per_image(run, repeats=5),
                "steps": run.step,
                "train_seconds": took,
            }
        )
    return rows


def measure(runs, quick=False, folder="claims/runs/one-network"):
    s = SETTINGS["quick" if quick else "full"]
    table = measure_text(s["seconds"], s["n"], s["steps"], folder) + measure_images(s["seconds"], s["images"], folder)
    return {"budget": s["seconds"], "n": s["n"], "steps": s["steps"], "table": table}


def figure(result, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, modality, label in zip(axes, ("text", "images"), ("judge bits / real text's", "FID / floor")):
        for row in (r for r in result["table"] if r["modality"] == modality):
            ax.plot(row["ms"], row["quality"], "o")
            ax.annotate(f"{row['family']}, {row['passes']} calls", (row["ms"], row["quality"]), fontsize=8)
        ax.axhline(1, color="grey", ls="--", label="real data")
        ax.set(xscale="log", xlabel="ms per sample at batch 1", ylabel=label, title=f"{modality}")
        ax.legend(fontsize=7)
    fig.suptitle(f"one transformer, two orders: {result['budget']} s of training each", fontsize=9)
    fig.tight_layout()
    return fig


def winner(rows, key):
    return min(rows, key=lambda r: r[key])["family"] if len(rows) == 2 else None


def row(result):
    table = result["table"]
    text = [r for r in table if r["modality"] == "text"]
    images = [r for r in table if r["modality"] == "images"]
    words = "; ".join(
        f"{r['modality']} {r['family']}: "
        + (f"{r['bits']:.3f} bits ({r['bits_kind'].split(' (')[0]}), " if r["bits"] else "")
        + f"quality {r['quality']:.2f}x real, {r['passes']} calls, {r['ms']:.0f} ms, {r['steps']} steps"
        for r in table
    )
    ratio = text[1]["bits"] / text[0]["bits"] if len(text) == 2 else float("nan")
    verdict = (
        f"False as a matter of machinery: one transformer file and one training loop learn both modalities in "
        f"both orders here; only the mask and the loss differ. On text, left to right wins likelihood (MDLM's bound "
        f"{ratio:.2f}x AR's bits, the paper's text8 ratio 1.14x), {winner(text, 'quality')} wins the sample judge "
        f"and {winner(text, 'ms')} is faster per passage; on images {winner(images, 'quality')} wins FID and "
        f"{winner(images, 'ms')} speed, after {result['budget']} s each"
    )
    return {
        "claim": TITLE,
        "experiment": f"ar and MDLM on kjv, raster AR and diffusion on digits, {result['budget']} s each; text "
        f"samples n = {result['n']}, MDLM at {result['steps']} steps",
        "ours": words,
        "reference": LITERATURE,
        "verdict": verdict,
    }
