"""A trained run: config, EMA network, path and data units; and sampling from it."""

import functools
from pathlib import Path

import torch
from tqdm import tqdm

from . import data, families, samplers
from . import guidance as cfg_guidance
from . import source as sources
from .checkpoint import load_json, load_weights
from .config import TrainConfig
from .data import images
from .errors import UnnoiseError, bounded, positive_int
from .paths import make_path


def build_net(cfg, num_classes, folder=None):
    """The network a config describes (the family's build: MLP, U-Net, tokenizer or transformer)."""
    return families.of(cfg).build(cfg, num_classes, folder)


FORMAT, VERSION = "unnoise-run", 1  # config.json's "format" and "version": bump VERSION when the layout changes


def check_format(config, path):
    """Refuse a config.json that is not an unnoise run's, or whose format version this unnoise does not read."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UnnoiseError(f'{path} is not an unnoise run\'s config (no "format": "{FORMAT}")')
    version = config.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise UnnoiseError(
            f"{path} was written by a newer unnoise (format version {version}); this one reads "
            f"version {VERSION}: upgrade unnoise to load it"
        )
    if version != VERSION:
        raise UnnoiseError(
            f"{path} has format version {version!r}, which this unnoise does not read (it reads version {VERSION})"
        )


def run_config(cfg, dataset, step, net=None, seconds=None, timed=False):
    """What config.json holds (with a tokenizer's code use per scale, the training seconds so far, and
    whether they were a --seconds budget)."""
    config = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "train": cfg.to_dict(),
        "num_classes": dataset.num_classes,
    }
    if seconds is not None:
        config["train_seconds"] = round(float(seconds), 1)
    if timed:
        config["timed"] = True
    if hasattr(net, "summary"):
        config["codes"] = net.summary()
    if dataset.kind == "points":  # the map into model units, so sampling never needs the data
        config["units"] = {k: getattr(dataset, k).tolist() for k in UNITS}
    return config


UNITS = ("shift", "scale", "low", "high")


def read_units(config, dim, path):
    """config.json's units (four lists of dim finite floats, scale > 0) as tensors; None in a run saved before them."""
    units = config.get("units")
    if units is None:
        return None
    try:
        out = {k: torch.tensor([float(v) for v in units[k]], dtype=torch.float32) for k in UNITS}
    except (KeyError, TypeError, ValueError) as err:
        raise UnnoiseError(f"{path} has malformed units ({err})") from None
    if any(len(v) != dim or not torch.isfinite(v).all() for v in out.values()) or not (out["scale"] > 0).all():
        raise UnnoiseError(f"{path}: units must be {dim} finite numbers each, with scale > 0")
    return out


