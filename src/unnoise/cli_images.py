"""What `unnoise sample`, `evaluate` and `data` do for images: write arrays or grids, and the image metrics."""

import json

import numpy as np

from .checkpoint import atomic_write


def write_images(images, out, labels=None, title=None):
    """Save images (n, C, H, W) in [0, 1] as .npy, or as a .png grid (one row per class when labelled)."""
    from .viz import figures2d
    from .viz.images import sample_grid

    if out.suffix == ".npy":
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), images.numpy()))
    else:  # a grid of at most 10 per class, or of the first 100
        shown = images if labels is not None else images[:100]
        figures2d.save(sample_grid(shown, labels, title=title), out)
    print(f"wrote {len(images)} images ({'x'.join(map(str, images.shape[1:]))}) to {out}")


def evaluate(run, images, labels, seconds, args):
    """The image report beside its floors (metrics/images.py), plus bits per dimension when asked."""
    from .metrics.images import format_report, report

    result = report(images, labels, run.cfg.data, run.cfg.size, run.cfg.channels, verbose=not args.json)
    result.update(
        sampler=args.sampler,
        nfe=args.nfe_counted,
        sample_seconds=seconds,
        sample_seconds_per_image=seconds / len(images),
    )
    if run.cfg.discrete:
        result.update(run.family.bits(run, run.dataset.x))
    elif args.likelihood:
        from .likelihood import nll

        likelihood = nll(run, args.n, "hutchinson", 1, args.seed)  # n beyond the held-out split: all of it
        result.update(
            bpd=likelihood["bpd"],
            bpd_stderr=likelihood["stderr_nats"] / (likelihood["dim"] * np.log(2)),
            bpd_n=likelihood["n"],
        )
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{run.cfg.data} {run.cfg.size}x{run.cfg.size}, {args.sampler} at {args.nfe_counted:g} NFE, "
        f"{seconds / len(images) * 1000:.1f} ms per image"
    )
    print(format_report(result))
    if run.cfg.discrete:
        exact = (
            f", {result['bpd']:.3f} bits per dimension (exact, on the {result['grid']} grid)"
            if result["bpd"]
            else f" ({result['grid']}; per scale {result.get('bits_per_scale')})"
        )
        print(
            f"  code length {result['bits_per_image']:.1f} +- {result['bits_per_image_stderr']:.1f} bits per "
            f"held-out image{exact}, n={result['n']}"
        )
    elif "bpd" in result:
        print(
            f"  bpd {result['bpd']:.3f} +- {result['bpd_stderr']:.3f} on {result['bpd_n']} held-out images "
            "(8-bit scale, probability-flow ODE, Hutchinson)"
        )


def evaluate_tokenizer(run, args):
    """A tokenizer's report: reconstruction error after each prefix of scales on held-out images, and code use."""
    from .tokenizers.multiscale import reconstruction_report

    result = reconstruction_report(run.net, run.dataset.normalize(run.dataset.x))
    result.update(codes=run.net.summary())
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{run.cfg.data} tokenizer, scales {run.cfg.scales}, {run.cfg.codebook} codes; "
        f"{result['n']} held-out images, RMSE in [0, 1] pixel units after each prefix of scales:"
    )
    for side, rmse, used in zip(run.net.scales, result["rmse_per_prefix"], result["codes"]["codes_used_per_scale"]):
        print(f"  up to {side}x{side}: rmse {rmse:.4f}   codes in use at this scale {used}")
    print(f"  autoencoder without quantization: rmse {result['rmse_unquantized']:.4f}")
