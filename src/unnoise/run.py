"""A trained run: config, EMA network, path and data units; and sampling from it."""

from pathlib import Path

import torch
from tqdm import tqdm

from . import data, guidance as cfg_guidance, samplers
from .checkpoint import load_json, load_weights
from .config import TrainConfig
from .errors import UnnoiseError, positive_int
from .nets import MLP
from .paths import make_path


def build_net(cfg, num_classes):
    """The network a config describes (an MLP for 2D points)."""
    return MLP(dim=2, width=cfg.width, depth=cfg.depth, num_classes=num_classes if cfg.conditional else 0)


def run_config(cfg, dataset, step):
    """What config.json holds."""
    return {"format": "unnoise-run", "version": 1, "step": step, "train": cfg.to_dict(),
            "num_classes": dataset.num_classes}


class Run:
    """A trained run folder, loaded for sampling: EMA weights in eval mode."""

    def __init__(self, folder, cfg, net, step, num_classes):
        self.folder, self.cfg, self.net, self.step = Path(folder), cfg, net.eval(), step
        self.num_classes = num_classes
        self.path = make_path(cfg.schedule)
        self.dataset = data.load(cfg.data, "heldout")

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        if not folder.is_dir():
            raise UnnoiseError(f"run folder {folder} does not exist")
        config = load_json(folder / "config.json")
        try:
            cfg = TrainConfig.from_dict(config["train"])
            step, num_classes = int(config["step"]), int(config["num_classes"])
        except (KeyError, TypeError, ValueError) as err:
            raise UnnoiseError(f"{folder / 'config.json'} is not an unnoise run config ({err})") from None
        net = build_net(cfg, num_classes)
        load_weights(net, folder / "model.safetensors")
        return cls(folder, cfg, net, step, num_classes)

    def model(self, y=None):
        """The denoiser samplers call: (x, t) -> (x0, eps), in model units."""
        def denoise(x, t):
            t_batch = torch.full((x.shape[0],), float(t), dtype=torch.float64)
            with torch.no_grad():
                out = self.net(x, self.path.net_time(t_batch), y)
            return self.path.to_x0_eps(self.cfg.prediction, out, x, t)
        return denoise

    def sample(self, n=2000, sampler="ddpm", nfe=50, seed=0, eta=0.0, spacing="trailing",
               batch_size=1000, callback=None, progress=False, label=None, guidance=1.0):
        """n samples in data units, (n, 2); sample i depends only on (seed, i), not on the batch size.

        label: class to draw (conditional runs); guidance: classifier-free guidance weight w (guidance.py).
        """
        cfg_guidance.check(self, label, guidance)
        n, nfe, batch_size = (positive_int(k, v) for k, v in (("n", n), ("nfe", nfe), ("batch-size", batch_size)))
        step_fn = samplers.SAMPLERS[samplers.choose("sampler", sampler, tuple(samplers.SAMPLERS))]
        options = {"eta": eta} if sampler == "ddim" else {}
        ts = samplers.timesteps(self.path, samplers.steps_for(sampler, nfe), spacing)
        starts = range(0, n, batch_size)
        bar = tqdm(total=len(starts) * (len(ts) - 1), desc="sampling", disable=not progress, leave=False)

        def step_done(*args):
            bar.update()
            if callback:
                callback(*args)
        out = []
        for start in starts:
            noise = samplers.PerSampleNoise.for_range(seed, start, min(n, start + batch_size))
            x = noise.initial((2,))
            model = cfg_guidance.model_for(self, label, guidance, start, start + len(x))
            out.append(step_fn(model, x, ts, self.path, noise, callback=step_done, **options))
        bar.close()
        return self.dataset.denormalize(torch.cat(out))
