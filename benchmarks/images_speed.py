"""Time one training step (forward + backward + Adam) of the image U-Net and the metrics classifier on 2 threads.

PYTHONPATH=src python benchmarks/images_speed.py [--widths 16 32] [--sizes 8 16 28]
"""

import argparse
import time

import torch
import torch.nn.functional as F

from unnoise.metrics.classifier import Classifier
from unnoise.nets.unet import UNet, num_params


def step_ms(net, x, loss_fn, repeats=10, warmup=3):
    """Median milliseconds of one Adam step over `repeats`, after `warmup` untimed steps."""
    opt = torch.optim.Adam(net.parameters())
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        loss = loss_fn(net, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 28])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    y = torch.randint(0, 10, (args.batch,))
    for width in args.widths:
        for size in args.sizes:
            net = UNet(1, width, num_classes=10, size=size)
            x = torch.randn(args.batch, 1, size, size)
            ms = step_ms(net, x, lambda n, x: (n(x, torch.rand(len(x)), y) - x).square().mean())
            print(
                f"unet width {width:3d} ({num_params(net) / 1e3:.0f}k params) {size:2d}x{size:<2d}: {ms:7.1f} ms/step"
            )
    for size in args.sizes:
        net = Classifier(1, 10)
        x = torch.rand(args.batch, 1, size, size)
        ms = step_ms(net, x, lambda n, x: F.cross_entropy(n(x), y))
        print(f"classifier ({num_params(net) / 1e3:.0f}k params) {size:2d}x{size:<2d}: {ms:7.1f} ms/step")


if __name__ == "__main__":
    main()
