"""End-to-end check of the image pieces: a class-conditional U-Net trained on 8x8 digits for a few minutes
with the flow-matching loss (Lipman et al. 2023), sampled with Euler steps and classifier-free guidance
(Ho & Salimans 2022), then scored by metrics.images.report beside the held-out floor.

    PYTHONPATH=src python benchmarks/images_unet_digits.py [--steps 3000] [--out figures/]
"""

import argparse
import time

import torch

from unnoise.data.images import image_dataset
from unnoise.nets.unet import UNet, num_params


def train(net, data, steps, batch=128, lr=2e-3, p_uncond=0.1):
    """x_t = (1 - t) x0 + t eps, the net predicts eps - x0; 10% of labels dropped to 'no class'."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all, y_all = data.normalize(data.x), data.y                           # (N, 1, 8, 8) in [-1, 1]
    for step in range(steps):
        idx = torch.randint(len(x_all), (batch,))
        x0, eps, t = x_all[idx], torch.randn(batch, *x_all.shape[1:]), torch.rand(batch)
        y = torch.where(torch.rand(batch) < p_uncond, data.num_classes, y_all[idx])
        xt = (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * eps
        loss = (net(xt, t, y) - (eps - x0)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)


@torch.no_grad()
def sample(net, y, shape, num_classes, steps=50, w=1.0):
    """Euler from t = 1 (noise) to 0 with guided velocity v_c + w (v_c - v_uncond)."""
    x = torch.randn(len(y), *shape, generator=torch.Generator().manual_seed(0))
    null = torch.full_like(y, num_classes)
    ts = torch.linspace(1, 0, steps + 1)
    for t, s in zip(ts[:-1], ts[1:]):
        tt = torch.full((len(y),), float(t))
        v_c, v_u = net(x, tt, y), net(x, tt, null)
        x = x + (s - t) * (v_c + w * (v_c - v_u))
    return x


def main():
    from unnoise.metrics.images import format_report, report
    from unnoise.viz.images import sample_grid, save
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    data = image_dataset("digits", "train")
    net = UNet(1, args.width, num_classes=data.num_classes, size=8)
    start = time.perf_counter()
    train(net, data, args.steps)
    minutes = (time.perf_counter() - start) / 60
    print(f"U-Net width {args.width}, {num_params(net)} parameters: {args.steps} steps in {minutes:.1f} min")
    net.eval()
    y = torch.arange(500) % 10
    for w in (0.0, 1.0):
        x = data.denormalize(sample(net, y, data.x.shape[1:], data.num_classes, w=w)).clamp(0, 1)
        print(f"guidance w={w}\n" + format_report(report(x, y, "digits")))
        if args.out:
            save(sample_grid(x, y, per_row=10, title=f"w={w}"), f"{args.out}/digits_w{w:g}.png")


if __name__ == "__main__":
    main()