class Run:
    """A trained run folder, loaded for sampling: EMA weights in eval mode."""

    def __init__(self, folder, cfg, net, step, num_classes, units=None):
        self.folder, self.cfg, self.net, self.step = Path(folder), cfg, net.eval(), step
        self.num_classes, self.trained_on = num_classes, cfg.data
        self.family = families.of(cfg)
        self.path = None if cfg.discrete else make_path(cfg.schedule, sigma_data=cfg.sigma_data)
        self.images = cfg.size is not None
        self.shape = (cfg.channels, cfg.size, cfg.size) if self.images else (cfg.dim or 2,)
        if self.images:  # fixed units, so sampling needs no image folder: [0, 1] <-> [-1, 1]
            self.low, self.high = torch.tensor(-1.0), torch.tensor(1.0)
        else:  # points: the units config.json keeps (a run saved before them: its data's)
            units = units or {k: getattr(self.dataset, k) for k in UNITS}
            self.shift, self.scale, self.low, self.high = (units[k] for k in UNITS)

    @functools.cached_property
    def dataset(self):
        """The held-out split of the run's data (loaded on first use)."""
        return data.load(self.cfg.data, "heldout", size=self.cfg.size, channels=self.cfg.channels)

    def to_data(self, z):
        """Model units -> data units: 2D coordinates, or images in [0, 1]."""
        return (z * images.SCALE + images.SHIFT).clamp(0, 1) if self.images else z * self.scale + self.shift

    @classmethod
    def load(cls, folder, data_path=None):
        """The run in folder. Its config's data is followed only where it is a built-in set or the run's own copy
        of a point file (data.COPY); data_path: the data to measure against instead, named by the user (--data),
        of the run's kind and dimension. run.trained_on keeps the name config.json gives."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UnnoiseError(f"run folder {folder} does not exist")
        config = load_json(folder / "config.json")
        check_format(config, folder / "config.json")
        try:
            cfg = TrainConfig.from_dict(config["train"])
            step, num_classes = int(config["step"]), int(config["num_classes"])
        except (KeyError, TypeError, ValueError) as err:
            raise UnnoiseError(f"{folder / 'config.json'} is not an unnoise run config ({err})") from None
        if cfg.tokens is not None:  # ar over tokens, var: a prior pinned to its tokenizer
            families.tokenizer.check_hash(cfg, folder)
        trained_on = cfg.data
        if data_path is not None and data.is_images(data_path) != (cfg.size is not None):
            raise UnnoiseError(
                f"--data {data_path} is {'images' if cfg.size is None else 'not images'}, but {folder} "
                f"models {'images' if cfg.size is not None else 'points'}"
            )
        cfg.data = data.confined(cfg.data, folder) if data_path is None else data_path
        units = None if cfg.size is not None else read_units(config, cfg.dim or 2, folder / "config.json")
        net = build_net(cfg, num_classes, folder)
        load_weights(net, folder / "model.safetensors")
        run = cls(folder, cfg, net, step, num_classes, units)
        run.trained_on = trained_on
        if data_path is not None and cfg.size is None and run.dataset.x.shape[1] != run.shape[0]:
            raise UnnoiseError(
                f"--data {data_path} has {run.dataset.x.shape[1]} numbers per point, but {folder} models {run.shape[0]}"
            )
        return run

    @property
    def default_sampler(self):
        """dpmpp_2m (DPM-Solver++(2M), Lu et al. 2022) at 20 NFE for points; its SDE form at 30 NFE for images;
        euler for a run with a non-Gaussian source.

        On every 2D set dpmpp_2m scored at or below ddpm at 50 NFE, at 40 % of the cost. On digits and MNIST the
        SDE at 30 NFE lowered the worst judge's FID and raised class accuracy in every run measured against
        dpmpp_2m at 20 (docs/performance.md, "Eighth round")."""
        if self.cfg.source != sources.GAUSSIAN:
            return sources.DEFAULT_SAMPLER
        return "dpmpp_2m_sde" if self.images else "dpmpp_2m"

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
        on (seed, i), not on the batch size.

        sampler (default_sampler: dpmpp_2m for points, dpmpp_2m_sde for images), nfe (default_nfe: 20 for
        dpmpp_2m, 30 for dpmpp_2m_sde, else 50), eta, spacing: the continuous
        families' sampler settings.
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
        if self.cfg.discrete:
            if guide is not None:
                cfg_guidance.check_guide(self, guide, label)
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
                first=first,
                **options,
            )
        sampler = sampler or self.default_sampler
        nfe = default_nfe(sampler) if nfe is None else nfe
        if self.cfg.source != sources.GAUSSIAN and (
            sampler in sources.STOCHASTIC or options.get("s_churn") or (eta or 0) > 0
        ):
            raise UnnoiseError(
                f"{self.folder} starts from the source {self.cfg.source}, not Gaussian noise: sample it "
                "with a deterministic sampler (euler, heun, midpoint, rk4, ddim with eta 0, dpmpp_2m, "
                "dpmpp_3m, unipc, dopri5), without churn"
            )
        for name in options:
            if name in families.tokens.OPTIONS and options[name] not in (None, False):
                raise UnnoiseError(
                    f"--{name.replace('_', '-')} is for token runs (ar, var); a {self.cfg.family} run "
                    f"samples with --sampler, --nfe, --eta, --spacing, --guidance"
                )
        options = {k: v for k, v in options.items() if k not in families.tokens.OPTIONS}
        cfg_guidance.check(self, label, guidance, guide)
        n, nfe, batch_size = (positive_int(k, v) for k, v in (("n", n), ("nfe", nfe), ("batch-size", batch_size)))
        step_fn = samplers.SAMPLERS[samplers.choose("sampler", sampler, tuple(samplers.SAMPLERS))]
        options = samplers.check_options(sampler, {**options, **({"eta": eta} if eta is not None else {})})
        steps = samplers.steps_for(sampler, nfe)
        ts = samplers.timesteps(self.path, steps, spacing or samplers.default_spacing(self.path, sampler))
        starts, end = range(first, first + n, batch_size), first + n
        per_batch = None if sampler == "dopri5" else samplers.nfe_of(sampler, steps)
        bar = tqdm(total=per_batch and len(starts) * per_batch, desc="sampling", disable=not progress, leave=False)

        def step_done(*args):
            bar.update()
            if callback:
                callback(*args)

        out = []
        for start in starts:
            noise = samplers.PerSampleNoise.for_range(seed, start, min(end, start + batch_size))
            x = self.initial(noise)
            model = cfg_guidance.model_for(self, label, guidance, start, start + len(x), clip, guide)
            out.append(step_fn(model, x, ts, self.path, noise, callback=step_done, **options))
        bar.close()
        return self.to_data(torch.cat(out))


def default_nfe(sampler):
    """Network evaluations per sample when none is asked for: 20 for the multistep solver dpmpp_2m, 30 for its SDE
    form (better than 50 on digits and MNIST), else 50."""
    return {"dpmpp_2m": 20, "dpmpp_2m_sde": 30}.get(sampler, 50)


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
