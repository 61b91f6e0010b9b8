"""Sampler overhead: unnoise's DDIM and DPM-Solver++(2M) against diffusers' loop over its scheduler.

The same tiny network (unnoise's MLP, width 32, depth 1, eps prediction, linear betas) is sampled
for 50 steps (trailing spacing) by both, interleaved A B A B, and the median of REPEATS timed runs
after a warm-up is reported per batch size, with the ratio unnoise / diffusers (target <= 1.0).
Both sides pay for the network; unnoise also converts its output through the path (model -> x0, eps).

    PYTHONPATH=src python benchmarks/sampler_overhead.py [--append BENCHMARKS.md]
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

import diffusers
import torch

from unnoise.nets import MLP
from unnoise.paths import make_path
from unnoise.samplers import sample_ddim, sample_dpmpp_2m, timesteps

STEPS, REPEATS = 50, 11


def unnoise_run(sampler, net, path, x):
    ts = timesteps(path, STEPS, "trailing")

    def model(x, t):
        with torch.no_grad():
            out = net(x, path.net_time(torch.full((x.shape[0],), float(t), dtype=torch.float64)))
        return path.to_x0_eps("eps", out, x, t)

    return sampler(model, x, ts, path, None)


def diffusers_run(scheduler, net, x):
    scheduler.set_timesteps(STEPS)
    for t in scheduler.timesteps:
        with torch.no_grad():
            out = net(x, torch.full((x.shape[0],), float(t) / 1000, dtype=torch.float32))
        x = scheduler.step(out, t, x).prev_sample
    return x


def median_pair(a, b, repeats=REPEATS):
    """Warm up, then time a and b alternately (A B A B ...); medians in seconds."""
    a(), b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        return next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.processor()
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append", help="append the results to this markdown file (e.g. BENCHMARKS.md)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = MLP(dim=2, width=32, depth=1).eval()
    path = make_path("linear")
    common = dict(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing")
    rows = []
    for batch in (1, 100):
        x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(1))
        pairs = {
            "ddim": (
                lambda: unnoise_run(sample_ddim, net, path, x),  # noqa: B023 (called before the loop moves on)
                lambda: diffusers_run(diffusers.DDIMScheduler(**common, clip_sample=False), net, x),  # noqa: B023 (called before the loop moves on)
            ),
            "dpmpp_2m": (
                lambda: unnoise_run(sample_dpmpp_2m, net, path, x),  # noqa: B023 (called before the loop moves on)
                lambda: diffusers_run(diffusers.DPMSolverMultistepScheduler(**common, solver_order=2), net, x),  # noqa: B023 (called before the loop moves on)
            ),
        }
        for name, (ours, theirs) in pairs.items():
            torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-4)  # same samples, or no comparison
            t_ours, t_theirs = median_pair(ours, theirs)
            rows.append((name, batch, t_ours * 1e3, t_theirs * 1e3, t_ours / t_theirs))
    header = "| sampler | batch | unnoise ms | diffusers ms | ratio unnoise / diffusers |\n|---|---|---|---|---|"
    table = "\n".join([header] + [f"| {n} | {b} | {u:.1f} | {d:.1f} | {r:.2f} |" for n, b, u, d, r in rows])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    section = (
        f"\n## Sampler overhead ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- machine: nproc {nproc}, {cpu_model()}, torch {torch.__version__} with set_num_threads(2), "
        f"diffusers {diffusers.__version__}; load average {os.getloadavg()[0]:.1f}\n"
        f"- command: `PYTHONPATH=src python benchmarks/sampler_overhead.py{' --append ' + args.append if args.append else ''}`\n"
        f"- {STEPS} steps, trailing spacing, MLP width 32 depth 1; median of {REPEATS} interleaved runs after warm-up\n\n"
        f"{table}\n"
    )
    print(section)
    if args.append:
        with open(args.append, "a") as f:
            f.write(section)


if __name__ == "__main__":
    sys.exit(main())
