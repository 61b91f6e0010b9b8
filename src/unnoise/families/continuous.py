"""diffusion, flow and edm: one Gaussian path (paths.py), one loss (losses.py), samplers over the path."""

import functools
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from .. import guidance, samplers
from .. import source as sources
from ..coupling import COUPLINGS, couple, paired_noise
from ..errors import UnnoiseError, choose, positive_int
from ..losses import denoising_loss, edm_loss
from ..nets import MLP
from ..nets.autoencoder import latent_side
from ..nets.transformer import DiT, check_patch
from ..nets.transformer import default_patch as dit_patch
from ..nets.unet import FACTOR, UNet, check_size, default_patch
from ..paths import CONTINUOUS_SCHEDULES, DISCRETE_SCHEDULES, TIME_DENSITIES, make_path, sample_times
from . import autoencoder, tokens
from .base import Family, Pairs, Pool, positive_settings

DEFAULT_SAMPLER = {"points": "dpmpp_2m", "images": "dpmpp_2m_sde"}  # docs/performance.md, "Eighth round"
NETS = ("unet", "transformer")  # the image denoisers: the U-Net, or DiT from the transformer of the token families
DIT = {"width": 128, "depth": 4}  # DiT's size where --width and --depth are not given (docs/latent.md)
SOURCE_SAMPLER = "euler"  # flow matching's own sampler; deterministic, as a non-Gaussian source needs


@functools.lru_cache(maxsize=16)
def path_of(schedule, sigma_data):
    return make_path(schedule, sigma_data=sigma_data)


def training_loss(net, path, cfg, x0, y, generator, eps=None, t=None):
    """EDM's loss for EDM's preconditioned F (prediction edm), the denoising loss for eps, x0, v or velocity.

    eps: noise paired with x0 by a coupling (OT-CFM, reflow), t: times; drawn by the loss when None.
    """
    if cfg.prediction == "edm":
        return edm_loss(net, path, x0, y, generator, eps, t)
    return denoising_loss(net, path, cfg.prediction, x0, y, generator, cfg.min_snr_gamma, eps, t)


def default_time_density(kind, schedule):
    """Logit-normal times for images on continuous-time paths (docs/performance.md), uniform otherwise."""
    return "logit-normal" if kind == "images" and schedule in CONTINUOUS_SCHEDULES else "uniform"


