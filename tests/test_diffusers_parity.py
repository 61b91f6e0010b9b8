"""unnoise's samplers against diffusers' schedulers, step by step, to float precision.

Both sides are driven by the same analytic fake network and the same injected noise (diffusers'
`randn_tensor` is patched to hand out the draws unnoise's `noise(x)` gets), and every network
evaluation's new sample and x0 estimate must agree to 1e-5. Schedulers that step in sigma / alpha
(Euler, Heun, ...) hold x / alpha, so unnoise's x is divided by alpha before comparing.
"""

import importlib

import diffusers
import pytest
import torch

from unnoise.paths import make_path
from unnoise.samplers import SAMPLERS, timesteps
from unnoise.schedules import sigma_ratio

pytestmark = pytest.mark.slow

TOL = dict(rtol=1e-5, atol=1e-5)


def close(mine, yours, what):
    """Agreement to 1e-5, relative to the largest entry where that exceeds 1 (x0 = x / alpha reaches 1e4
    at the end of squaredcos_cap_v2, where float32 itself only carries about 1e-3 absolute)."""
    scale = max(1.0, yours.abs().max().item())
    torch.testing.assert_close(mine, yours, rtol=1e-5, atol=1e-5 * scale, msg=lambda m: f"{what}\n{m}")


PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
BETAS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012), "squaredcos_cap_v2": (1e-4, 0.02)}
OURS = {"squaredcos_cap_v2": "cosine"}


def crossed(first, second, *cycled):
    """Every (first, second) pair, with each further axis cycling along: each value is covered, fast."""
    pairs = [(a, b) for a in first for b in second]
    return [(a, b) + tuple(axis[k % len(axis)] for axis in cycled) for k, (a, b) in enumerate(pairs)]


def fake_net(x, time):
    """An analytic 'network' of a point and a time in about [0, 1]: smooth, nonlinear in both. (B, 2)"""
    return torch.tanh(1.3 * x + 0.7 * time) * (0.5 + time) + 0.3 * x.flip(-1) - 0.2 * time


class Draws:
    """The same sequence of N(0, I) draws for both sides, handed out in order."""

    def __init__(self, shape, n=200):
        g = torch.Generator().manual_seed(1)
        self.draws, self.i = [torch.randn(shape, generator=g) for _ in range(n)], 0

    def __call__(self, *args, **kwargs):
        self.i += 1
        return self.draws[self.i - 1].clone()


def ours(sampler, path, prediction, ts, x, time_of, net_time=None, **options):
    """unnoise's sampler on the fake net: a list of (t, x, x0), one per network evaluation."""

    def model(x, t):
        out = fake_net(path.net_input(x, t), time_of(t) if net_time is None else net_time(t))
        return path.to_x0_eps(prediction, out, x, t)

    log = []
    SAMPLERS[sampler](
        model, x, ts, path, Draws(x.shape), callback=lambda i, t, x, x0: log.append((t, x, x0)), **options
    )
    return log


def theirs(scheduler, sample, time_of, monkeypatch, x0_of=None, **step_kw):
    """diffusers' denoising loop over the scheduler: a list of (prev_sample, x0), one per step call."""
    module = importlib.import_module(type(scheduler).__module__)
    monkeypatch.setattr(module, "randn_tensor", Draws(sample.shape), raising=False)
    log = []
    for t in scheduler.timesteps:
        scale_input = getattr(scheduler, "scale_model_input", None)  # flow-match schedulers have none
        out = fake_net(scale_input(sample, t) if scale_input else sample, time_of(t))
        sigma = scheduler.sigmas[scheduler.step_index or 0] if x0_of else None
        step = scheduler.step(out, t, sample, **step_kw)
        x0 = x0_of(scheduler, sample, out, sigma) if x0_of else step.pred_original_sample
        sample = step.prev_sample
        log.append((sample, x0))
    return log


