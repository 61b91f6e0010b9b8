"""What every family computes, as hashes: train a few fixed steps of each through the command line, sample
it, and print the sha256 of its weights and of its samples. Two checkouts that print the same lines compute
the same thing (same seeds, same CPU, same torch); a refactor that should change nothing is checked so.

    PYTHONPATH=src python benchmarks/fingerprints.py [--out DIR] [--json]
"""

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from unnoise.cli import main

TINY = ["--steps", "12", "--width", "16", "--checkpoint-every", "5"]
RUNS = {  # name -> the train command's arguments (after --out); each also samples
    "diffusion-moons": ["--data", "moons", "--batch-size", "64"],
    "ddpm-eps-linear": ["--data", "moons", "--prediction", "eps", "--schedule", "linear", "--batch-size", "64"],
    "flow-ot": ["--data", "moons", "--family", "flow", "--coupling", "ot", "--batch-size", "64"],
    "flow-8gaussians": ["--data", "moons", "--family", "flow", "--source", "8gaussians", "--batch-size", "64"],
    "edm-moons": ["--data", "moons", "--family", "edm", "--batch-size", "64"],
    "diffusion-digits": ["--data", "digits", "--conditional", "--batch-size", "8"],
    "flow-digits": ["--data", "digits", "--family", "flow", "--batch-size", "8"],
    "vq-digits": ["--data", "digits", "--family", "vq", "--batch-size", "16"],
    "ar-pixels": ["--data", "digits", "--family", "ar", "--conditional", "--depth", "1", "--heads", "2"],
    "ar-tokens": ["--data", "digits", "--family", "ar", "--tokens", "auto", "--depth", "1", "--heads", "2"],
    "var": ["--data", "digits", "--family", "var", "--conditional", "--depth", "1", "--heads", "2"],
}
SAMPLE = {"diffusion-digits": ["--guidance", "2", "--nfe", "6"], "var": ["--guidance", "1.5", "--top-k", "5"]}


def tensors_hash(path):
    """sha256 over a safetensors file's tensors, by name (its metadata, such as a config, left out)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(str(path)).items()):
        digest.update(name.encode() + tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def run_cli(argv):
    code = main(argv)
    if code:
        sys.exit(f"fingerprints: unnoise {' '.join(argv)} exited {code}")


def fingerprints(root):
    out = {}
    for name, args in RUNS.items():
        folder = root / name
        run_cli(["train", *args, *TINY, "--seed", "1", "--out", str(folder)])
        row = {
            "weights": tensors_hash(folder / "model.safetensors"),
            "state": tensors_hash(folder / "state.safetensors"),
        }
        if name != "vq-digits":
            samples = root / f"{name}.npy"
            nfe = [] if "--nfe" in SAMPLE.get(name, []) or name.startswith(("ar", "var")) else ["--nfe", "8"]
            run_cli(
                ["sample", str(folder), "--n", "6", "--seed", "3", *nfe, *SAMPLE.get(name, []), "--out", str(samples)]
            )
            row["samples"] = hashlib.sha256(np.load(samples).tobytes()).hexdigest()[:16]
        out[name] = row
    reflowed = root / "reflow"
    run_cli(["reflow", str(root / "flow-ot"), "--pairs", "64", "--steps", "6", "--out", str(reflowed)])
    out["reflow"] = {"weights": tensors_hash(reflowed / "model.safetensors")}
    resumed = root / "diffusion-moons"
    run_cli(["train", "--out", str(resumed), "--resume", "--steps", "16"])
    out["resume"] = {"weights": tensors_hash(resumed / "model.safetensors")}
    return out


def cli():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        result = fingerprints(Path(args.out or tmp))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name, row in result.items():
        print(f"{name:18s} " + "  ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    cli()
