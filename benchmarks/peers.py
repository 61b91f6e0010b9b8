"""unnoise beside peer flow-matching libraries on 2D data: the same points, the same wall-clock budget, the same metric.

Contestants, each with its own published recipe (network, batch, optimizer, path, sampler):
  unnoise          unnoise's defaults (TrainConfig(data=..., seed=...): diffusion, v-prediction on the VP cosine
                   path, residual MLP width 64 depth 3 (128 until 17:30 UTC), batch 512, fused AdamW lr 4e-3
                   with 200 warm-up steps then a cosine decay that follows the clock, EMA 0.999, grad clip 1;
                   until 2026-12-02: eps on linear betas, width 256, lr 2e-3), trained by
                   `unnoise.train(..., seconds=budget)` with no step cap; sampled with its default sampler,
                   dpmpp_2m, at 8 and 100 NFE (until 2026-12-02: ddpm at 100)
  torchcfm-icfm    torchcfm's 2D tutorial (examples/2D_tutorials/Flow_matching_tutorial.ipynb and
                   tutorial_training_8_gaussians_to_moons.ipynb, github.com/atong01/conditional-flow-matching):
                   torchcfm.models.models.MLP(dim=2, time_varying=True) (3 x 64 SELU), batch 256,
                   torch.optim.Adam at its default lr 1e-3 (constant, no EMA), ConditionalFlowMatcher(sigma=0.1)
  torchcfm-otcfm   the same with ExactOptimalTransportConditionalFlowMatcher(sigma=0.1) (exact minibatch OT, POT's emd)
  fm-condot        flow_matching's 2D example (examples/2d_flow_matching.ipynb,
                   github.com/facebookresearch/flow_matching):
                   its MLP (2 + 1 -> 4 hidden layers of 512 Swish units -> 2), batch 4096, Adam lr 1e-3 (constant,
                   no EMA), AffineProbPath(scheduler=CondOTScheduler()), t ~ U(0, 1); sampled by its ODESolver with
                   the example's method, midpoint (2 NFE a step: step_size = 2 / NFE)
  unnoise-flow     (only when named in --contestants) unnoise's flow family: TrainConfig(family="flow"), rectified
                   path, velocity target, sampled like unnoise above

Both tutorials learn a map to two moons from 8 Gaussians (torchcfm) or train on a fresh checkerboard draw each
step (flow_matching); here every contestant generates from N(0, I) and sees the same points: the 20,000 points of
unnoise's training split, in unnoise's model units (ds.normalize(ds.x): per-coordinate zero mean, unit variance),
drawn with replacement at the contestant's batch size. Peers' samples are mapped back with ds.denormalize, the
units unnoise's Run.sample returns. torchcfm's tutorial integrates with torchdyn's NeuralODE (dopri5); at a fixed
NFE it is sampled here with torchdiffeq's fixed-step "euler" on NFE equal steps (the same numbers as torchdyn's
NeuralODE(solver="euler"), checked equal to 0.0). Every peer's network evaluations are counted, not assumed.

Each (contestant, data, budget, seed) trains in a fresh process (this script with --one) with 2 torch threads,
for `budget` seconds of training loop only (set-up and sampling are outside the clock; a step in flight when the
clock runs out completes), then draws 2000 samples at 8 and at 100 NFE. The score is exact W2 (POT) of those 2000
samples to 2000 held-out points, divided by the floor: the mean W2 of `seeds` fresh real draws of 2000
(seed 100 + k) to the same held-out points. Time to quality is the smallest budget at which the mean over seeds
is within 1.5 x (and 1.2 x) the floor; the tables give unnoise's time over the best peer's (below 1: sooner).

Peers are an optional extra (`pip install -e .[bench]`); to keep an installed torch, install them with
`pip install --no-deps torchcfm==1.0.7 flow_matching==1.0.10` (unnoise already brings POT and torchdiffeq).

    python benchmarks/peers.py --data moons,checkerboard --budgets 15,30,60 --seeds 3 --append
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import unnoise
from unnoise import samplers
from unnoise.checkpoint import load_json
from unnoise.metrics.points import w2
from unnoise.pipeline import UNCAPPED

N = 2000  # samples scored, held-out points, points per fresh floor draw
NFES = (8, 100)
THREADS = 2
LEVELS = (1.5, 1.2)  # time to quality: within these multiples of the floor
UNNOISE_SAMPLER = {8: "dpmpp_2m", 100: "dpmpp_2m"}  # Run.sample's default sampler (ddpm at 100 before 2026-12-02)
CONTESTANTS = ("unnoise", "torchcfm-icfm", "torchcfm-otcfm", "fm-condot")
OPTIONAL = ("unnoise-flow",)
PEERS = ("torchcfm-icfm", "torchcfm-otcfm", "fm-condot")
RECIPES = {
    "unnoise": "defaults (diffusion, v on the VP cosine path; MLP 64 x 3 blocks (128 before 2026-12-02 17:30 UTC); "
    "batch 512; fused AdamW 4e-3, warm-up + cosine over the clock; EMA 0.999); dpmpp_2m at 8 and 100 NFE",
    "unnoise-flow": "flow family (rectified, velocity), otherwise the defaults; dpmpp_2m at 8 and 100 NFE",
    "torchcfm-icfm": "torchcfm 2D tutorial: MLP 3 x 64 SELU, batch 256, Adam 1e-3, ConditionalFlowMatcher(sigma=0.1); "
    "Euler (torchdiffeq), NFE steps",
    "torchcfm-otcfm": "as torchcfm-icfm with ExactOptimalTransportConditionalFlowMatcher(sigma=0.1)",
    "fm-condot": "flow_matching 2D example: MLP 4 x 512 Swish, batch 4096, Adam 1e-3, AffineProbPath(CondOTScheduler); "
    "ODESolver midpoint, NFE / 2 steps",
}


class Counted(torch.nn.Module):
    """A network that counts its calls, so the NFE reported is the NFE spent."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)