def assert_agree(mine, yours, scale=None):
    """Every evaluation: unnoise's x (divided by `scale(t_next)` for sigma/alpha schedulers) and x0 match."""
    assert len(mine) == len(yours)
    for k, ((_, x, x0), (prev, their_x0)) in enumerate(zip(mine, yours)):
        mine_x = x if scale is None else x / scale(k)
        close(mine_x, prev, f"evaluation {k}: sample differs")
        close(x0, their_x0, f"evaluation {k}: x0 differs")


def start(n=64):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


def discrete(schedule):
    start_, end = BETAS[schedule]
    return make_path(OURS.get(schedule, schedule), beta_start=start_, beta_end=end), dict(
        beta_schedule=schedule, beta_start=start_, beta_end=end, num_train_timesteps=1000
    )


def per_1000(t):
    return float(t) / 1000


# DDPM and DDIM: same x (variance preserving), same integer timesteps.


@pytest.mark.parametrize(
    "schedule,prediction,spacing", crossed(list(BETAS), list(PREDICTIONS), ["leading", "trailing", "linspace"])
)
def test_ddpm(schedule, prediction, spacing, monkeypatch):
    path, cfg = discrete(schedule)
    ts = timesteps(path, 10, spacing)
    sched = diffusers.DDPMScheduler(**cfg, prediction_type=prediction, clip_sample=False, variance_type="fixed_small")
    sched.set_timesteps(timesteps=[int(t) for t in ts[:-1]])  # custom timesteps: prev_t is the next grid point
    x = start()
    assert_agree(ours("ddpm", path, PREDICTIONS[prediction], ts, x, per_1000), theirs(sched, x, per_1000, monkeypatch))


def test_ddpm_sigmoid_betas(monkeypatch):
    path = make_path("sigmoid")
    ts = timesteps(path, 20, "trailing")
    sched = diffusers.DDPMScheduler(beta_schedule="sigmoid", clip_sample=False, timestep_spacing="trailing")
    sched.set_timesteps(20)
    x = start()
    assert_agree(ours("ddpm", path, "eps", ts, x, per_1000), theirs(sched, x, per_1000, monkeypatch))


def float32_degenerate(schedule, spacing, noisy):
    """squaredcos_cap_v2 reaches sigma / alpha = 2e4 at t = 999: there diffusers' float32 arithmetic cancels
    (DDIM's sqrt(1 - alpha_bar_prev - std^2) drops below float32's resolution; Euler-type schedulers hold
    x / alpha ~ 2e4, whose float32 spacing is 2e-3), so on that schedule the noisy DDIM and every
    sigma / alpha scheduler are compared from t = 900 (leading spacing)."""
    return schedule == "squaredcos_cap_v2" and spacing == "trailing" and noisy


@pytest.mark.parametrize(
    "schedule,prediction,spacing,eta", crossed(list(BETAS), list(PREDICTIONS), ["leading", "trailing"], [0.0, 1.0, 0.3])
)
def test_ddim(schedule, prediction, spacing, eta, monkeypatch):
    if float32_degenerate(schedule, spacing, eta > 0):
        spacing = "leading"
    path, cfg = discrete(schedule)
    ts = timesteps(path, 10, spacing)
    sched = diffusers.DDIMScheduler(
        **cfg, prediction_type=prediction, clip_sample=False, set_alpha_to_one=True, timestep_spacing=spacing
    )
    sched.set_timesteps(10)
    assert sched.timesteps.tolist() == ts[:-1].tolist()
    x = start()
    assert_agree(
        ours("ddim", path, PREDICTIONS[prediction], ts, x, per_1000, eta=eta),
        theirs(sched, x, per_1000, monkeypatch, eta=eta),
    )


