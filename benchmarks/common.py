"""Shared by the benchmark scripts: the machine line, appending a section to BENCHMARKS.md, and --samplers."""

import datetime
import os
import shlex
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine():
    """nproc, CPU model, threads and load: what a reader needs to weigh a timing."""
    from unnoise.metrics.measure import cpu_name

    model = cpu_name() or "unknown CPU"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), torch {torch.__version__} with {torch.get_num_threads()} threads, load average {load}"


def append(title, lines):
    """Append a dated section with the command that produced it."""
    command = "python " + shlex.join(sys.argv)  # quoted as a shell would need it
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"\n## {title} ({stamp})\n", f"- machine: {machine()}", f"- command: `{command}`", *lines, ""]
    with open(RESULTS, "a") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text))


def publish(title, lines, no_append=False):
    """append() the section to BENCHMARKS.md, or with --no-append only print its lines."""
    if no_append:
        print("\n".join(lines))
    else:
        append(title, lines)


def samplers(parser, text):
    """--samplers 'dpmpp_2m:20,dpmpp_2m_sde:30' -> [('dpmpp_2m', 20), ('dpmpp_2m_sde', 30)], or parser.error's one line."""
    from unnoise.samplers import SAMPLERS

    pairs = [
        (name, int(nfe) if nfe.isdigit() else 0) for name, _, nfe in (item.partition(":") for item in text.split(","))
    ]
    if not all(name in SAMPLERS and nfe > 0 for name, nfe in pairs):
        parser.error(
            f"--samplers must be name:nfe pairs, comma-separated, with names from {', '.join(SAMPLERS)}; got {text!r}"
        )
    return pairs