class SwishMLP(torch.nn.Module):
    """flow_matching's 2D example velocity net: [x, t] -> 4 hidden layers of `width` Swish (SiLU) units -> x's size."""

    def __init__(self, dim=2, width=512):
        super().__init__()
        layers = [torch.nn.Linear(dim + 1, width), torch.nn.SiLU()]
        for _ in range(3):
            layers += [torch.nn.Linear(width, width), torch.nn.SiLU()]
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(width, dim))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).expand(len(x), 1).to(x.dtype)], 1))


def train_for(budget, step):
    """Call step() until budget seconds of wall time have passed (at least once): (steps, seconds)."""
    start, steps = time.perf_counter(), 0
    while steps == 0 or time.perf_counter() - start < budget:
        step()
        steps += 1
    return steps, time.perf_counter() - start


def draw(x, size, generator):
    """size rows of x, drawn with replacement."""
    return x[torch.randint(0, len(x), (size,), generator=generator)]


def run_torchcfm(name, x, budget, seed, noise):
    """torchcfm's tutorial recipe (I-CFM or exact OT-CFM) for budget seconds: (samples per NFE, steps, seconds)."""
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher
    from torchcfm.models.models import MLP
    from torchdiffeq import odeint

    matcher = ExactOptimalTransportConditionalFlowMatcher if name == "torchcfm-otcfm" else ConditionalFlowMatcher
    matcher = matcher(sigma=0.1)
    model = MLP(dim=x.shape[1], time_varying=True)
    optimizer = torch.optim.Adam(model.parameters())
    generator = torch.Generator().manual_seed(seed)

    def step():
        optimizer.zero_grad()
        x1 = draw(x, 256, generator)
        x0 = torch.randn_like(x1)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        loss = torch.mean((model(torch.cat([xt, t[:, None]], dim=-1)) - ut) ** 2)
        loss.backward()
        optimizer.step()

    steps, seconds = train_for(budget, step)
    counted = Counted(model)

    def velocity(t, z):
        return counted(torch.cat([z, t.expand(len(z), 1)], dim=-1))

    out = {}
    with torch.no_grad():
        for nfe in NFES:
            counted.calls = 0
            z = odeint(velocity, noise, torch.linspace(0, 1, nfe + 1), method="euler")[-1]
            out[nfe] = (z, counted.calls)
    return out, steps, seconds