def test_ddim_linspace_shows_diffusers_previous_timestep_rule(monkeypatch):
    """diffusers' DDIM steps from t to t - T // n, whatever the grid: with linspace spacing it evaluates at
    888 after stepping to 899. unnoise steps along its grid (999 -> 888): the first step differs, and
    equals unnoise's step on the two-point grid diffusers actually takes."""
    path, cfg = discrete("linear")
    ts = timesteps(path, 10, "linspace")
    sched = diffusers.DDIMScheduler(**cfg, clip_sample=False, timestep_spacing="linspace")
    sched.set_timesteps(10)
    assert ts[:3].tolist() == sched.timesteps[:3].tolist() == [999, 888, 777]
    x = start()
    first_theirs = theirs(sched, x, per_1000, monkeypatch)[0][0]
    first_ours = ours("ddim", path, "eps", ts, x, per_1000)[0][1]
    assert (first_ours - first_theirs).abs().max() > 1e-2  # a real difference
    quirk = ours("ddim", path, "eps", torch.tensor([999.0, 899.0]), x, per_1000)[0][1]
    torch.testing.assert_close(quirk, first_theirs, **TOL)


# diffusers' DDIM steps from t to t - T // n (its `prev_timestep`), not to the next timestep of its own grid
# (diffusers issue #12633). On the trailing grid the two agree exactly when n divides T; unnoise steps along
# the grid at every n. docs/diffusers.md states this.


def ddim_lands_on_its_grid(sched, ts):
    """Whether diffusers' rule t - T // n reaches each next point of the grid ts (the last step: any t < 0)."""
    gap = sched.config.num_train_timesteps // sched.num_inference_steps
    return all(t - gap == s or (t - gap < 0 and s < 0) for t, s in zip(ts.tolist(), ts[1:].tolist()))


def test_ddim_trailing_lands_on_its_grid_exactly_when_the_nfe_divides_1000():
    path, cfg = discrete("scaled_linear")
    sched = diffusers.DDIMScheduler(**cfg, timestep_spacing="trailing")
    on_grid = []
    for nfe in range(1, 1001):
        sched.set_timesteps(nfe)
        ts = timesteps(path, nfe, "trailing")
        if sched.timesteps.tolist() == ts[:-1].tolist() and ddim_lands_on_its_grid(sched, ts):
            on_grid.append(nfe)
    assert on_grid == [n for n in range(1, 1001) if 1000 % n == 0]  # 1, 2, 4, 5, 8, 10, 20, 25, 40, ..., 1000


@pytest.mark.parametrize("prediction,nfe", [("v_prediction", 25), ("epsilon", 40), ("sample", 20)])
def test_ddim_trailing_agrees_with_diffusers_own_loop_when_the_nfe_divides_1000(prediction, nfe, monkeypatch):
    path, cfg = discrete("scaled_linear")
    ts = timesteps(path, nfe, "trailing")
    sched = diffusers.DDIMScheduler(
        **cfg, prediction_type=prediction, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"
    )
    sched.set_timesteps(nfe)
    assert sched.timesteps.tolist() == ts[:-1].tolist() and ddim_lands_on_its_grid(sched, ts)
    x = start()
    assert_agree(ours("ddim", path, PREDICTIONS[prediction], ts, x, per_1000), theirs(sched, x, per_1000, monkeypatch))


class OnTheGrid:
    """diffusers' own DDIM step, landing on the next grid point: its step() goes to t - T // num_inference_steps,
    so for each call num_inference_steps is set to a count whose T // count is the grid's gap (asserted)."""

    def __init__(self, sched, ts):
        self.sched, self.next = sched, dict(zip(ts[:-1].tolist(), ts[1:].tolist()))

    def step(self, out, t, sample, **kw):
        T, gap = self.sched.config.num_train_timesteps, int(t) - int(self.next[float(t)])
        count, self.sched.num_inference_steps = self.sched.num_inference_steps, T // gap
        assert T // self.sched.num_inference_steps == gap, f"no count gives the gap {gap}"
        try:
            return self.sched.step(out, t, sample, **kw)
        finally:
            self.sched.num_inference_steps = count

    def __getattr__(self, name):
        return getattr(self.sched, name)


