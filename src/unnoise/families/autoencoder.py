"""The ae family: latent diffusion's KL autoencoder (Rombach et al. 2022), a run the latent families are built on.

Like VAR's tokenizer it is trained once and reused: a diffusion, flow or edm run given `--latent RUN` (or `auto`)
asks for it as a part (`stage`), and the pipeline trains it into, or copies it to, that run's `autoencoder/`,
pinning the sha256 of its weights. The latent run standardises the latents by their mean and standard deviation
over its training split (SD's scale factor 0.18215, measured, not assumed; SD3's shift beside it) and keeps the
two numbers in its config.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UnnoiseError
from ..nets.autoencoder import Autoencoder, latent_side
from .base import Family, Stage, positive_settings

SUBFOLDER = "autoencoder"
KL_WEIGHT = 1e-4  # LDM's KL term, per latent value, beside the per-pixel squared error (docs/latent.md)


@dataclass(frozen=True)
class KLAutoencoder(Family):
    """It encodes and decodes; it does not sample."""

    generates: bool = False
    discrete: bool = True  # no Gaussian path, sampler or NFE: like a tokenizer, it draws nothing
    kinds: tuple = ("images",)

    def check(self, cfg, kind):
        from ..data.images import default_size

        if kind != "images":
            raise UnnoiseError(f"the ae family encodes images (digits, mnist, emoji or a folder), not {cfg.data!r}")
        given = [f"--{k}" for k in ("schedule", "prediction", "patch", "latent", "net") if getattr(cfg, k) is not None]
        if given or cfg.conditional or cfg.time_density is not None:
            raise UnnoiseError(
                f"{', '.join(given) or '--conditional or --time-density'}: for the runs built on an autoencoder "
                "(diffusion, flow, edm with --latent RUN), not the autoencoder itself"
            )
        cfg.size = int(cfg.size or default_size(cfg.data))
        if cfg.channels not in (None, 1, 3):
            raise UnnoiseError(f"channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels}")
        positive_settings(cfg, ("size", "steps", "batch_size", "width", "latent_channels", "checkpoint_every"))

    def build(self, cfg, num_classes=0, parts=None):
        return Autoencoder(cfg.channels, cfg.size, cfg.latent_channels, cfg.width)

    def prepare(self, cfg, dataset, parts):
        return {"x": dataset.normalize(dataset.x)}, dataset.y  # (N, C, H, W) in [-1, 1]

    def loss(self, net, cfg, rows, y, generator):
        """|decoder(z) - x|^2 per pixel plus KL_WEIGHT x KL(q(z | x) || N(0, I)) per latent value, z ~ q(z | x)."""
        reconstruction, kl = net(rows["x"], generator)
        return F.mse_loss(reconstruction, rows["x"]) + KL_WEIGHT * kl.mean()

    def describe(self, cfg, net):
        side = latent_side(cfg.size)
        return f"{cfg.size}x{cfg.size}x{cfg.channels} -> {side}x{side}x{cfg.latent_channels} latent"

    def sample(self, run, *args, **kwargs):
        raise UnnoiseError(
            f"{run.folder} is an autoencoder (--family ae): it encodes and decodes but does not sample; "
            f"train a latent model on it: unnoise train --data {run.trained_on} --latent {run.folder} --out RUN"
        )

    def forward_passes(self, run, nfe=None):
        return None

    def reconstructions(self, run, x):
        """Rows of a reconstruction figure for held-out images x in [0, 1]: (rows, row labels, title)."""
        return [x, reconstruct(run.net, x)], ["held-out", "decoded"], f"autoencoder, {self.describe(run.cfg, None)}"

    def report(self, run, n, seed, likelihood=False):
        """Held-out reconstruction error, the latents' measured scale, and the judge's view of the reconstructions
        beside real data's floor: the ceiling of any model in this latent space."""
        shift, scale = standardisation(run.net, run.dataset.normalize(run.dataset.x))
        found = ceiling(run.net, run.dataset, run.cfg)
        return {
            "n": len(run.dataset.x),
            "rmse": found["rmse"],
            "latent_shift": shift,
            "latent_scale": scale,
            "reconstruction_fid": found["fid"],
            "reconstruction_fid_floor": found["fid_floor"],
            "reconstruction_class_accuracy": found["class_accuracy"],
        }

    def report_lines(self, run, result):
        accuracy = result["reconstruction_class_accuracy"]
        return [
            f"{run.cfg.data} autoencoder, {self.describe(run.cfg, None)}; {result['n']} held-out images",
            f"  reconstruction rmse {result['rmse']:.4f} in [0, 1] pixel units",
            f"  reconstructions' FID {result['reconstruction_fid']:.4f}, floor (held-out real) "
            f"{result['reconstruction_fid_floor']:.4f}: the ceiling of a model in this latent"
            + (f"; their class accuracy {accuracy:.3f}" if accuracy is not None else ""),
            f"  latents: mean {result['latent_shift']:.4f}, std {result['latent_scale']:.4f} (a latent run "
            "divides by it, as SD's 0.18215 multiplies)",
        ]