def run_flow_matching(x, budget, seed, noise):
    """flow_matching's 2D example recipe (affine CondOT path) for budget seconds: (samples per NFE, steps, seconds)."""
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    model = SwishMLP(x.shape[1], 512)
    path = AffineProbPath(scheduler=CondOTScheduler())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)

    def step():
        optimizer.zero_grad()
        x1 = draw(x, 4096, generator)
        x0 = torch.randn_like(x1)
        sample = path.sample(t=torch.rand(len(x1)), x_0=x0, x_1=x1)
        loss = torch.pow(model(sample.x_t, sample.t) - sample.dx_t, 2).mean()
        loss.backward()
        optimizer.step()

    steps, seconds = train_for(budget, step)
    counted = Counted(model)
    solver = ODESolver(velocity_model=ModelWrapper(counted))
    out = {}
    for nfe in NFES:
        counted.calls = 0
        z = solver.sample(x_init=noise, step_size=2 / nfe, method="midpoint")
        out[nfe] = (z, counted.calls)
    return out, steps, seconds


def run_unnoise(family, data, budget, seed):
    """Train unnoise (its defaults, or the flow family) for budget seconds: (samples per NFE, steps, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = unnoise.TrainConfig(data=data, family=family, seed=seed, steps=UNCAPPED)
        run = unnoise.train(cfg, Path(tmp) / "run", progress=False, seconds=budget)
        seconds = float(load_json(Path(tmp) / "run" / "config.json")["train_seconds"])
        out = {}
        for nfe in NFES:
            sampler = UNNOISE_SAMPLER[nfe]
            counted = samplers.nfe_of(sampler, samplers.steps_for(sampler, nfe))
            out[nfe] = (run.sample(N, sampler, nfe, seed=seed), counted)
        return out, run.step, seconds


def one(contestant, data, budget, seed):
    """Train and score one contestant on one data set with one seed and budget; returns a JSON-ready dict."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    np.random.seed(seed)  # torchcfm's OT plan sampler draws with numpy
    held = unnoise.data.load(data, "heldout", N).x
    if contestant.startswith("unnoise"):
        family = "flow" if contestant == "unnoise-flow" else "diffusion"
        out, steps, seconds = run_unnoise(family, data, budget, seed)
    else:
        ds = unnoise.data.load(data, "train")
        x = ds.normalize(ds.x)
        noise = torch.randn(N, x.shape[1], generator=torch.Generator().manual_seed(1000 + seed))
        if contestant == "fm-condot":
            out, steps, seconds = run_flow_matching(x, budget, seed, noise)
        else:
            out, steps, seconds = run_torchcfm(contestant, x, budget, seed, noise)
        out = {nfe: (ds.denormalize(z), calls) for nfe, (z, calls) in out.items()}
    return {
        "contestant": contestant,
        "data": data,
        "budget": budget,
        "seed": seed,
        "steps": int(steps),
        "train_seconds": round(seconds, 2),
        "w2": {str(nfe): w2(z, held) for nfe, (z, _) in out.items()},
        "nfe_counted": {str(nfe): calls for nfe, (_, calls) in out.items()},
    }