@pytest.mark.parametrize("prediction", list(PREDICTIONS))
def test_ddim_trailing_at_30_nfe_is_diffusers_step_on_the_grid_not_diffusers_loop(prediction, monkeypatch):
    """30 does not divide 1000: the trailing grid is 999, 966, 932, 899, ... (gaps 33 and 34), diffusers' step
    always goes 33 down (966 -> 933, then evaluates at 932). unnoise equals diffusers' own step sent to the
    grid's next point, to 1e-5 at every evaluation; diffusers' own loop differs. With this fake network its
    final sample is off by 5.5e-3 (x0), 6.7e-3 (v) and 3.1e-2 (eps); with trained moons runs (docs/diffusers.md)
    by 3.5e-3 (v, scaled_linear) and 4.1e-3 (eps, linear), relative to the data's scale."""
    path, cfg = discrete("scaled_linear")
    ts = timesteps(path, 30, "trailing")
    sched = diffusers.DDIMScheduler(
        **cfg, prediction_type=prediction, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"
    )
    sched.set_timesteps(30)
    assert sched.timesteps.tolist() == ts[:-1].tolist()  # the same grid ...
    assert not ddim_lands_on_its_grid(sched, ts)  # ... which diffusers' rule leaves
    x = start()
    mine = ours("ddim", path, PREDICTIONS[prediction], ts, x, per_1000)
    assert_agree(mine, theirs(OnTheGrid(sched, ts), x, per_1000, monkeypatch))
    sched.set_timesteps(30)
    own_loop = theirs(sched, x, per_1000, monkeypatch)[-1][0]
    off = float((own_loop - mine[-1][1]).abs().max()) / max(1.0, float(mine[-1][1].abs().max()))
    assert off > 1e-3, off  # a real difference, a hundred times the tolerance


# Euler-family schedulers hold x / alpha and evaluate at sigma / alpha; x / alpha is compared.


def ve_scale(path, ts, stages=1):
    """alpha at the time each evaluation's new sample lives, to divide unnoise's x by."""
    nexts = [ts[i + 1] for i in range(len(ts) - 1) for _ in range(stages if i < len(ts) - 2 else 1)]
    return lambda k: float(path.alpha(nexts[k]))


def euler_like(cls, path, cfg, prediction, spacing, steps, **extra):
    """A diffusers Euler/Heun scheduler on our grid: integer spacings as custom timesteps, or Karras/exponential."""
    sigmas = {"karras": dict(use_karras_sigmas=True), "exponential": dict(use_exponential_sigmas=True)}.get(spacing, {})
    sched = cls(**cfg, prediction_type=prediction, **sigmas, **extra)
    if sigmas:
        sched.set_timesteps(steps)
    else:
        sched.set_timesteps(timesteps=[float(t) for t in timesteps(path, steps, spacing)[:-1]])
    return sched


@pytest.mark.parametrize(
    "prediction,spacing,schedule",
    crossed(list(PREDICTIONS), ["trailing", "linspace", "karras", "exponential"], ["linear", "scaled_linear"])
    + [("epsilon", "leading", "squaredcos_cap_v2")],
)
def test_euler(schedule, prediction, spacing, monkeypatch):
    path, cfg = discrete(schedule)
    ts = timesteps(path, 12, spacing)
    sched = euler_like(diffusers.EulerDiscreteScheduler, path, cfg, prediction, spacing, 12)
    torch.testing.assert_close(sched.sigmas[:-1].double(), sigma_ratio(path, ts[:-1]), rtol=2e-6, atol=0)
    x = start()
    assert_agree(
        ours("euler", path, PREDICTIONS[prediction], ts, x, per_1000),
        theirs(sched, x / path.alpha(ts[0]).float(), per_1000, monkeypatch),
        ve_scale(path, ts),
    )


