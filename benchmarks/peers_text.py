"""unnoise's ar on text beside nanoGPT's character model, on the same corpus, split, network size and seconds.

nanoGPT (Karpathy, MIT) is not a dependency and none of its code is here: give a checkout with --nanogpt DIR
(`git clone https://github.com/karpathy/nanoGPT`); this script imports its model.py (GPT, GPTConfig and its
configure_optimizers) and trains it with its shakespeare_char recipe (AdamW lr 1e-3, betas (0.9, 0.99), weight decay
0.1, 100 warm-up iterations, cosine to 1e-4, gradient clipping 1, batch 64 of 256 characters) scaled to our network
(2 layers, 4 heads, width 64) and to the budget: --budget seconds, its iteration count set from a timed warm-up so
that its cosine ends when the budget does. Dropout is 0: both models see under one epoch here. Both are scored by the
same exact bits per character on the same held-out windows (the first 256 non-overlapping windows of 256 characters;
nanoGPT reads the character before each window as context for the window's first, where our model reads a start
vector). unnoise trains `unnoise train --data DATA --family ar --seconds BUDGET`, its defaults.

    python benchmarks/peers_text.py --nanogpt /path/to/nanoGPT --data kjv --budget 300
"""

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import unnoise
from unnoise.data import text as text_data
from unnoise.families.text import HELDOUT_WINDOWS

RECIPE = dict(lr=1e-3, min_lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1, warmup=100, clip=1.0, batch=64, block=256)


def nanogpt_model(folder, vocab):
    spec = importlib.util.spec_from_file_location("nanogpt_model", Path(folder) / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.GPTConfig(
        block_size=RECIPE["block"], vocab_size=vocab, n_layer=2, n_head=4, n_embd=64, dropout=0.0, bias=False
    )
    return module.GPT(config)


def lr_at(it, iters):
    """nanoGPT's get_lr: linear warm-up, then cosine to min_lr at iters."""
    if it < RECIPE["warmup"]:
        return RECIPE["lr"] * (it + 1) / (RECIPE["warmup"] + 1)
    ratio = min(1.0, (it - RECIPE["warmup"]) / max(1, iters - RECIPE["warmup"]))
    return RECIPE["min_lr"] + 0.5 * (1 + math.cos(math.pi * ratio)) * (RECIPE["lr"] - RECIPE["min_lr"])


def train_nanogpt(folder, train, vocab, budget, seed=0):
    torch.manual_seed(seed)
    model = nanogpt_model(folder, vocab)
    optimizer = model.configure_optimizers(RECIPE["weight_decay"], RECIPE["lr"], RECIPE["betas"], "cpu")
    generator = torch.Generator().manual_seed(seed)
    B, T = RECIPE["batch"], RECIPE["block"]

    def step(it, iters):
        starts = torch.randint(len(train) - T - 1, (B,), generator=generator)
        x = torch.stack([train[s : s + T] for s in starts])
        y = torch.stack([train[s + 1 : s + 1 + T] for s in starts])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it, iters)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["clip"])
        optimizer.step()

    start = time.perf_counter()
    for it in range(20):  # the warm-up iterations time the rest
        step(it, 10**9)
    per = (time.perf_counter() - start) / 20
    iters = max(21, int(budget / per))
    for it in range(20, iters):
        step(it, iters)
    return model.eval(), iters, time.perf_counter() - start


@torch.no_grad()
def nanogpt_bits(model, heldout, L):
    """Exact bits per character of each held-out window, the character before it as context (the first window
    starts one character in)."""
    count = min(HELDOUT_WINDOWS, (len(heldout) - 1) // L)
    bits = []
    for k in range(count):
        chunk = heldout[k * L : k * L + L + 1] if k else heldout[: L + 1]
        x, y = chunk[:-1][None], chunk[1:][None]
        logits, _ = model(x, y)
        bits.append(F.cross_entropy(logits[0], y[0]).item() / math.log(2))
    return torch.tensor(bits)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nanogpt", required=True, help="a checkout of karpathy/nanoGPT (its model.py is imported)")
    p.add_argument("--data", default="kjv")
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--out", default="runs/bench/peers_text.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    found = text_data.load(args.data)
    root = Path(tempfile.mkdtemp())
    cfg = unnoise.TrainConfig(data=args.data, family="ar", steps=unnoise.pipeline.UNCAPPED)
    start = time.perf_counter()
    run = unnoise.train(cfg, root / "ar", progress=False, seconds=args.budget)
    ours = {"steps": run.step, "seconds": time.perf_counter() - start, **run.family.report(run, 0, 0)}
    model, iters, seconds = train_nanogpt(args.nanogpt, found.train, found.vocab, args.budget)
    bits = nanogpt_bits(model, found.heldout, run.cfg.context)
    peer = {"iters": iters, "seconds": seconds, "bits_per_char": float(bits.mean()),
            "bits_per_char_stderr": float(bits.std() / len(bits) ** 0.5)}  # fmt: skip
    print(f"| unnoise ar | {ours['steps']} | {ours['seconds']:.0f} | {ours['bits_per_char']:.3f} +- "
          f"{ours['bits_per_char_stderr']:.3f} |")  # fmt: skip
    print(f"| nanoGPT | {iters} | {seconds:.0f} | {peer['bits_per_char']:.3f} +- {peer['bits_per_char_stderr']:.3f} |")
    print(f"ratio unnoise / nanoGPT: {ours['bits_per_char'] / peer['bits_per_char']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "unnoise": ours, "nanogpt": peer}, indent=1))


if __name__ == "__main__":
    main()
