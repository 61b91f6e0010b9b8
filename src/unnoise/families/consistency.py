"""Consistency models (Song, Dhariwal, Chen & Sutskever 2023): a net that maps any point of a trajectory to its end.

The consistency function is the path's x0 estimate, f(x_t, t) = x0(net(x_t, t)) (for velocity on the straight
path x_t - t net(x_t, t)), so f(x, 0) = x by construction (the paper's skip parameterisation, eq. 5). Training
pulls f at t_{n+1} towards f at the neighbouring t_n of a fixed grid of N steps (eq. 7-10):
    L = || f(x_{t_{n+1}}, t_{n+1}) - sg f(x_{t_n}, t_n) ||^2,
x_{t_n} from one DDIM (Euler) step of a teacher's probability-flow ODE (distillation, --teacher RUN), or from the
same x0 and noise as x_{t_{n+1}} (consistency training from scratch); the target is the online net without its
gradient, as improved CT does (Song & Dhariwal 2023). Multistep sampling (Algorithm 1): denoise to f, add fresh
noise at the next time, repeat.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import samplers
from ..errors import UnnoiseError
from .base import Stage
from .continuous import Continuous
from .continuous import sample as sample_path

GRID = 8  # N: the fixed time grid consistency is trained on
TEACHERS = ("diffusion", "flow")


def consistency_step(model, x, ts, path, noise, callback=None):
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1): x0 = f(x, t); x = alpha_s x0 + sigma_s z."""
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        s = ts[i + 1]
        x = path.add_noise(x0, noise(x0), s) if path.sigma(s) > 0 else x0
        if callback:
            callback(i, ts[i], x, x0)
    return x


SAMPLER = samplers.Sampler(consistency_step, stochastic=True, default_nfe=2)


def grid_times(n, generator, t_max=1.0):
    """(t_{n+1}, t_n) of a uniform N-step grid on [0, t_max], n uniform."""
    k = torch.randint(1, GRID + 1, (n,), generator=generator).double()
    return (k / GRID * t_max).float(), ((k - 1) / GRID * t_max).float()


def x0_of(net, path, prediction, x, t, y):
    """The consistency function: the path's x0 estimate from the net at (x, t)."""
    out = net(path.net_input(x, t), path.net_time(t).to(x.device), y)
    return path.to_x0_eps(prediction, out, x, t)[0]


def consistency_loss(net, path, prediction, x0, eps, t, s, y=None, teacher=None):
    """||f(x_t, t) - sg f(x_s, s)||^2, x_s one teacher DDIM step from x_t (distillation) or on the same pair (training)."""
    bare = getattr(net, "module", net)
    x_t = path.add_noise(x0, eps, t)
    with torch.no_grad():
        if teacher is None:
            x_s = path.add_noise(x0, eps, s)
        else:
            net_t, prediction_t = teacher
            out = net_t(path.net_input(x_t, t), path.net_time(t), y)
            x0_hat, eps_hat = path.to_x0_eps(prediction_t, out, x_t, t)
            x_s = path.add_noise(x0_hat, eps_hat, s)
        target = x0_of(bare, path, prediction, x_s, s, y)
    return F.mse_loss(x0_of(net, path, prediction, x_t, t, y), target)