def spawn(contestant, data, budget, seed):
    """one() in a fresh process of this script: its result dict."""
    command = [sys.executable, __file__, "--one", f"{contestant}:{data}:{budget:g}:{seed}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{contestant} on {data} ({budget:g} s, seed {seed}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def floors(data, seeds):
    """W2 of `seeds` fresh real draws (seed 100 + k) to the held-out points."""
    held = unnoise.data.load(data, "heldout", N).x
    return [w2(unnoise.data.load(data, "fresh", N, seed=100 + k).x, held) for k in range(seeds)]


def summarise(results, floor):
    """(contestant, budget) -> steps (mean), and per NFE the mean and spread (sd over seeds) of W2 / mean floor."""
    table = {}
    for r in results:
        row = table.setdefault((r["contestant"], r["budget"]), {"steps": [], **{nfe: [] for nfe in NFES}})
        row["steps"].append(r["steps"])
        for nfe in NFES:
            row[nfe].append(r["w2"][str(nfe)] / floor)
    return {
        key: {
            "steps": statistics.mean(row["steps"]),
            **{
                nfe: (statistics.mean(row[nfe]), statistics.stdev(row[nfe]) if len(row[nfe]) > 1 else 0.0)
                for nfe in NFES
            },
        }
        for key, row in table.items()
    }


def time_to_quality(summary, contestant, budgets, nfe, level):
    """The smallest budget whose mean W2 / floor is within level, or None."""
    return next((b for b in sorted(budgets) if summary[contestant, b][nfe][0] <= level), None)


def ratio_text(mine, best, longest):
    """unnoise's time to quality over the best peer's, as text (a bound when one never got there)."""
    if mine is not None and best is not None:
        return f"{mine / best:.2f}"
    if mine is not None:
        return f"< {mine / longest:.2f}"
    if best is not None:
        return f"> {longest / best:.2f}"
    return "-"


def cell(mean, spread, seeds):
    """W2 / floor as text: bold within 1.5 x floor, with the spread over seeds."""
    text = f"{mean:.2f}" + (f" ± {spread:.2f}" if seeds > 1 else "")
    return f"**{text}**" if mean <= 1.5 else text


def tables(summary, contestants, budgets, seeds):
    """Markdown lines: quality at equal budget, then time to quality and unnoise's ratio to the best peer."""
    longest = max(budgets)
    lines = ["", "| contestant | budget s | steps | W2 / floor, 8 NFE | W2 / floor, 100 NFE |", "|---|---|---|---|---|"]
    for c in contestants:
        for b in budgets:
            row = summary[c, b]
            cells = " | ".join(cell(*row[nfe], seeds) for nfe in NFES)
            lines.append(f"| {c} | {b:g} | {row['steps']:.0f} | {cells} |")
    heads = [f"{nfe} NFE, {level:g} x" for nfe in NFES for level in LEVELS]
    lines += ["", "| time to quality | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    ttq = {
        c: [time_to_quality(summary, c, budgets, nfe, level) for nfe in NFES for level in LEVELS] for c in contestants
    }
    for c in contestants:
        cells = " | ".join(f"{t:g} s" if t is not None else f"> {longest:g} s" for t in ttq[c])
        lines.append(f"| {c} | {cells} |")
    peers = [c for c in contestants if c in PEERS]
    for mine in (c for c in contestants if c.startswith("unnoise")):
        if peers:
            best = [min((ttq[p][k] for p in peers if ttq[p][k] is not None), default=None) for k in range(len(heads))]
            cells = " | ".join(ratio_text(m, p, longest) for m, p in zip(ttq[mine], best))
            lines.append(f"| {mine} / best peer | {cells} |")
    return lines


def plot(summary, contestants, budgets, data, path):
    """W2 / floor against the training budget, one line per contestant, beside the 1.0, 1.2 and 1.5 x floor lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(NFES), figsize=(5 * len(NFES), 4), sharey=True)
    for ax, nfe in zip(axes, NFES):
        for c in contestants:
            means, spreads = zip(*(summary[c, b][nfe] for b in budgets))
            ax.errorbar(budgets, means, yerr=spreads, marker="o", capsize=3, label=c)
        for level, style in ((1.0, "-"), (1.2, "--"), (1.5, ":")):
            ax.axhline(level, color="gray", linestyle=style, linewidth=1)
            ax.annotate(
                f"{level:g} x floor",
                (0.01, level),
                xycoords=("axes fraction", "data"),
                ha="left",
                va="bottom",
                fontsize=7,
                color="gray",
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xticks(budgets)
        ax.set_xticklabels([f"{b:g}" for b in budgets])
        ax.set_xlabel("training budget (s, 2 threads)")
        ax.set_title(f"{data}, {nfe} NFE")
    axes[0].set_ylabel("W2 / floor (exact, n = 2000)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def versions(names=("torchcfm", "flow_matching", "torchdiffeq", "POT", "torch")):
    """Installed versions of the peers and of torch."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="moons,checkerboard")
    parser.add_argument("--budgets", default="15,30,60", help="training seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help=f"comma-separated, of {', '.join(CONTESTANTS + OPTIONAL)}"
    )
    parser.add_argument("--append", action="store_true", help="append to BENCHMARKS.md and plot into benchmarks/")
    parser.add_argument("--plots", help="folder for peers-<data>.png (default benchmarks/ with --append, else none)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # contestant:data:budget:seed, run in this process
    args = parser.parse_args()
    if args.one:
        contestant, data, budget, seed = args.one.split(":")
        print(json.dumps(one(contestant, data, float(budget), int(seed))))
        return
    torch.set_num_threads(THREADS)
    datas = args.data.split(",")
    budgets = sorted(float(b) for b in args.budgets.split(","))
    contestants = args.contestants.split(",")
    unknown = sorted(set(contestants) - set(CONTESTANTS + OPTIONAL))
    if unknown:
        parser.error(f"unknown contestants {unknown}; choose from {', '.join(CONTESTANTS + OPTIONAL)}")
    plots = Path(args.plots) if args.plots else (Path(__file__).resolve().parent if args.append else None)
    lines = [
        f"- peers: {versions()}; every job a fresh process with {THREADS} torch threads, run one at a time",
        f"- data {', '.join(datas)}; budgets {', '.join(f'{b:g}' for b in budgets)} s of training loop; "
        f"seeds {list(range(args.seeds))}; {N} samples at {' and '.join(map(str, NFES))} NFE (counted), "
        f"exact W2 to {N} held-out points over the mean floor (W2 of {args.seeds} fresh real draws of {N}); "
        "cells: mean ± sd over seeds, **bold** within 1.5 x floor; every contestant trains on unnoise's "
        "20,000 training points in its model units and generates from N(0, I); time to quality: the smallest "
        "budget whose mean is within 1.5 x (1.2 x) the floor; unnoise / best peer: the ratio of those times "
        "(below 1: unnoise gets there sooner; a bound where one side never got there)",
        *(f"- {c}: {RECIPES[c]}" for c in contestants),
    ]
    for data in datas:
        floor_draws = floors(data, args.seeds)
        floor = statistics.mean(floor_draws)
        results = []
        for seed in range(args.seeds):
            for budget in budgets:
                for contestant in contestants:
                    r = spawn(contestant, data, budget, seed)
                    results.append(r)
                    scores = ", ".join(
                        f"{nfe} NFE ({r['nfe_counted'][str(nfe)]} counted) {r['w2'][str(nfe)] / floor:.2f} x"
                        for nfe in NFES
                    )
                    print(
                        f"{data} seed {seed} {budget:g} s {contestant}: {r['steps']} steps in "
                        f"{r['train_seconds']:.1f} s; {scores}",
                        flush=True,
                    )
        summary = summarise(results, floor)
        lines += ["", f"**{data}** (floor {floor:.4f}: " + ", ".join(f"{f:.4f}" for f in floor_draws) + ")"]
        lines += tables(summary, contestants, budgets, args.seeds)
        if plots is not None:
            path = plots / f"peers-{data}.png"
            plot(summary, contestants, budgets, data, path)
            lines += ["", f"![{data}: W2 / floor against the budget](benchmarks/{path.name})"]
    if args.append:
        common.append("peers: unnoise beside torchcfm and flow_matching on 2D at equal wall-clock budgets", lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
