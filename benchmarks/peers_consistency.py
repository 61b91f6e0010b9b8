"""unnoise's consistency training beside Tony Duan's from scratch (tonyduan/diffusion, the code the thread recommends):
the same digits, the same wall-clock budget, the same judges, at 1, 2 and 4 network calls.

Contestants, each with its own recipe, unconditional (the peer has no classes):
  unnoise       `unnoise train --data digits --family consistency` defaults: consistency training on the VP cosine
                path with v-prediction, N = 8 grid, the online net without its gradient as the target (improved CT),
                U-Net width 32, the image optimiser defaults, EMA; multistep sampling (Song et al. 2023, Alg. 1)
  tonyduan      src/experimental/consistency.py at fcc0ed8: improved consistency training (Song & Dhariwal 2023) on
                the EDM path (sigma 0.002-80, rho 7, sigma_data 0.5), its discretisation curriculum N = 10 -> 1280,
                log-normal sigma sampling (P_mean -1.1, P_std 2), 1 / (sigma_{n+1} - sigma_n) weights, its default
                l2 loss, no EMA; its UNet (src/blocks.py: BasicBlocks with BatchNorm, mid self-attention) sized to
                8x8: embed_dim 32, dim_scales (1, 2, 4); its MNIST example's optimiser: Adam 1e-3, cosine annealing,
                batch 512
  tonyduan-b64  the same at batch 64: its batch of 512 takes about 0.66 s a step on 2 cores (272 steps in 180 s)

The peer's curriculum and cosine count training steps up to a limit set in advance; under a wall-clock budget both
follow the clock instead (step number = the elapsed fraction of the budget x its limit, 10,000), as unnoise's
schedule does. Its sampler, as written, has two bugs: the first noise is drawn at sigma_max ** (1 / rho) (1.87)
instead of sigma_max (80), and every intermediate sigma is cast to an integer (0.5 becomes 0, whose discrete time
index is negative). The peer is therefore sampled twice from the same weights: as written ("tonyduan"), and with the
same Algorithm 1 on float sigmas from noise at sigma_max (the rows "...-fixed", the sampler in this file).

Each contestant trains in a fresh process (this script with --one) with 2 torch threads for `budget` seconds of
training loop, then draws n samples per NFE, scored by benchmarks/images.py's judges (FID / floor under three
judges; precision and recall of the default judge), with milliseconds per image at batch 64; the first 12 samples
at each NFE are drawn to benchmarks/peers-consistency-CONTESTANT.png.

Peers are an optional extra and never committed: clone tonyduan/diffusion at fcc0ed8, then
`pip install einops==0.8.2`, and

    python benchmarks/peers_consistency.py --peer ../diffusion --budget 180 --seeds 0
"""

import argparse
import json
import math
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
from peers import train_for
from unnoise.viz import figures2d
from unnoise.viz.images import labelled_grid

THREADS = 2
NFES = (1, 2, 4)
LIMIT = 10_000  # the peer's train_steps_limit; its step number follows the clock up to it
CONTESTANTS = {"unnoise": None, "tonyduan": 512, "tonyduan-b64": 64}  # the peer's batch


def peer_modules(folder):
    """The peer's UNet and consistency model, imported from its checkout (its modules import `src.*`)."""
    if not (Path(folder) / "src" / "experimental" / "consistency.py").is_file():
        raise SystemExit(f"--peer {folder}: not a tonyduan/diffusion checkout (no src/experimental/consistency.py)")
    sys.path.insert(0, str(Path(folder).resolve()))
    from src.blocks import UNet
    from src.experimental.consistency import ConsistencyModel, ConsistencyModelConfig

    return UNet, ConsistencyModel, ConsistencyModelConfig


@torch.no_grad()
def fixed_sample(model, n, nfe):
    """Song et al. 2023, Algorithm 1 on the peer's sigma grid: x ~ N(0, sigma_max^2), then f, re-noise, f, ..."""
    ramp = torch.linspace(1, 0, nfe + 1)
    sigmas = (model.sigma_min_root + ramp * (model.sigma_max_root - model.sigma_min_root)) ** model.rho
    x = torch.randn(n, *model.input_shape) * model.sigma_max
    for start, end in zip(sigmas[:-1], sigmas[1:]):
        x = model.nn_module_wrapper(x, start.expand(n))
        if end > model.sigma_min:
            x = x + (end**2 - model.sigma_min**2).sqrt() * torch.randn_like(x)
    return x


