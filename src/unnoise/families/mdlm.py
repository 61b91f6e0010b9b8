"""Masked diffusion on text (MDLM, Sahoo et al. 2024): every character starts as [MASK], and a bidirectional
transformer unmasks them in any order.

Forward process: each character is masked with probability t (alpha_t = 1 - t). The SUBS parameterisation gives
the mask zero probability in the output and carries unmasked characters over, so the continuous-time NELBO is a
weighted masked cross-entropy (MDLM eq. 11): E_t [ (1 / t) sum_{i masked} -log p(x_i | z_t) ] per sequence.
Sampling: K ancestral steps from t = 1 to 0; a position masked at t is unmasked by s with probability (t - s) / t,
its character drawn from the network, which is called again only when a step unmasked something (MDLM's
caching: the network has no time input). `--unmask confident`: LLaDA's low-confidence remasking (Nie et al. 2025)
unmasks as many per step, the surest first.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import UnnoiseError
from ..nets.transformer import Transformer
from .text import TEXT, TextFamily, fixed, pick

EPS = 1e-3  # training times t lie in [EPS, 1]: t -> 0 masks nothing and weighs 1 / t
T_SAMPLES = 4  # t samples per held-out window in the reported bound (stratified over (0, 1])


def stratified(count, generator):
    """count times in (0, 1]: one uniform offset, then evenly spaced (MDLM's low-discrepancy sampler): (count,)."""
    u = torch.rand((), generator=generator, dtype=torch.float64)
    return 1 - (u + torch.arange(count, dtype=torch.float64)) / count % 1


def masked_nll(log_probs, x, t, u):
    """The NELBO of each window, nats: (1 / t) sum over positions masked at t of -log p(x_i | z_t).

    log_probs(z) -> (B, L, V); x (B, L) ids; t (B,) times; u (B, L) uniforms (masked where u < t)."""
    masked = u < t[:, None]  # (B, L)
    lp = log_probs(x.masked_fill(masked, -1))  # (B, L, V)
    nll = -lp.gather(-1, x[..., None])[..., 0]  # (B, L)
    return (nll * masked).sum(1) / t


def nelbo_bits(log_probs, x, t_samples, generator, chunk=64):
    """MDLM's bound in bits per character of each window x (W, L), averaged over t_samples stratified times: (W,)."""
    out = []
    for part in x.split(chunk):
        W, L = part.shape
        t = torch.stack([stratified(t_samples, generator) for _ in range(W)]).flatten()  # (W T,)
        u = torch.rand(W * t_samples, L, generator=generator, dtype=torch.float64)
        rows = part.repeat_interleave(t_samples, 0)  # (W T, L)
        nats = masked_nll(log_probs, rows, t, u).view(W, t_samples).mean(1)
        out.append(nats / L / math.log(2))
    return torch.cat(out)


@dataclass(frozen=True)
class Masked(TextFamily):
    """MDLM on the one transformer, aligned (each position reads its own token, all attend to all), no time input."""

    infills: bool = True

    def build(self, cfg, num_classes, parts):
        V, L = self.vocab(cfg), cfg.context
        levels = torch.zeros(L, dtype=torch.long)  # one level: every position attends to every other
        return Transformer(V, levels, cfg.width, cfg.depth, cfg.heads, in_vocab=V + 1, aligned=True)

    def draw(self, cfg, rows, generator, parts=None):
        """Each row's time (stratified over the batch, in [EPS, 1]) and its mask uniforms."""
        B, L = rows["tokens"].shape
        t = EPS + (1 - EPS) * stratified(B, generator)
        return {**rows, "t": t.float(), "u": torch.rand(B, L, generator=generator)}

    def loss(self, net, cfg, rows, y, generator):
        """The NELBO per character, nats (MDLM eq. 11)."""
        x = rows["tokens"]
        V = self.vocab(cfg)
        return masked_nll(lambda z: log_probs(net, z, V), x, rows["t"], rows["u"]).mean() / x.shape[1]

    @torch.no_grad()
    def bits(self, run, windows, seed=0):
        generator = torch.Generator().manual_seed(seed)
        V = self.vocab(run.cfg)
        return nelbo_bits(lambda z: log_probs(run.net, z, V).double(), windows, T_SAMPLES, generator)

    def bound(self, run):
        return {"bits_per_char_kind": f"upper bound (NELBO, {T_SAMPLES} t samples)", "t_samples": T_SAMPLES}

    def forward_passes(self, run, nfe=None):
        return nfe or run.cfg.context

    def sampler_options(self, sampler=None, nfe=None):
        return {} if nfe is None else {"nfe": nfe}

    def write(self, run, req, steps, uniforms, callback=None, progress=False):
        return unmask(run, req, steps, uniforms, callback, progress)


def log_probs(net, z, V):
    """SUBS: log p(x_i | z) over the V characters, with masked inputs (-1) read as the mask token V: (B, L, V)."""
    return F.log_softmax(net(z.masked_fill(z < 0, V)).float(), dim=-1)


@torch.no_grad()
def unmask(run, req, steps, uniforms, callback=None, progress=False):
    """K ancestral steps of MDLM (or LLaDA's confident order) from all-masked: (B, length) ids."""
    V, L, B = len(run.cfg.alphabet), run.cfg.context, len(uniforms.generators)
    known, values = fixed(req, L)
    z = torch.where(known, values, -1).expand(B, L).clone()  # (B, L); -1: masked
    total = (z < 0).sum(1)  # (B,)
    times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    logits, calls = None, 0
    for k in tqdm(range(steps), desc="unmasking", disable=not progress, leave=False):
        t, s = float(times[k]), float(times[k + 1])
        masked = z < 0
        u = uniforms(L, 2)  # (B, L, 2)
        if logits is None:
            logits = run.net(z.masked_fill(z < 0, V))  # (B, L, V)
            if callback:
                callback(calls, z)
            calls += 1
        ids, confidence = pick(logits, req, u[..., 1])
        if req.unmask == "random":
            chosen = masked & (u[..., 0] < (t - s) / t)
        else:  # as many as the schedule unmasks on average, the surest first
            count = masked.sum(1) - torch.round(total * s).long()  # (B,)
            rank = confidence.masked_fill(~masked, -1).argsort(1, descending=True).argsort(1)  # (B, L)
            chosen = masked & (rank < count[:, None])
        z = torch.where(chosen, ids, z)
        if chosen.any():
            logits = None
    if (z < 0).any():
        raise UnnoiseError("internal: positions left masked")  # the last step unmasks with probability 1
    return z[:, : req.length]


MDLM = Masked(
    "mdlm",
    "masked diffusion on text (MDLM): unmask everywhere at once, in any order",
    defaults=TEXT,
    order="unmasking",
)
