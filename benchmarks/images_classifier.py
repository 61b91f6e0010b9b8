"""Per image data set: the metrics classifier's held-out accuracy and the real-vs-real floor of every metric.

The floor is what a perfect generator would score: held-out real images against the training images,
at n = the held-out size. Trains (and caches) each classifier on first use.

    PYTHONPATH=src python benchmarks/images_classifier.py [--sets digits:8 mnist:16 mnist:28] [--cache DIR]
"""

import argparse
import time

import torch

from unnoise.data.images import load_images
from unnoise.metrics.images import report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=["digits:8", "mnist:16", "mnist:28"], help="source:size")
    parser.add_argument("--cache", default=None, help="classifier cache folder (default: the user cache)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        "| data | size | train / held-out | classifier acc. | FID floor | KID floor | precision floor "
        "| recall floor | memorization floor | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.sets:
        source, size = spec.split(":")
        start = time.perf_counter()
        x, y, _ = load_images(source, "heldout", int(size))
        train_n = len(load_images(source, "train", int(size))[0])
        r = report(x, y, source, int(size), cache=args.cache)
        print(
            f"| {source} | {size} | {train_n} / {len(x)} | {r['classifier_accuracy']:.3f} | {r['fid_floor']:.3f} "
            f"| {r['kid_floor']:.4f} | {r['precision_floor']:.3f} | {r['recall_floor']:.3f} "
            f"| {r['memorization_ratio_floor']:.2f} | {time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
