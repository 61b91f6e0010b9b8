"""Training throughput on 1 and 2 processes (torchrun, gloo) on this CPU, and a GPU section when one is present.

    python benchmarks/scale.py [--steps 30] [--repeats 3] [--skip-compile]
    python benchmarks/scale.py --gpu-only            # the GPU section alone (about 5 minutes on one GPU)

CPU: each setting runs in a fresh process (torchrun for 2 processes, one thread each, as torchrun sets), trains
through the one training loop and times the steps after a warm-up from rank 0's callback; settings alternate
A B A B and the median of the repeats is reported as samples per second of the global batch.
- strong scaling: the same global batch on 1 process (2 threads, and 1 thread) and on 2 processes;
- weak scaling: twice the global batch on 2 processes;
- compile: torch.compile on 1 process (compile seconds apart from the step time).
GPU: the image U-Net at fp32 (TF32 off), tf32, bf16, channels-last and compiled: samples/s and peak memory;
DDIM sampling throughput; the bf16-vs-fp32 loss gap over the same steps.
"""

import argparse
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
from common import append

WORKLOADS = {  # name: (TrainConfig fields, what it is)
    "points": (dict(data="moons", batch_size=512), "2D MLP, width 256, depth 3, batch 512"),
    "digits": (dict(data="digits", conditional=True, batch_size=256), "8x8 U-Net, width 32, batch 256"),
}
GPU_WORKLOADS = {
    "mnist": (
        dict(data="mnist", size=32, conditional=True, batch_size=256, width=64),
        "32x32 MNIST U-Net, width 64, batch 256",
    )
}
WARMUP = 5


def worker(args):
    """One timed training run (under torchrun or alone); rank 0 writes the step times to args.result."""
    import unnoise
    from unnoise import dist

    if dist.launched():
        dist.init("cpu", 120)
    fields, _ = {**WORKLOADS, **GPU_WORKLOADS}[args.workload]
    fields = {**fields, "batch_size": fields["batch_size"] * args.batch_scale, "steps": WARMUP + args.steps}
    stamps, losses = [], []

    def tick(step, loss, net, ema):
        stamps.append(time.perf_counter())
        losses.append(loss)

    start = time.perf_counter()  # the run folder sits beside the result: one folder for every rank
    unnoise.train(
        unnoise.TrainConfig(checkpoint_every=10**6, **fields),
        Path(args.result).parent / "run",
        progress=False,
        callback=tick,
        compile=args.compile,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
    )
    if dist.is_main():
        seconds = stamps[-1] - stamps[WARMUP - 1]
        Path(args.result).write_text(
            json.dumps(
                {
                    "samples_per_s": fields["batch_size"] * args.steps / seconds,
                    "step_s": seconds / args.steps,
                    "first_step_s": stamps[0] - start,
                    "losses": losses,
                    "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
                }
            )
        )
    dist.close()