def run_peer(name, folder, budget, seed, n):
    """The peer's recipe for budget seconds: ({sampler: {nfe: (images in [0, 1], ms per image)}}, steps, seconds)."""
    UNet, ConsistencyModel, ConsistencyModelConfig = peer_modules(folder)
    x = unnoise.data.load("digits", "train").x * 2 - 1  # (N, 1, 8, 8) from [0, 1] to [-1, 1], as its MNIST example
    model = ConsistencyModel((1, 8, 8), UNet(1, 32, (1, 2, 4)), ConsistencyModelConfig(train_steps_limit=LIMIT))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()

    def step():
        fraction = min(1.0, (time.perf_counter() - start) / budget)
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * fraction))  # CosineAnnealingLR over the clock
        rows = torch.randint(0, len(x), (CONTESTANTS[name],), generator=generator)
        loss = model.loss(x[rows], int(fraction * LIMIT)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    steps, seconds = train_for(budget, step)
    model.eval()  # its example samples in eval mode (BatchNorm's running statistics)
    draws = {
        name: lambda m, k: model.sample(bsz=m, device="cpu", num_sampling_timesteps=k)[0],
        f"{name}-fixed": lambda m, k: fixed_sample(model, m, k),
    }
    return {name: timed(draw, n) for name, draw in draws.items()}, steps, seconds


def run_unnoise(budget, seed, n):
    """unnoise's consistency-training defaults for budget seconds: as run_peer."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = unnoise.TrainConfig(data="digits", family="consistency", seed=seed)
        run, steps, seconds = scoring.budgeted(cfg, Path(tmp) / "run", budget)
        out = timed(lambda m, k: run.sample(m, nfe=k, seed=seed) * 2 - 1, n)
        return {"unnoise": out}, steps, seconds


def timed(draw, n):
    """{nfe: (n images in [0, 1], ms per image at batch 64)} for a draw(count, nfe) in [-1, 1]: one timed draw of 64
    after the n-image draw (the warm-up); a cost beside the quality, not a speed race (few_step_images.py times)."""
    out = {}
    for nfe in NFES:
        torch.manual_seed(0)
        images = ((draw(n, nfe) + 1) / 2).clamp(0, 1)
        start = time.perf_counter()
        draw(64, nfe)
        out[nfe] = (images, 1000 * (time.perf_counter() - start) / 64)
    return out


def one(contestant, budget, seed, n, peer):
    """Train and score one contestant; a JSON-ready list of rows, one per sampler."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    if contestant == "unnoise":
        out, steps, seconds = run_unnoise(budget, seed, n)
    else:
        out, steps, seconds = run_peer(contestant, peer, budget, seed, n)
    grid = [(f"{name}, {nfe} NFE", images[:12]) for name, by_nfe in out.items() for nfe, (images, _) in by_nfe.items()]
    figure = labelled_grid(
        [g for _, g in grid], row_labels=[label for label, _ in grid], title=f"{budget:g} s, seed {seed}"
    )
    figures2d.save(figure, Path(__file__).parent / f"peers-consistency-{contestant}.png")
    rows = []
    for name, by_nfe in out.items():
        scores = {}
        for nfe, (images, ms) in by_nfe.items():
            r = scoring.judge(images, None, "digits", 8, 1)
            scores[str(nfe)] = {
                "fid_ratios": scoring.ratios(r),
                "level_ratios": scoring.level_ratios(r),
                "precision": r["precision"],
                "recall": r["recall"],
                "ms_batch64": ms,
            }
        rows.append({"contestant": name, "budget": budget, "seed": seed, "steps": int(steps), "seconds": seconds})
        rows[-1]["scores"] = scores
    return rows


def spawn(contestant, args, seed):
    """one() in a fresh process of this script: its rows."""
    command = [sys.executable, __file__, "--one", contestant, "--budget", str(args.budget), "--seeds", str(seed)]
    command += ["--n", str(args.n), "--peer", str(args.peer)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode:
        raise SystemExit(f"{contestant} (seed {seed}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows):
    """Markdown: per contestant and NFE, the mean over seeds of FID / floor under each judge, and the cost."""
    lines = [
        "| contestant | steps | NFE | FID / floor, judges 0 / 1 / 2 | worst / level | precision / recall | ms / image (64) |",
        "|---|---|---|---|---|---|---|",
    ]
    names = dict.fromkeys(r["contestant"] for r in rows)
    for name in names:
        mine = [r for r in rows if r["contestant"] == name]
        for nfe in map(str, NFES):
            s = [r["scores"][nfe] for r in mine]
            fids = [statistics.mean(x["fid_ratios"][j] for x in s) for j in range(3)]
            levels = [max(x["level_ratios"]) for x in s if x["level_ratios"]]
            level = f"{statistics.mean(levels):.2f}" if levels else "-"
            lines.append(
                f"| {name} | {statistics.mean(r['steps'] for r in mine):.0f} | {nfe} | "
                + " / ".join(f"{f:.2f}" for f in fids)
                + f" | {level} | {statistics.mean(x['precision'] for x in s):.2f} / "
                f"{statistics.mean(x['recall'] for x in s):.2f} | {statistics.mean(x['ms_batch64'] for x in s):.2f} |"
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, required=True, help="a checkout of tonyduan/diffusion (fcc0ed8)")
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds per contestant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n", type=int, default=1000, help="samples per NFE (FID uses min(n, 359 held-out))")
    parser.add_argument("--contestants", nargs="+", default=list(CONTESTANTS), choices=CONTESTANTS)
    parser.add_argument("--out", default="benchmarks/peers_consistency.json")
    parser.add_argument("--append", action="store_true", help="keep the rows already in --out (other seeds)")
    parser.add_argument("--no-append", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--one", choices=CONTESTANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.budget, args.seeds[0], args.n, args.peer)))
        return
    peer_modules(args.peer)  # a clear line before any training when the checkout is wrong
    rows, commands = [], [" ".join(sys.argv)]
    if args.append and Path(args.out).is_file():
        saved = json.loads(Path(args.out).read_text())
        rows, commands = saved["rows"], saved["commands"] + commands
    for contestant in args.contestants:
        for seed in args.seeds:
            rows += spawn(contestant, args, seed)
            print(f"{contestant} seed {seed} done", file=sys.stderr, flush=True)
    torch.set_num_threads(THREADS)  # as each contestant ran, for the machine line
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"- rows from: {'; '.join(f'`python {c}`' for c in commands)}; seeds {seeds}, means over them", ""]
    lines += table(rows)
    title = f"Consistency training beside tonyduan/diffusion: digits, unconditional, {args.budget:g} s"
    common.publish(title, lines, args.no_append)
    Path(args.out).write_text(json.dumps({"commands": commands, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
