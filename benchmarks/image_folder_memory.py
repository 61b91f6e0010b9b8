"""Memory to load a folder of 10,000 images: peak resident memory beside the size of the decoded pixels.

Writes N PNG files (SIZE x SIZE RGB, random discs on random backgrounds, 10 class subfolders) into a temporary
folder, then in a fresh process loads the training split as training does (`unnoise.data.load(folder,
"train", size=SIZE)`) and reports the rise in peak resident memory (ru_maxrss) over the process before the
load, in units of the decoded training split in float32 (what training holds). A loader that keeps the
decoded images twice reads >= 2.0 here.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def write_folder(folder, n, size, seed=0):
    """n images in 10 class subfolders: a disc of a random colour on a random background."""
    rng = np.random.RandomState(seed)
    for i in range(n):
        image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.randint(0, 256, 3)))
        r = rng.randint(size // 8, size // 2)
        cx, cy = rng.randint(0, size, 2)
        ImageDraw.Draw(image).ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.randint(0, 256, 3))
        )
        sub = Path(folder) / f"class_{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        image.save(sub / f"{i:05d}.png")


def measure(folder, size):
    """In this process: load the training split; the peak-memory rise and the split's float32 bytes."""
    import torch

    import unnoise

    torch.set_num_threads(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    dataset = unnoise.data.load(folder, "train", size=size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pixels = dataset.x.numel() * dataset.x.element_size()
    return {
        "images": len(dataset.x),
        "shape": list(dataset.x.shape[1:]),
        "split_mb": pixels / 2**20,
        "rise_mb": (peak - before) / 2**20,
        "ratio": (peak - before) / pixels,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--append", action="store_true", help="append the result to BENCHMARKS.md")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the fresh process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.size)))
        return
    with tempfile.TemporaryDirectory() as folder:
        write_folder(folder, args.n, args.size)
        out = subprocess.run(
            [sys.executable, __file__, "--measure", folder, "--size", str(args.size)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    line = (
        f"- {args.n} PNG files of {args.size}x{args.size} RGB in 10 class folders: the training split, "
        f"{result['images']} images {result['shape']}, is {result['split_mb']:.0f} MB in float32; loading it "
        f"raised peak resident memory by {result['rise_mb']:.0f} MB, {result['ratio']:.2f} x the split"
    )
    print(line)
    if args.append:
        common.append("Loading an image folder: memory", [line])


if __name__ == "__main__":
    main()