@pytest.mark.parametrize(
    "schedule,prediction,spacing", crossed(list(BETAS), ["epsilon", "v_prediction"], ["leading", "trailing"])
)
def test_euler_ancestral(schedule, prediction, spacing, monkeypatch):
    if float32_degenerate(schedule, spacing, True):
        spacing = "leading"
    path, cfg = discrete(schedule)
    ts = timesteps(path, 10, spacing)
    sched = diffusers.EulerAncestralDiscreteScheduler(**cfg, prediction_type=prediction, timestep_spacing=spacing)
    sched.set_timesteps(10)
    x = start()
    assert_agree(
        ours("euler_ancestral", path, PREDICTIONS[prediction], ts, x, per_1000),
        theirs(sched, x / path.alpha(ts[0]).float(), per_1000, monkeypatch),
        ve_scale(path, ts),
    )


@pytest.mark.parametrize(
    "prediction,spacing,schedule",
    crossed(list(PREDICTIONS), ["trailing", "leading", "karras"], ["linear", "scaled_linear"]),
)
def test_heun(schedule, prediction, spacing, monkeypatch):
    path, cfg = discrete(schedule)
    ts = timesteps(path, 8, spacing)
    sched = euler_like(diffusers.HeunDiscreteScheduler, path, cfg, prediction, spacing, 8)
    x = start()
    mine = ours("heun", path, PREDICTIONS[prediction], ts, x, per_1000)
    assert len(mine) == 2 * 8 - 1
    assert_agree(mine, theirs(sched, x / path.alpha(ts[0]).float(), per_1000, monkeypatch), ve_scale(path, ts, 2))


# DPM-Solver++: diffusers keeps x (variance preserving) and the x0 estimates in model_outputs.


def dpm_x0(scheduler, sample, out, sigma):
    return scheduler.model_outputs[-1]


def rounded(t):
    """diffusers' DPMSolverMultistep feeds the network round(t) on Karras grids (its sigmas stay unrounded)."""
    return float(torch.as_tensor(t).round()) / 1000


@pytest.mark.parametrize(
    "prediction,spacing,sde,schedule",
    crossed(
        list(PREDICTIONS),
        ["trailing", "linspace", "karras"],
        [False, True],
        ["linear", "scaled_linear", "squaredcos_cap_v2"],
    )
    + [("epsilon", "karras", s, "scaled_linear") for s in (False, True)],
)
def test_dpmpp_2m(prediction, spacing, sde, schedule, monkeypatch):
    if spacing == "karras" and schedule == "squaredcos_cap_v2":
        schedule = "linear"  # diffusers truncates its Karras timesteps on squaredcos_cap_v2 (no rounding)
    path, cfg = discrete(schedule)
    steps = 12
    ts = timesteps(path, steps, spacing)
    sched = diffusers.DPMSolverMultistepScheduler(
        **cfg,
        prediction_type=prediction,
        solver_order=2,
        solver_type="midpoint",
        algorithm_type="sde-dpmsolver++" if sde else "dpmsolver++",
        use_karras_sigmas=spacing == "karras",
        timestep_spacing="trailing",
    )
    if spacing == "linspace":
        sched.set_timesteps(timesteps=[int(t) for t in ts[:-1]])
    else:
        sched.set_timesteps(steps)
    assert sched.timesteps.tolist() == ts[:-1].round().tolist()
    time_of = rounded if spacing == "karras" else per_1000
    x = start()
    assert_agree(
        ours("dpmpp_2m_sde" if sde else "dpmpp_2m", path, PREDICTIONS[prediction], ts, x, time_of),
        theirs(sched, x, time_of, monkeypatch, x0_of=dpm_x0),
    )


def test_dpmpp_2m_lower_order_final_on_long_grids(monkeypatch):
    """20 steps: diffusers keeps order 2 until the last step, whose sigma is zero (first order, x = x0)."""
    path, cfg = discrete("linear")
    ts = timesteps(path, 20, "trailing")
    sched = diffusers.DPMSolverMultistepScheduler(**cfg, solver_order=2, timestep_spacing="trailing")
    sched.set_timesteps(20)
    x = start()
    assert_agree(ours("dpmpp_2m", path, "eps", ts, x, per_1000), theirs(sched, x, per_1000, monkeypatch, x0_of=dpm_x0))


