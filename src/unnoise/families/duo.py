"""Duo on text (Sahoo et al. 2025): uniform-state discrete diffusion, the argmax of Gaussian diffusion on one-hot
vectors.

w_t = a_t onehot(x) + s_t eps (a_t^2 + s_t^2 = 1: unnoise's variance-preserving path, on the V-dimensional one-hot
vector); z_t = argmax w_t is then uniform-state discrete diffusion, q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V,
with alpha_t = T(a_t) (Duo eq. 8, the Diffusion Transformation operator: P(argmax = x), rescaled). unnoise fixes the
discrete schedule alpha_t = 1 - t and draws the Gaussian latent at a_t = T^-1(alpha_t), so training goes through
the Gaussian path and its argmax.

Loss and reported bound: the continuous-time NELBO of uniform-state diffusion (UDLM, Schiff et al. 2025, the
bound Duo trains), the limit of D3PM's discrete-time bound (Austin et al. 2021) as its steps grow, with the reverse step
p(z_s | z_t) = q(z_s | z_t, x = x_hat(z_t)) (the test checks the limit against the KL of a short step). An earlier
loss, the discrete-time bound at 1,000 steps drawn one at a time, trained poorly: its last step is 1,000 x a
cross-entropy. Sampling: K ancestral steps of the same reverse step from uniform characters at t = 1.
"""

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..nets.transformer import Transformer
from .mdlm import stratified
from .text import TEXT, TextFamily, fixed
from .tokens import draw as inverse_cdf
from .tokens import filter_logits

T_SAMPLES = 4  # times drawn per held-out window in the reported bound
EPS = 1e-3  # times are drawn in [EPS, 1 - EPS]: the integrand is 0 / 0 at both ends


def argmax_alpha(r, V):
    """alpha = T(a) for r = a / s: P(argmax(a e_x + s eps) = x) = int phi(z) Phi(z + r)^(V-1) dz, rescaled so that
    q(z_t | x) = alpha onehot(x) + (1 - alpha) / V (Duo eq. 8): (R,) float64 -> (R,)."""
    z = torch.linspace(-12, 12, 4801, dtype=torch.float64)
    phi = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    inside = phi * torch.special.ndtr(z[None] + r[:, None]) ** (V - 1)  # (R, Z)
    p = torch.trapezoid(inside, z, dim=1)
    return (V * p - 1) / (V - 1)


@functools.cache
def _table(V):
    r = torch.linspace(0, 14, 7001, dtype=torch.float64)
    return r, argmax_alpha(r, V).cummax(0).values


def gaussian_scale(alpha, V):
    """a_t = T^-1(alpha_t): the one-hot's scale on the Gaussian path whose argmax keeps x with alpha (linear
    interpolation in a table of T): (...) -> (...)."""
    r, table = _table(V)
    i = torch.searchsorted(table, alpha.double().clamp(0, float(table[-1])).contiguous()).clamp(1, len(r) - 1)
    lo, hi = table[i - 1], table[i]
    w = ((alpha.double() - lo) / (hi - lo).clamp(min=1e-300)).clamp(0, 1)
    ratio = r[i - 1] + w * (r[i] - r[i - 1])  # a / s
    return ratio / torch.sqrt(1 + ratio**2)


def through_gaussian(x, t, eps):
    """z_t = argmax(a_t onehot(x) + s_t eps) with alpha_t = 1 - t: x (B, L), t (B,), eps (B, L, V) -> (B, L)."""
    V = eps.shape[-1]
    a = gaussian_scale(1 - t.double(), V).to(eps.dtype)[:, None, None]  # (B, 1, 1)
    w = a * F.one_hot(x, V).to(eps.dtype) + torch.sqrt(1 - a**2) * eps
    return w.argmax(-1)


def posterior(z, x_probs, t, s):
    """q(z_s | z_t, x) at alpha = 1 - t with a distribution x_probs over x put into the marginals, which are linear
    in it (Duo's and UDLM's reverse step; at a one-hot x, Bayes' rule): z (B, L) ids, x_probs (B, L, V), t and s
    (B,) or floats with s < t -> (B, L, V)."""
    V = x_probs.shape[-1]
    t, s = (torch.as_tensor(v, dtype=x_probs.dtype).reshape(-1, 1, 1) for v in (t, s))
    a_t, a_s = 1 - t, 1 - s
    a_ts = a_t / a_s
    keep = a_ts * F.one_hot(z, V).to(x_probs.dtype) + (1 - a_ts) / V  # q(z_t | z_s = j)
    p = keep * (a_s * x_probs + (1 - a_s) / V)  # times q(z_s = j | x)
    return p / p.sum(-1, keepdim=True)  # over q(z_t | x)


def integrand(log_probs, x, z, t):
    """The continuous-time NELBO's integrand per position at alpha_t = 1 - t, nats (UDLM, Schiff et al. 2025): the KL
    of a reverse step over its length dt as dt -> 0. From i = z, the truth moves to j != i at the rate
    r_j = x_bar_j / (V alpha x_bar_i), x_bar = V alpha onehot(x) + 1 - alpha, and the model at r_hat_j, the same of
    x_hat; the integrand is sum_j r_j log(r_j / r_hat_j) - r_j + r_hat_j, summed in closed form below (term2: the log
    part, term1: the rest; c = x_bar_j / x_bar_i for j != i = x). Zero at x_hat = onehot(x); both tested.
    log_probs (B, L, V) of x_hat; x, z (B, L) clean and noised ids; t (B,) -> (B, L)."""
    V = log_probs.shape[-1]
    a = (1 - t).to(log_probs.dtype)[:, None]  # (B, 1)
    bar = torch.log(V * a[..., None] * log_probs.exp() + (1 - a[..., None]))  # log xhat_bar (B, L, V)
    bar_z = bar.gather(-1, z[..., None])[..., 0]  # (B, L)
    bar_x = bar.gather(-1, x[..., None])[..., 0]
    same = (x == z).to(log_probs.dtype)
    c = (1 - a) / (V * a + 1 - a)
    term1 = V / ((1 - a) + V * a * same) - V / bar_z.exp()
    spread = bar.sum(-1) - V * bar_z  # sum_j log xhat_bar_j - V log xhat_bar_i
    term2 = same * (-c * spread + (V - 1) * c * c.log()) + (1 - same) * (
        -spread - V * a / (1 - a) * (bar_x - bar_z) - c.log() / c
    )
    return (term2 - term1) / (V * a)  # alpha' = -1