@dataclass(frozen=True)
class Continuous(Family):
    """A family on a Gaussian path: its default and allowed schedules and predictions."""

    schedule: str = "vp-cosine"
    prediction: str = "v"
    schedules: tuple = ()
    predictions: tuple = ()
    figure: str = "euler"  # the deterministic sampler the figures use
    ode: str = "euler"  # the page's probability-flow ODE sampler on points
    sde: str | None = None  # the page's reverse-SDE sampler on points, where it has one
    order: str = "denoising"
    options: tuple = ("sampler", "nfe", "eta", "spacing", "s_churn", "clip", "guide")

    def check(self, cfg, kind):
        if kind == "images":
            self.check_images(cfg)
        elif any(v is not None for v in (cfg.size, cfg.channels, cfg.patch, cfg.net, cfg.latent, cfg.latent_channels)):
            raise UnnoiseError(
                f"--size, --channels, --patch, --net and --latent are for image data, not the 2D set {cfg.data!r}"
            )
        cfg.schedule = choose(f"schedule for {self.name}", cfg.schedule or self.schedule, self.schedules)
        cfg.prediction = choose(f"prediction for {self.name}", cfg.prediction or self.prediction, self.predictions)
        choose("coupling", cfg.coupling, COUPLINGS + ("reflow",))
        cfg.time_density = choose(
            "time density", cfg.time_density or default_time_density(kind, cfg.schedule), TIME_DENSITIES
        )
        if cfg.time_density != "uniform" and cfg.schedule not in CONTINUOUS_SCHEDULES:
            raise UnnoiseError(
                f"--time-density {cfg.time_density} needs a continuous-time path "
                f"({', '.join(CONTINUOUS_SCHEDULES)}), not the {cfg.schedule} schedule"
            )
        self.check_source(cfg)
        positive_settings(cfg, ("steps", "batch_size", "width", "depth", "checkpoint_every"))
        if cfg.min_snr_gamma is not None and not (cfg.min_snr_gamma > 0 and cfg.prediction in ("eps", "x0", "v")):
            raise UnnoiseError(
                f"min-snr-gamma must be positive and applies to eps, x0 or v prediction "
                f"(got {cfg.min_snr_gamma} with {cfg.prediction})"
            )
        if not cfg.sigma_data > 0:
            raise UnnoiseError(f"sigma-data must be positive, got {cfg.sigma_data}")

    @staticmethod
    def check_images(cfg):
        """Size, channels, and the denoiser (U-Net or DiT) and its patch on the side it sees: the image's, or with
        --latent the latent's."""
        from ..data.images import default_size

        cfg.size = positive_int("size", cfg.size or default_size(cfg.data))
        if cfg.channels not in (None, 1, 3):
            raise UnnoiseError(f"channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels}")
        cfg.net = choose("net", cfg.net or "unet", NETS)
        if cfg.latent_channels is not None and cfg.latent != "auto":
            raise UnnoiseError("--latent-channels sizes the autoencoder that --latent auto trains (or --family ae)")
        if cfg.latent is not None and (cfg.coupling == "reflow" or cfg.teacher is not None):
            raise UnnoiseError("--latent runs are trained from data: not reflow, nor distilled from a --teacher")
        side = latent_side(cfg.size) if cfg.latent else cfg.size
        if cfg.net == "unet":
            cfg.patch = positive_int("patch", cfg.patch or default_patch(side))
            check_size(side, FACTOR * cfg.patch)
            return
        for name, value in DIT.items():
            if name not in cfg.given:
                setattr(cfg, name, value)
        cfg.patch = positive_int("patch", cfg.patch or dit_patch(side))
        check_patch(side, cfg.patch)
        if cfg.width % cfg.heads or (cfg.width // cfg.heads) % 2:
            raise UnnoiseError(f"--width {cfg.width} must be a multiple of the {cfg.heads} heads, with an even share")

    def check_source(self, cfg):
        """A source other than N(0, I) belongs to flow matching on points, on the straight (rectified) path."""
        if cfg.source == sources.GAUSSIAN:
            return
        sources.check_name(cfg.source)
        if not self.reflows or cfg.schedule != "rectified":
            raise UnnoiseError(
                f"--source {cfg.source} needs --family flow on the rectified path (a diffusion path "
                f"ends in Gaussian noise); got {cfg.family} on {cfg.schedule}"
            )
        if cfg.size is not None:
            raise UnnoiseError("--source is for point data; image flows start from N(0, I)")

    def upgrade(self, values):
        """A run saved before patches had none; before time densities, uniform times."""
        values = {"patch": 1, **values} if values.get("size") is not None else values
        return {"time_density": "uniform", **values}

    def requires(self, cfg):
        parts = {"source": Pool(cfg.source)} if cfg.source != sources.GAUSSIAN else {}
        if cfg.latent is not None:
            parts[autoencoder.SUBFOLDER] = autoencoder.stage(cfg)
        return {**parts, "pairs": Pairs()} if cfg.coupling == "reflow" else parts

    def build(self, cfg, num_classes, parts=None):
        """An MLP for 2D points; for images a U-Net or DiT, on the pixels or on the latent of the autoencoder."""
        classes = num_classes if cfg.conditional else 0
        if cfg.size is None:
            return MLP(dim=cfg.dim or 2, width=cfg.width, depth=cfg.depth, num_classes=classes)
        ae = (parts or {}).get(autoencoder.SUBFOLDER)
        channels, side = (ae.latent_channels, ae.latent_size) if ae is not None else (cfg.channels, cfg.size)
        if cfg.net == "transformer":
            net = DiT(channels, side, cfg.width, cfg.depth, cfg.heads, classes, cfg.patch)
        else:
            net = UNet(channels=channels, width=cfg.width, num_classes=classes, size=side, patch=cfg.patch)
        if ae is not None:
            net.__dict__["autoencoder"] = ae  # used, not trained or saved (its own folder keeps it)
        return net

    def prepare(self, cfg, dataset, parts):
        """Data in model units (with --latent: the images' latents, standardised by their mean and std over the
        training split); a reflow run trains on the (sample, noise, label) triples the pipeline hands it."""
        if "pairs" in parts:
            x0, eps, y = parts["pairs"]
            return {"x0": x0, "eps": eps}, y
        x0 = dataset.normalize(dataset.x)  # (N, 2) or (N, C, H, W)
        if autoencoder.SUBFOLDER in parts:
            z = autoencoder.latents(parts[autoencoder.SUBFOLDER], x0)  # (N, C', s, s)
            if cfg.latent_scale is None:
                cfg.latent_shift, cfg.latent_scale = float(z.mean()), float(z.std())
            x0 = (z - cfg.latent_shift) / cfg.latent_scale
        return {"x0": x0}, dataset.y

    def draw(self, cfg, rows, generator, parts=None):
        return draw(cfg, rows, generator, (parts or {}).get("source"))

    def loss(self, net, cfg, rows, y, generator):
        """The denoising / flow-matching loss (or EDM's) on the batch that draw() paired with its noise and times."""
        path = path_of(cfg.schedule, cfg.sigma_data)
        return training_loss(net, path, cfg, rows["x0"], y, generator, eps=rows.get("eps"), t=rows.get("t"))

    def path(self, cfg):
        return make_path(cfg.schedule, sigma_data=cfg.sigma_data)

    def describe(self, cfg, net):
        return f"{cfg.prediction}, {cfg.schedule}"

    def role(self, run):
        if run.images:
            return "images-latent" if run.latent is not None else "images-diffusion"
        if self.reflows and run.cfg.coupling != "independent":
            return "points-reflow" if run.cfg.coupling == "reflow" else "points-ot"
        return "points-flow" if self.reflows else "points-diffusion"

    def default_sampler(self, run):
        """dpmpp_2m (DPM-Solver++(2M), Lu et al. 2022) at 20 NFE for points, its SDE form at 30 for images; euler
        for a run with a non-Gaussian source (docs/performance.md, "Eighth round")."""
        if run.cfg.source != sources.GAUSSIAN:
            return SOURCE_SAMPLER
        return DEFAULT_SAMPLER["images" if run.images else "points"]

    def sampler_name(self, run, sampler=None):
        return sampler or self.default_sampler(run)

    def figure_sampler(self, run):
        return self.figure

    def sampler_options(self, sampler=None, nfe=None):
        return {k: v for k, v in (("sampler", sampler), ("nfe", nfe)) if v is not None}

    def forward_passes(self, run, nfe=None):
        return nfe

    def report(self, run, n, seed, likelihood=False):
        """A latent run's ceiling (its autoencoder's held-out reconstructions under the same judge); bits per
        dimension of held-out images through the probability-flow ODE (Hutchinson), when asked."""
        if run.latent is not None:
            ceiling = autoencoder.ceiling(run.latent, run.dataset, run.cfg)
            return {f"autoencoder_{k}": v for k, v in ceiling.items()}
        if not likelihood:
            return {}
        from ..likelihood import nll

        result = nll(run, n, "hutchinson", 1, seed)  # n beyond the held-out split: all of it
        return {
            "bpd": result["bpd"],
            "bpd_stderr": result["stderr_nats"] / (result["dim"] * np.log(2)),
            "bpd_n": result["n"],
        }

    def report_lines(self, run, result):
        if "autoencoder_fid" not in result:
            return []
        return [
            f"  the autoencoder's ceiling: its held-out reconstructions' FID {result['autoencoder_fid']:.4f} (floor "
            f"{result['autoencoder_fid_floor']:.4f}), rmse {result['autoencoder_rmse']:.4f}"
        ]

    def sample(self, run, n=2000, seed=0, guidance=1.0, **options):
        return sample(run, n, seed, w=guidance, **options)


def draw(cfg, rows, generator, start=None):
    """The batch's randomness for every row of the global batch: noise paired by the coupling, then times
    (drawn once for the whole batch, so an OT pairing and every process see the same draws). start: the Source
    (model units) a flow starts from in place of N(0, I)."""
    x0 = rows["x0"]  # (B, ...)
    if "eps" in rows:
        eps = rows["eps"]
    elif start is None or start.gaussian:
        eps = paired_noise(cfg.coupling, x0, generator)
    else:  # source points stand in for the noise
        eps = couple(cfg.coupling, x0, start.draw(len(x0), generator), generator)
    t = sample_times(path_of(cfg.schedule, cfg.sigma_data), cfg.time_density, len(x0), generator)  # (B,)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator)
    return {"x0": x0, "eps": eps, "t": t}


def check_sampler(run, sampler, eta, options):
    """Refuse what a run cannot sample with: noise where its source is not Gaussian, and token options."""
    if run.cfg.source != sources.GAUSSIAN and (
        samplers.get(sampler).stochastic or options.get("s_churn") or (eta or 0) > 0
    ):
        raise UnnoiseError(
            f"{run.folder} starts from the source {run.cfg.source}, not Gaussian noise: sample it with a "
            f"deterministic sampler ({', '.join(samplers.DETERMINISTIC)}; ddim with eta 0), without churn"
        )
    for name in options:
        if name in tokens.OPTIONS and options[name] not in (None, False):
            raise UnnoiseError(
                f"--{name.replace('_', '-')} is for token runs (ar, var); a {run.cfg.family} run "
                f"samples with --sampler, --nfe, --eta, --spacing, --guidance"
            )


def sample(
    run,
    n=2000,
    seed=0,
    label=None,
    w=1.0,
    batch_size=1000,
    callback=None,
    progress=False,
    sampler=None,
    nfe=None,
    eta=None,
    spacing=None,
    clip=True,
    first=0,
    guide=None,
    **options,
):
    """n samples of a continuous run in data units over its path (sampler, nfe: its defaults when None); sample i
    depends only on (seed, i). callback(i, t, x, x0) follows each network evaluation."""
    sampler = sampler or run.family.default_sampler(run)
    nfe = samplers.get(sampler).default_nfe if nfe is None else nfe
    check_sampler(run, sampler, eta, options)
    options = {k: v for k, v in options.items() if k not in tokens.OPTIONS}
    guidance.check(run, label, w, guide)
    n, nfe, batch_size = (positive_int(k, v) for k, v in (("n", n), ("nfe", nfe), ("batch-size", batch_size)))
    chosen = samplers.get(sampler)
    options = samplers.check_options(sampler, {**options, **({"eta": eta} if eta is not None else {})})
    steps = samplers.steps_for(sampler, nfe)
    ts = samplers.timesteps(run.path, steps, spacing or samplers.default_spacing(run.path, sampler))
    starts, end = range(first, first + n, batch_size), first + n
    per_batch = None if chosen.adaptive else samplers.nfe_of(sampler, steps)
    bar = tqdm(total=per_batch and len(starts) * per_batch, desc="sampling", disable=not progress, leave=False)

    def step_done(*args):
        bar.update()
        if callback:
            callback(*args)

    out = []
    for start in starts:
        noise = samplers.PerSampleNoise.for_range(seed, start, min(end, start + batch_size))
        x = run.initial(noise)
        model = guidance.model_for(run, label, w, start, start + len(x), clip, guide)
        out.append(chosen(model, x, ts, run.path, noise, callback=step_done, **options))
    bar.close()
    return run.to_data(torch.cat(out))


DIFFUSION = Continuous(
    "diffusion",
    "a Gaussian path (DDPM, DDIM, v-prediction)",
    # v on the VP cosine path (Salimans & Ho 2022; Nichol & Dhariwal 2021) measured best on moons and digits
    # (docs/performance.md); DDPM's eps on linear betas is --prediction eps --schedule linear
    schedule="vp-cosine",
    prediction="v",
    schedules=DISCRETE_SCHEDULES + ("vp-cosine",),
    predictions=("eps", "x0", "v"),
    figure="ddim",
    ode="ddim",
    sde="ddpm",
)
FLOW = Continuous(
    "flow",
    "flow matching on the straight path",
    schedule="rectified",
    prediction="velocity",
    schedules=("rectified", "vp-cosine"),
    predictions=("velocity",),
    reflows=True,
)
EDM = Continuous(
    "edm",
    "Karras et al. 2022: preconditioned F, log-normal sigma",
    schedule="edm",
    prediction="edm",
    schedules=("edm",),
    predictions=("edm",),
    ode="heun",
)