def launch(
    workload,
    processes,
    threads,
    steps,
    batch_scale=1,
    compile=False,
    device="cpu",
    precision="fp32",
    channels_last=False,
):
    """Run one setting in a fresh process (torchrun when processes > 1); the worker's JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        inner = [
            __file__,
            "--worker",
            workload,
            "--steps",
            str(steps),
            "--batch-scale",
            str(batch_scale),
            "--result",
            str(result),
            "--device",
            device,
            "--precision",
            precision,
        ]
        inner += ["--compile"] * compile + ["--channels-last"] * channels_last
        command = (
            [sys.executable, *inner]
            if processes == 1
            else [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc-per-node={processes}",
                *inner,
            ]
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return json.loads(result.read_text())


SETTINGS = {  # label: (processes, threads per process, batch scale, compile)
    "1 process, 2 threads": (1, 2, 1, False),
    "1 process, 1 thread": (1, 1, 1, False),
    "2 processes x 1 thread (strong: same global batch)": (2, 1, 1, False),
    "2 processes x 1 thread (weak: 2x global batch)": (2, 1, 2, False),
    "1 process, 2 threads, torch.compile": (1, 2, 1, True),
}


def cpu_section(args):
    lines = []
    for workload, (_, what) in WORKLOADS.items():
        settings = {k: v for k, v in SETTINGS.items() if not (args.skip_compile and v[3])}
        runs = {label: [] for label in settings}
        for _ in range(args.repeats):  # A B C ... A B C: drift hits every setting
            for label, (p, t, scale, comp) in settings.items():
                runs[label].append(launch(workload, p, t, args.steps, scale, comp))
                print(workload, label, f"{runs[label][-1]['samples_per_s']:.0f} samples/s", flush=True)
        base = statistics.median(r["samples_per_s"] for r in runs["1 process, 2 threads"])
        lines += [
            f"\n**{workload}** ({what}; {args.steps} timed steps after {WARMUP}, median of {args.repeats}):\n",
            "| setting | samples/s | vs 1 process, 2 threads | step | first step |",
            "|---|---|---|---|---|",
        ]
        for label, results in runs.items():
            rate = statistics.median(r["samples_per_s"] for r in results)
            step = statistics.median(r["step_s"] for r in results)
            first = statistics.median(r["first_step_s"] for r in results)
            lines.append(f"| {label} | {rate:.0f} | {rate / base:.2f}x | {1000 * step:.1f} ms | {first:.1f} s |")
    return lines


def gpu_section(args):
    """The image U-Net on one GPU: precision and memory-layout settings, sampling, and bf16's loss gap."""
    name = torch.cuda.get_device_name(0)
    lines = [
        f"\n**GPU**: {name}, CUDA {torch.version.cuda}, bf16 supported: {torch.cuda.is_bf16_supported()}\n",
        "| setting | samples/s | step | peak memory | first step |",
        "|---|---|---|---|---|",
    ]
    runs = {}
    for label, opts in (
        ("fp32 (TF32 off)", {}),
        ("tf32", dict(precision="tf32")),
        ("bf16", dict(precision="bf16")),
        ("bf16, channels-last", dict(precision="bf16", channels_last=True)),
        ("bf16, channels-last, compiled", dict(precision="bf16", channels_last=True, compile=True)),
    ):
        r = runs[label] = launch("mnist", 1, 8, args.gpu_steps, device="cuda", **opts)
        lines.append(
            f"| {label} | {r['samples_per_s']:.0f} | {1000 * r['step_s']:.1f} ms | {r['peak_mb']:.0f} MB | "
            f"{r['first_step_s']:.1f} s |"
        )
    fp32, bf16 = (torch.tensor(runs[k]["losses"]) for k in ("fp32 (TF32 off)", "bf16"))
    gap = (bf16 - fp32).abs() / fp32
    lines.append(
        f"\nbf16 vs fp32 loss over the same {len(fp32)} steps: median relative gap {gap.median():.2e}, "
        f"largest {gap.max():.2e}; final loss fp32 {fp32[-1]:.4f}, bf16 {bf16[-1]:.4f}."
    )
    lines.append(sampling_throughput())
    return lines


def sampling_throughput():
    """DDIM 50 on the GPU: images per second for a freshly initialised 32x32 U-Net (speed only)."""
    from unnoise import samplers
    from unnoise.nets.unet import UNet
    from unnoise.paths import make_path

    net = UNet(channels=3, width=64, size=32).cuda().eval()
    path = make_path("linear")
    ts = samplers.timesteps(path, 50, "trailing")
    x = torch.randn(1000, 3, 32, 32, device="cuda")

    def model(x, t):
        tb = torch.full((x.shape[0],), float(t), dtype=torch.float64)
        with torch.no_grad():
            out = net(x, path.net_time(tb).to(x.device))
        return path.to_x0_eps("eps", out, x, t)

    samplers.SAMPLERS["ddim"](model, x, ts, path, None)
    torch.cuda.synchronize()
    start = time.perf_counter()
    samplers.SAMPLERS["ddim"](model, x, ts, path, None)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return (
        f"\nSampling: DDIM 50 on 1,000 32x32x3 images: {1000 / seconds:.0f} images/s ({50 * 1000 / seconds:.0f} NFE/s)."
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--batch-scale", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=30, help="timed steps per CPU setting (default 30)")
    p.add_argument("--gpu-steps", type=int, default=100, help="timed steps per GPU setting (default 100)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--skip-compile", action="store_true", help="leave torch.compile out (about 45 s per run on 2 cores)"
    )
    p.add_argument("--gpu-only", action="store_true")
    args = p.parse_args()
    if args.worker:
        args.workload = args.worker
        return worker(args)
    lines = [] if args.gpu_only else cpu_section(args)
    if torch.cuda.is_available():
        lines += gpu_section(args)
    else:
        lines.append("\nGPU section: not run (no CUDA device on this machine).")
    append("Scaling: processes, threads, compile (benchmarks/scale.py)", lines)


if __name__ == "__main__":
    main()
