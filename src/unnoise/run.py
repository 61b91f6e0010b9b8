"""A trained run: config, EMA network, path and data units; sampling hands over to its family."""

import functools
from pathlib import Path

import torch

from . import data, families
from . import source as sources
from .data import images
from .errors import UnnoiseError, bounded
from .store import UNITS, read_config, read_units
from .store import load_net as load_folder


class Run:
    """A trained run folder, loaded for sampling: EMA weights in eval mode."""

    def __init__(self, folder, cfg, net, step, num_classes, units=None):
        self.folder, self.cfg, self.net, self.step = Path(folder), cfg, net.eval(), step
        self.num_classes, self.trained_on = num_classes, cfg.data
        self.family = families.of(cfg)
        self.path = self.family.path(cfg)  # the Gaussian path it samples over; None for token runs
        self.images, self.text = cfg.size is not None, cfg.alphabet is not None
        self.shape = (cfg.channels, cfg.size, cfg.size) if self.images else (cfg.dim or 2,)
        self.latent = getattr(net, "autoencoder", None)  # a latent run's autoencoder (families/autoencoder.py)
        if self.text:  # character ids: no units
            self.shape = (cfg.context,)
        elif self.latent is not None:  # standardised latents: decoded into images by to_data, never clipped
            self.shape = (self.latent.latent_channels, self.latent.latent_size, self.latent.latent_size)
            self.low = self.high = None
        elif self.images:  # fixed units, so sampling needs no image folder: [0, 1] <-> [-1, 1]
            self.low, self.high = torch.tensor(-1.0), torch.tensor(1.0)
        else:  # points: the units config.json keeps (a run saved before them: its data's)
            units = units or {k: getattr(self.dataset, k) for k in UNITS}
            self.shift, self.scale, self.low, self.high = (units[k] for k in UNITS)

    @functools.cached_property
    def dataset(self):
        """The held-out split of the run's data (loaded on first use)."""
        return data.load(self.cfg.data, "heldout", size=self.cfg.size, channels=self.cfg.channels)

    def to_data(self, z):
        """Model units -> data units: 2D coordinates, or images in [0, 1] (a latent run's latents decoded first; text:
        the ids as they are)."""
        if self.text:
            return z
        if self.latent is not None:
            z = z.float() * self.cfg.latent_scale + self.cfg.latent_shift
            with torch.no_grad():
                z = torch.cat([self.latent.decode(chunk) for chunk in z.split(500)])
        return (z * images.SCALE + images.SHIFT).clamp(0, 1) if self.images else z * self.scale + self.shift

    @classmethod
    def load(cls, folder, data_path=None):
        """The run in folder. Its config's data is followed only where it is a built-in set or the run's own copy
        of a point file (data.COPY); data_path: the data to measure against instead, named by the user (--data),
        of the run's kind and dimension. run.trained_on keeps the name config.json gives."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UnnoiseError(f"run folder {folder} does not exist")
        config, cfg = read_config(folder)
        _, cfg, net = load_folder(folder, cfg, config)
        trained_on = cfg.data
        models = "text" if cfg.alphabet is not None else "images" if cfg.size is not None else "points"
        if data_path is not None and data.kind(data_path) != models:
            raise UnnoiseError(f"--data {data_path} is {data.kind(data_path)}, but {folder} models {models}")
        cfg.data = data.confined(cfg.data, folder) if data_path is None else data_path
        units = None if models != "points" else read_units(config, cfg.dim or 2, folder / "config.json")
        run = cls(folder, cfg, net, int(config["step"]), int(config["num_classes"]), units)
        run.trained_on = trained_on
        if data_path is not None and models == "text" and run.dataset.alphabet != cfg.alphabet:
            raise UnnoiseError(f"--data {data_path} holds other characters than the text {folder} was trained on")
        if data_path is not None and models == "points" and run.dataset.x.shape[1] != run.shape[0]:
            raise UnnoiseError(
                f"--data {data_path} has {run.dataset.x.shape[1]} numbers per point, but {folder} models {run.shape[0]}"
            )
        return run

    @property
    def default_sampler(self):
        """The sampler a draw uses when none is named (the family's: dpmpp_2m for points, dpmpp_2m_sde for
        images, euler from a non-Gaussian source; None for token runs)."""
        return self.family.default_sampler(self)

    def model(self, y=None, clip=True):
        """The denoiser samplers call: (x, t) -> (x0, eps), in model units.

        clip: clamp the x0 estimate to the training data's range and recompute eps from it, as
        diffusers' `clip_sample` does for images in [-1, 1]. It stops a rare tail draw of x_T, on
        which the network extrapolates, from running away (seen with eps-prediction at t = 999).
        """
        low, high = (self.low, self.high) if clip else (None, None)
        return denoiser(self.net, self.path, self.cfg.prediction, y, low, high)

    @functools.cached_property
    def source(self):
        """Where the flow starts (source.py): N(0, I), or a pool of points stored in the run folder."""
        return sources.of_run(self)

    def initial(self, noise):
        """x_T for the samples `noise` draws: N(0, I) scaled to the prior's std for unit-variance data
        (1 on VP paths, sigma_max ~80 on EDM's); or the run's non-Gaussian source (flow, t = 1)."""
        path = self.path
        if self.cfg.source != sources.GAUSSIAN:
            return self.source.initial(noise)
        std = float((path.alpha(path.t_max) ** 2 + path.sigma(path.t_max) ** 2).sqrt())
        return noise.initial(self.shape) * std

    def sample(
        self,
        n=2000,
        sampler=None,
        nfe=None,
        seed=0,
        eta=None,
        spacing=None,
        batch_size=1000,
        callback=None,
        progress=False,
        clip=True,
        label=None,
        guidance=1.0,
        first=0,
        guide=None,
        **options,
    ):
        """n samples in data units, (n, D) points or (n, C, H, W) images in [0, 1]; sample i depends only
        on (seed, i), not on the batch size. The run's family draws them (families/*.sample).

        sampler (default_sampler), nfe (the sampler's default: 20 for dpmpp_2m, 30 for dpmpp_2m_sde, else 50), eta,
        spacing: the continuous families' sampler settings.
        options go to the sampler (eta, s_churn, ...), or for token runs (ar, var) are temperature, top_k,
        top_p, guidance_ramp; callback(i, t, x, x0) follows each network evaluation (token runs:
        callback(level, tokens so far)). clip clamps the x0 estimate to the training data's range (as
        diffusers' clip_sample does). label: class to draw (conditional runs); guidance: classifier-free
        guidance weight w (guidance.py; on logits for token runs). guide: a weaker Run of the same data to guide
        by in place of the unconditional model (autoguidance, Karras et al. 2024). first: draw samples
        first..first+n-1 of the seed's sequence (how processes under torchrun share one request: dist.sample).
        """
        n, batch_size = bounded("n", n), bounded("batch-size", batch_size)
        if nfe is not None:
            nfe = bounded("nfe", nfe)
        return self.family.sample(
            self,
            n,
            seed,
            label=label,
            guidance=guidance,
            batch_size=batch_size,
            callback=callback,
            progress=progress,
            sampler=sampler,
            nfe=nfe,
            eta=eta,
            spacing=spacing,
            clip=clip,
            first=first,
            guide=guide,
            **options,
        )


def denoiser(net, path, prediction, y=None, low=None, high=None):
    """(x, t) -> (x0, eps), the denoiser every sampler calls, for a net that predicts `prediction` on path.

    low, high (tensors): clamp the x0 estimate to them and recompute eps from it (Run.model's clip)."""

    def denoise(x, t):
        t_batch = torch.full((x.shape[0],), float(t), dtype=torch.float64)
        with torch.no_grad():
            out = net(path.net_input(x, t_batch), path.net_time(t_batch), y)
        x0, eps = path.to_x0_eps(prediction, out, x, t)
        if low is not None:
            x0 = torch.maximum(torch.minimum(x0, high), low)
            eps = (x - path.alpha(t).to(x.dtype) * x0) / path.sigma(t).to(x.dtype)
        return x0, eps

    return denoise