@dataclass(frozen=True)
class Consistency(Continuous):
    schedule: str = "rectified"
    prediction: str = "velocity"
    schedules: tuple = ("rectified", "vp-cosine")
    predictions: tuple = ("velocity", "v")
    options: tuple = ("sampler", "nfe", "clip")

    def check(self, cfg, kind):
        super().check(cfg, kind)
        if cfg.coupling != "independent" or cfg.source != "gaussian":
            raise UnnoiseError("--family consistency trains on independent Gaussian noise (no --coupling, --source)")
        if (cfg.schedule, cfg.prediction) not in (("rectified", "velocity"), ("vp-cosine", "v")):
            raise UnnoiseError(
                f"--family consistency takes velocity on the rectified path or v on vp-cosine, not "
                f"{cfg.prediction} on {cfg.schedule}"
            )

    def requires(self, cfg):
        if cfg.teacher is None:
            return {}
        return {
            "teacher": Stage(
                {}, pin="teacher_hash", check=functools.partial(check_teacher, student=cfg), given=cfg.teacher
            )
        }

    def build(self, cfg, num_classes, parts=None):
        net = super().build(cfg, num_classes, parts)
        if parts and "teacher" in parts:
            teacher = parts["teacher"]
            if shapes(teacher) == shapes(net):  # start from the teacher, as the paper does (Section 6)
                net.load_state_dict(teacher.state_dict())
            net.__dict__["teacher"] = (teacher, cfg.prediction)  # used, not trained or saved
        return net

    def draw(self, cfg, rows, generator, parts=None):
        x0 = rows["x0"]
        t, s = grid_times(len(x0), generator, self.path(cfg).t_max)
        return {"x0": x0, "eps": torch.randn(x0.shape, generator=generator), "t": t, "s": s}

    def loss(self, net, cfg, rows, y, generator):
        teacher = getattr(getattr(net, "module", net), "teacher", None)
        path = self.path(cfg)
        return consistency_loss(net, path, cfg.prediction, rows["x0"], rows["eps"], rows["t"], rows["s"], y, teacher)

    def describe(self, cfg, net):
        how = f"distilled from {cfg.teacher}" if cfg.teacher else "trained from scratch"
        return f"{how}, {cfg.prediction} on {cfg.schedule}, {GRID}-step grid"

    def default_sampler(self, run):
        return "consistency"

    def sampler_name(self, run, sampler=None):
        return sampler or "consistency"

    def role(self, run):
        return None

    def sampler_options(self, sampler=None, nfe=None):
        """Its own sampler at nfe, whichever sampler the caller would use for other families."""
        return {} if nfe is None else {"nfe": nfe}

    def sample(self, run, n=2000, seed=0, guidance=1.0, sampler=None, nfe=None, **options):
        """Multistep consistency sampling at nfe steps (default 2), or any sampler of the core by name."""
        if sampler in (None, "consistency"):
            if options.get("eta") not in (None, 0) or options.get("s_churn"):
                raise UnnoiseError("consistency sampling draws fresh noise each step; it takes no --eta or --s-churn")
            options = {k: v for k, v in options.items() if k not in ("eta", "s_churn")}
            return sample_path(run, n, seed, w=guidance, sampler=SAMPLER, nfe=nfe or SAMPLER.default_nfe, **options)
        return sample_path(run, n, seed, w=guidance, sampler=sampler, nfe=nfe, **options)


def shapes(net):
    return {k: v.shape for k, v in net.state_dict().items()}


def check_teacher(folder, cfg, net, student):
    """Refuse a teacher that is not a diffusion or flow run of the student's data; the student takes its path."""
    if cfg is None:
        raise UnnoiseError(
            f"--teacher {folder}: not a run (no config.json); train one with unnoise train --family flow"
        )
    if cfg.family not in TEACHERS:
        raise UnnoiseError(f"--teacher {folder}: a {cfg.family} run; distil a {' or '.join(TEACHERS)} run")
    if (cfg.data, cfg.size, cfg.conditional) != (student.data, student.size, student.conditional):
        raise UnnoiseError(
            f"--teacher {folder} models {cfg.data} (size {cfg.size}, conditional {cfg.conditional}), but this run "
            f"models {student.data} (size {student.size}, conditional {student.conditional})"
        )
    if (cfg.schedule, cfg.prediction) != (student.schedule, student.prediction):
        raise UnnoiseError(
            f"--teacher {folder} predicts {cfg.prediction} on {cfg.schedule}; distil it with "
            f"--schedule {cfg.schedule} --prediction {cfg.prediction}"
        )


CONSISTENCY = Consistency(
    "consistency", "consistency models: training, or distillation from --teacher RUN (Song et al. 2023)"
)