@torch.no_grad()
def latents(ae, x, batch=500):
    """The posterior means (N, C', s, s) of images x (N, C, H, W) in model units, in batches."""
    return torch.cat([ae.encode(chunk)[0] for chunk in x.split(batch)])


def standardisation(ae, x):
    """(mean, std) of the latents of x, the numbers a latent run standardises by."""
    z = latents(ae, x)
    return float(z.mean()), float(z.std())


@torch.no_grad()
def reconstruct(ae, x, batch=500):
    """Images x (N, C, H, W) in [0, 1], encoded to their posterior mean and decoded, in [0, 1]."""
    out = [ae.decode(ae.encode(chunk * 2 - 1)[0]) for chunk in x.split(batch)]
    return (torch.cat(out) * 0.5 + 0.5).clamp(0, 1)


def ceiling(ae, dataset, cfg):
    """The judge's view of held-out images encoded and decoded by ae: rmse in [0, 1] units, FID and its floor, class
    accuracy (the best any model in this latent can reach)."""
    from ..metrics.images import report as image_report

    rebuilt = reconstruct(ae, dataset.x)
    judged = image_report(rebuilt, dataset.y, cfg.data, cfg.size, cfg.channels)
    rmse = float((rebuilt - dataset.x).square().mean().sqrt())
    return {"rmse": rmse, **{k: judged[k] for k in ("fid", "fid_floor", "class_accuracy")}}


def stage(cfg):
    """The autoencoder a latent run (cfg) is built on: trained in its folder (latent auto) or copied from cfg.latent."""
    settings = {"data": cfg.data, "family": "ae", "size": cfg.size, "channels": cfg.channels, "seed": cfg.seed}
    if cfg.latent_channels is not None:
        settings["latent_channels"] = cfg.latent_channels
    return Stage(
        settings,
        pin="autoencoder_hash",
        check=functools.partial(check, latent=cfg),
        given=None if cfg.latent == "auto" else cfg.latent,
        note="the autoencoder",
    )


def check(folder, cfg, net, latent):
    """Refuse an autoencoder run that does not fit the latent run: cfg None where folder holds no run."""
    if cfg is None:
        raise UnnoiseError(
            f"--latent {folder}: not an autoencoder run (no config.json); train one with "
            f"unnoise train --family ae --data {latent.data} --out RUN, or pass --latent auto"
        )
    if cfg.family != "ae":
        raise UnnoiseError(f"--latent {folder}: a {cfg.family} run, not an autoencoder (--family ae)")
    if (cfg.data, cfg.size) != (latent.data, latent.size) or (latent.channels and cfg.channels != latent.channels):
        raise UnnoiseError(
            f"--latent {folder}: an autoencoder of {cfg.data} at {cfg.size}x{cfg.size}x{cfg.channels}, but this run "
            f"models {latent.data} at {latent.size}x{latent.size}" + (f"x{latent.channels}" if latent.channels else "")
        )


AE = KLAutoencoder(
    "ae",
    "latent diffusion's KL autoencoder (--latent RUN builds on it)",
    defaults={
        "steps": 2000,
        "batch_size": 64,
        "lr": 2e-3,
        "width": 32,
        "ema": 0.0,
        "warmup": 100,
        "latent_channels": 4,
    },
)