@pytest.mark.parametrize(
    "prediction,spacing,schedule", crossed(list(PREDICTIONS), ["trailing", "karras"], ["linear", "scaled_linear"])
)
def test_dpmpp_3m(prediction, spacing, schedule, monkeypatch):
    """20 steps: diffusers ramps the order 1, 2 (midpoint), 3, ..., 3 and takes the last step to sigma 0 as x0."""
    path, cfg = discrete(schedule)
    ts = timesteps(path, 20, spacing)
    sched = diffusers.DPMSolverMultistepScheduler(
        **cfg,
        prediction_type=prediction,
        solver_order=3,
        use_karras_sigmas=spacing == "karras",
        timestep_spacing="trailing",
    )
    sched.set_timesteps(20)
    time_of = rounded if spacing == "karras" else per_1000
    x = start()
    assert_agree(
        ours("dpmpp_3m", path, PREDICTIONS[prediction], ts, x, time_of),
        theirs(sched, x, time_of, monkeypatch, x0_of=dpm_x0),
    )


def test_dpmpp_3m_sde_differs_from_diffusers_only_in_the_d2_weight(monkeypatch):
    """Third-order SDE steps: unnoise weighs D2 by -phi3 = (1 - e^-2h - 2h) / (2h)^2 + 1/2, which vanishes as
    h -> 0 like the ODE's weight; diffusers writes - 1/2. Order 1 and 2 steps agree; the third differs by
    exactly alpha_t D2."""
    path, cfg = discrete("linear")
    ts = timesteps(path, 20, "trailing")
    sched = diffusers.DPMSolverMultistepScheduler(
        **cfg, solver_order=3, algorithm_type="sde-dpmsolver++", timestep_spacing="trailing"
    )
    sched.set_timesteps(20)
    x = start()
    mine, yours = (
        ours("dpmpp_3m_sde", path, "eps", ts, x, per_1000),
        theirs(sched, x, per_1000, monkeypatch, x0_of=dpm_x0),
    )
    assert_agree(mine[:2], yours[:2])
    lam = [float(path.log_snr(t)) / 2 for t in ts[:4]]
    _h, r0, r1 = lam[3] - lam[2], (lam[2] - lam[1]) / (lam[3] - lam[2]), (lam[1] - lam[0]) / (lam[3] - lam[2])
    (_, _, x0_0), (_, _, x0_1), (_, x_2, x0_2) = mine[:3]
    d0, d1 = (x0_2 - x0_1) / r0, (x0_1 - x0_0) / r1
    expected = yours[2][0] + float(path.alpha(ts[3])) * (d0 - d1) / (r0 + r1)
    close(x_2, expected, "third step: unnoise = diffusers + alpha_t D2")
    assert (x_2 - yours[2][0]).abs().max() > 1e-4  # a real difference, not rounding


# Flow matching: x and t are the rectified path's own; the network sees t * 1000.


def flow_x0(scheduler, sample, out, sigma):
    return sample - sigma * out  # x0 = x - t v on alpha = 1 - t, sigma = t


@pytest.mark.parametrize("spacing", ["trailing", "karras", "exponential"])
def test_flow_match_euler(spacing, monkeypatch):
    path = make_path("rectified")
    ts = timesteps(path, 10, spacing)
    karras, expo = spacing == "karras", spacing == "exponential"
    sched = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0, use_karras_sigmas=karras, use_exponential_sigmas=expo)
    if karras or expo:
        sched.set_timesteps(10)
    else:
        sched.set_timesteps(sigmas=[float(t) for t in ts[:-1]])
    x = start()
    assert_agree(
        ours("euler", path, "velocity", ts, x, lambda t: float(t)),
        theirs(sched, x, per_1000, monkeypatch, x0_of=flow_x0),
    )


def test_flow_match_euler_step_is_x_plus_dt_velocity():
    path = make_path("rectified")
    x, ts = start(), torch.tensor([0.7, 0.4], dtype=torch.float64)
    ((_, x_next, _),) = ours("euler", path, "velocity", ts, x, lambda t: float(t))
    torch.testing.assert_close(x_next, x + (0.4 - 0.7) * fake_net(x, 0.7), rtol=1e-6, atol=1e-6)


