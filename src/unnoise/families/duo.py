"""Duo on text (Sahoo et al. 2025): uniform-state discrete diffusion, the argmax of Gaussian diffusion on one-hot
vectors.

w_t = a_t onehot(x) + s_t eps (a_t^2 + s_t^2 = 1: unnoise's variance-preserving path, on the V-dimensional one-hot
vector); z_t = argmax w_t is then uniform-state discrete diffusion, q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V,
with alpha_t = T(a_t) (Duo eq. 8, the Diffusion Transformation operator: P(argmax = x), rescaled). unnoise fixes the
discrete schedule alpha_t = 1 - t and draws the Gaussian latent at a_t = T^-1(alpha_t), so training goes through
the Gaussian path and its argmax.

Loss and reported bound: the discrete-time NELBO of D3PM (Austin et al. 2021) at STEPS = 1000 steps, the sum over
steps of KL(q(z_s | z_t, x) || p(z_s | z_t)) with p(z_s | z_t) = sum_x p(x | z_t) q(z_s | z_t, x), drawn one step
at a time; an upper bound at any step count (its limit is the continuous-time bound of UDLM and Duo). Sampling:
K ancestral steps of the same posterior from uniform characters at t = 1.
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

STEPS = 1000  # the discrete-time bound's steps
T_SAMPLES = 4  # steps drawn per held-out window in the reported bound


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
    """p(z_s | z_t) = sum_x x_probs(x) q(z_s | z_t, x) for alpha = 1 - t (x_probs one-hot: the true posterior):
    z (B, L) ids, x_probs (B, L, V), t and s (B,) or floats with s < t -> (B, L, V)."""
    V = x_probs.shape[-1]
    t, s = (torch.as_tensor(v, dtype=x_probs.dtype).reshape(-1, 1, 1) for v in (t, s))
    a_t, a_s = 1 - t, 1 - s
    a_ts = a_t / a_s
    onehot = F.one_hot(z, V).to(x_probs.dtype)
    keep = a_ts * onehot + (1 - a_ts) / V  # q(z_t | z_s = j)
    w = x_probs / (a_t * onehot + (1 - a_t) / V)  # x_probs(x) / q(z_t | x)
    p = keep * (a_s * w + (1 - a_s) / V * w.sum(-1, keepdim=True))
    return p / p.sum(-1, keepdim=True)


def step_kl(log_probs, x, t, s, eps):
    """KL(q(z_s | z_t, x) || p(z_s | z_t)) summed over positions, nats, with z_t drawn through the Gaussian path:
    log_probs(z, t) -> (B, L, V); x (B, L); t, s (B,); eps (B, L, V) -> (B,)."""
    V = eps.shape[-1]
    z = through_gaussian(x, t, eps)
    x_hat = log_probs(z, t).exp()  # (B, L, V)
    q = posterior(z, F.one_hot(x, V).to(x_hat.dtype), t, s)
    p = posterior(z, x_hat, t, s)
    kl = torch.special.xlogy(q, q) - q * p.clamp(min=1e-30).log()
    return kl.sum((1, 2))


def nelbo(log_probs, x, k, eps):
    """STEPS x the KL of step k (1..STEPS), per window: the bound's Monte Carlo estimate, nats (B,)."""
    t = k.double() / STEPS
    return STEPS * step_kl(log_probs, x, t, t - 1.0 / STEPS, eps)


@dataclass(frozen=True)
class Uniform(TextFamily):
    """Duo on the one transformer, aligned and told the time t (uniform-state noise does not show it)."""

    infills: bool = True

    def build(self, cfg, num_classes, parts):
        levels = torch.zeros(cfg.context, dtype=torch.long)
        return Transformer(self.vocab(cfg), levels, cfg.width, cfg.depth, cfg.heads, aligned=True, timed=True)

    def draw(self, cfg, rows, generator, parts=None):
        """Each row's step k of STEPS (stratified over the batch) and its Gaussian noise on the one-hot vectors."""
        B, L = rows["tokens"].shape
        k = (stratified(B, generator) * STEPS).ceil().long().clamp(1, STEPS)  # low-discrepancy, as MDLM's times
        return {**rows, "k": k, "eps": torch.randn(B, L, self.vocab(cfg), generator=generator)}

    def loss(self, net, cfg, rows, y, generator):
        """The discrete-time NELBO per character, nats."""
        x = rows["tokens"]
        bound = nelbo(lambda z, t: F.log_softmax(net(z, None, t.float()).float(), -1), x, rows["k"], rows["eps"])
        return bound.float().mean() / x.shape[1]

    @torch.no_grad()
    def bits(self, run, windows, seed=0):
        generator = torch.Generator().manual_seed(seed)
        out = []
        for part in windows.split(64):
            W, L = part.shape
            rows = part.repeat_interleave(T_SAMPLES, 0)
            k = torch.randint(1, STEPS + 1, (len(rows),), generator=generator)
            eps = torch.randn(len(rows), L, self.vocab(run.cfg), generator=generator, dtype=torch.float64)
            nats = nelbo(lambda z, t: F.log_softmax(run.net(z, None, t.float()).double(), -1), rows, k, eps)
            out.append(nats.view(W, T_SAMPLES).mean(1) / L / math.log(2))
        return torch.cat(out)

    def bound(self, run):
        return {
            "bits_per_char_kind": f"upper bound (discrete-time NELBO, {STEPS} steps, {T_SAMPLES} drawn per window)",
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
        p = x_hat if s == 0 else posterior(z, x_hat, t, s)
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