def continuous_nelbo(log_probs, x, t, eps):
    """The continuous-time bound's one-sample estimate per window at times t (B,), z_t drawn through the Gaussian
    path: log_probs(z, t) -> (B, L, V); x (B, L); eps (B, L, V) -> nats (B,)."""
    z = through_gaussian(x, t, eps)
    return integrand(log_probs(z, t), x, z, t).sum(1)


def log_probs_of(net, dtype=torch.float32):
    """The network's log p(x | z_t, t) over the characters: (z (B, L) ids, t (B,)) -> (B, L, V)."""
    return lambda z, t: F.log_softmax(net(z, None, t.float()).to(dtype), -1)


@dataclass(frozen=True)
class Uniform(TextFamily):
    """Duo on the one transformer, aligned and told the time t (uniform-state noise does not show it)."""

    infills: bool = True

    def build(self, cfg, num_classes, parts):
        levels = torch.zeros(cfg.context, dtype=torch.long)
        return Transformer(self.vocab(cfg), levels, cfg.width, cfg.depth, cfg.heads, aligned=True, timed=True)

    def draw(self, cfg, rows, generator, parts=None):
        """Each row's time (stratified over the batch, as MDLM's) and its Gaussian noise on the one-hot vectors."""
        B, L = rows["tokens"].shape
        t = EPS + (1 - 2 * EPS) * stratified(B, generator)
        return {**rows, "t": t.float(), "eps": torch.randn(B, L, self.vocab(cfg), generator=generator)}

    def loss(self, net, cfg, rows, y, generator):
        """The continuous-time NELBO per character, nats."""
        x = rows["tokens"]
        return continuous_nelbo(log_probs_of(net), x, rows["t"], rows["eps"]).mean() / x.shape[1]

    @torch.no_grad()
    def bits(self, run, windows, seed=0):
        generator = torch.Generator().manual_seed(seed)
        out = []
        for part in windows.split(64):
            W, L = part.shape
            rows = part.repeat_interleave(T_SAMPLES, 0)  # (W T, L)
            t = EPS + (1 - 2 * EPS) * torch.stack([stratified(T_SAMPLES, generator) for _ in range(W)]).flatten()
            eps = torch.randn(len(rows), L, self.vocab(run.cfg), generator=generator, dtype=torch.float64)
            nats = continuous_nelbo(log_probs_of(run.net, torch.float64), rows, t, eps)
            out.append(nats.view(W, T_SAMPLES).mean(1) / L / math.log(2))
        return torch.cat(out)

    def bound(self, run):
        return {
            "bits_per_char_kind": f"upper bound (continuous-time NELBO, {T_SAMPLES} stratified t per window)",
            "t_samples": T_SAMPLES,
        }

    def forward_passes(self, run, nfe=None):
        return nfe or run.cfg.context

    def sampler_options(self, sampler=None, nfe=None):
        return {} if nfe is None else {"nfe": nfe}

    def write(self, run, req, steps, uniforms, callback=None, progress=False):
        return denoise(run, req, steps, uniforms, callback, progress)


@torch.no_grad()
def denoise(run, req, steps, uniforms, callback=None, progress=False):
    """K ancestral steps from uniform characters: (B, length) ids. Fixed characters are drawn afresh from q(z_t | x)
    before each step (so the network sees them noised as it was trained), and set exactly at the end."""
    V, L, B = len(run.cfg.alphabet), run.cfg.context, len(uniforms.generators)
    known, values = fixed(req, L)
    z = (uniforms(L) * V).long().clamp(max=V - 1)  # (B, L): uniform at t = 1
    times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    for k in tqdm(range(steps), desc="denoising", disable=not progress, leave=False):
        t, s = float(times[k]), float(times[k + 1])
        u = uniforms(L, 2)  # (B, L, 2)
        if known.any():
            noised = inverse_cdf(posterior_of_clean(values, t, V).log().expand(B, L, V), u[..., 0])
            z = torch.where(known, noised, z)
        logits = run.net(z, None, torch.full((B,), t))  # (B, L, V)
        if callback:
            callback(k, z)
        x_hat = filter_logits(logits.double(), req.temperature, req.top_k, req.top_p).softmax(-1)
        p = posterior(z, x_hat, t, s)  # at s = 0 too: x_hat leaves out the evidence of z itself
        z = inverse_cdf(p.clamp(min=1e-300).log(), u[..., 1])
    z = torch.where(known, values, z)
    return z[:, : req.length]


def posterior_of_clean(values, t, V):
    """q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V for the fixed characters: (L, V)."""
    return (1 - t) * F.one_hot(values, V).double() + t / V


DUO = Uniform(
    "duo",
    "uniform-state diffusion on text (Duo): the argmax of Gaussian diffusion on one-hot characters",
    defaults=TEXT,
    order="unmasking",
)