def test_flow_match_heun(monkeypatch):
    path = make_path("rectified")
    sched = diffusers.FlowMatchHeunDiscreteScheduler(shift=1.0)
    sched.set_timesteps(8)
    ts = torch.cat([torch.linspace(1, 1e-3, 8, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    x = start()

    def heun_x0(scheduler, sample, out, sigma):
        return None

    mine = ours("heun", path, "velocity", ts, x, lambda t: float(t))
    yours = theirs(sched, x, per_1000, monkeypatch, x0_of=heun_x0)
    for k, ((_, x_k, _), (prev, _)) in enumerate(zip(mine, yours, strict=True)):
        torch.testing.assert_close(x_k, prev, **TOL, msg=lambda m: f"evaluation {k}\n{m}")  # noqa: B023 (called before the loop moves on)


# EDM: Karras sigmas on the variance-exploding path, preconditioned network (diffusers' "epsilon" is EDM's F).


@pytest.mark.parametrize("spacing", ["karras", "exponential"])
def test_edm_euler(spacing, monkeypatch):
    path = make_path("edm")
    ts = timesteps(path, 16, spacing)
    sched = diffusers.EDMEulerScheduler(
        sigma_schedule="karras" if spacing == "karras" else "exponential", prediction_type="epsilon", sigma_data=0.5
    )
    sched.set_timesteps(16)
    torch.testing.assert_close(sched.sigmas[:-1].double(), ts[:-1], rtol=1e-6, atol=0)
    x = start() * 80
    assert_agree(
        ours("euler", path, "edm", ts, x, None, net_time=lambda t: float(path.net_time(t))),
        theirs(sched, x, lambda t: float(t), monkeypatch),
    )


@pytest.mark.parametrize(
    "prediction,spacing,schedule",
    crossed(list(PREDICTIONS), ["trailing", "karras"], ["linear", "scaled_linear", "squaredcos_cap_v2"]),
)
def test_unipc_bh2(prediction, spacing, schedule, monkeypatch):
    if spacing == "karras" and schedule == "squaredcos_cap_v2":
        schedule = "linear"
    path, cfg = discrete(schedule)
    ts = timesteps(path, 12, spacing)
    sched = diffusers.UniPCMultistepScheduler(
        **cfg,
        prediction_type=prediction,
        solver_order=2,
        solver_type="bh2",
        predict_x0=True,
        use_karras_sigmas=spacing == "karras",
        timestep_spacing="trailing",
    )
    sched.set_timesteps(12)
    assert sched.timesteps.tolist() == ts[:-1].round().tolist()
    time_of = rounded if spacing == "karras" else per_1000
    x = start()
    assert_agree(
        ours("unipc", path, PREDICTIONS[prediction], ts, x, time_of),
        theirs(sched, x, time_of, monkeypatch, x0_of=dpm_x0),
    )


def test_dpmpp_karras_shows_diffusers_rounded_network_time(monkeypatch):
    """diffusers feeds the network round(t) on Karras grids; unnoise feeds the fractional t whose sigma/alpha is
    the Karras sigma. Without the rounding in the fake network the two disagree from the first step."""
    path, cfg = discrete("linear")
    ts = timesteps(path, 12, "karras")
    assert (ts[:-1] - ts[:-1].round()).abs().max() > 0.1  # the grid is fractional
    sched = diffusers.DPMSolverMultistepScheduler(**cfg, solver_order=2, use_karras_sigmas=True)
    sched.set_timesteps(12)
    x = start()
    x0_theirs = theirs(sched, x, per_1000, monkeypatch, x0_of=dpm_x0)[1][1]  # second evaluation
    x0_ours = ours("dpmpp_2m", path, "eps", ts, x, per_1000)[1][2]
    assert (x0_ours - x0_theirs).abs().max() > 1e-3
