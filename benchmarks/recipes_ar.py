"""Raster AR and VAR recipes against the clock: what a token model of digits learns in a wall-clock budget.

Each recipe trains `TrainConfig(data="digits", family=FAMILY, conditional=True, **recipe)` for `--budget`
seconds of training (the learning rate decays over the clock, no step cap), one after another in this
process with 2 threads, then draws --n class-conditional samples (classes in turn, temperature 1, no
guidance) and scores them as the explainer page does (`unnoise.metrics.measure.image_quality`): class accuracy and
FID over its held-out floor, default judge. A recipe is `default` or comma-separated settings over the
defaults, e.g. `depth=2,batch_size=16,lr=0.004`; recipes are separated by ';'.

    python benchmarks/recipes_ar.py --budget 25 --recipes "default;depth=2" --append
    python benchmarks/recipes_ar.py --budget 180 --recipes "default;depth=5,batch_size=64,lr=0.002" --append
    python benchmarks/recipes_ar.py --family var --budget 108 --recipes "default;depth=3,batch_size=16,lr=0.004"

VAR needs a multi-scale tokenizer: --tokens RUN uses a trained one, else one is trained first with the vq
defaults for --tokenizer-seconds (72 s: the 40 % of 180 s that benchmarks/families.py gives it) and shared
by every recipe; its time is not in --budget.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import unnoise
from unnoise.metrics.measure import image_quality

FLOATS = ("lr", "ema", "label_dropout")
TITLES = {"ar": "Raster AR", "var": "VAR"}


def recipe_of(text):
    """'default' or 'name=value,...' -> {setting: value}."""
    if text == "default":
        return {}
    pairs = dict(kv.split("=", 1) for kv in text.split(","))
    return {k: float(v) if k in FLOATS else int(v) for k, v in pairs.items()}


def tokenizer(folder, seconds):
    """A multi-scale tokenizer of digits (the vq defaults) trained for seconds into folder; its path."""
    cfg = unnoise.TrainConfig(data="digits", family="vq", steps=10**9)
    run = unnoise.train(cfg, folder, progress=False, seconds=seconds)
    print(f"tokenizer: {run.step} steps in {seconds:g} s into {folder}", flush=True)
    return str(folder)


def measure(text, budget, n, family="ar", tokens=None):
    """Train one recipe for budget seconds; its line of results."""
    cfg = unnoise.TrainConfig(
        data="digits", family=family, conditional=True, steps=10**9, tokens=tokens, **recipe_of(text)
    )
    with tempfile.TemporaryDirectory() as folder:
        run = unnoise.train(cfg, folder, progress=False, seconds=budget)
        q = image_quality(run, n=n)
    shape = f"depth {run.cfg.depth}, width {run.cfg.width}, batch {run.cfg.batch_size}, lr {run.cfg.lr:g}"
    return f"| {text} ({shape}) | {budget:g} | {run.step} | {q['accuracy']:.3f} | {q['ratio']:.1f} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ar", choices=("ar", "var"), help="raster AR over pixels, or VAR")
    parser.add_argument("--tokens", default=None, help="VAR: a trained multi-scale tokenizer run (else one is trained)")
    parser.add_argument("--tokenizer-seconds", type=float, default=72.0, help="VAR: the tokenizer's budget")
    parser.add_argument("--budget", type=float, default=25.0, help="training seconds per recipe")
    parser.add_argument("--recipes", default="default", help="recipes separated by ';' (each: default or k=v,...)")
    parser.add_argument("--n", type=int, default=400, help="samples scored per recipe")
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args()
    if args.tokens and args.family != "var":
        parser.error("--tokens is VAR's tokenizer; raster AR here runs over pixels")
    torch.set_num_threads(2)
    what = "raster AR over pixels"
    if args.family == "var":
        origin = "given" if args.tokens else f"trained {args.tokenizer_seconds:g} s, shared"
        what = f"VAR over a multi-scale tokenizer ({origin})"
    rows = ["", "| recipe | budget s | steps | class accuracy | FID / floor |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as scratch:
        tokens = args.tokens
        if args.family == "var" and not tokens:
            tokens = tokenizer(Path(scratch) / "tokenizer", args.tokenizer_seconds)
        for text in args.recipes.split(";"):
            rows.append(measure(text, args.budget, args.n, args.family, tokens))
            print(rows[-1], flush=True)
    lines = [
        f"- digits, class-conditional {what}; one seed; n = {args.n}, temperature 1, no guidance; "
        "the page's image_quality (default judge)",
        *rows,
    ]
    if args.append:
        common.append(f"{TITLES[args.family]} recipes against the clock", lines)


if __name__ == "__main__":
    main()
