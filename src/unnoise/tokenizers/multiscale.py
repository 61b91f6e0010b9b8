"""VAR's multi-scale residual tokenizer (Tian et al. 2024, Sec. 3.2 and Algorithm 1), sized for 8x8 to 28x28.

An encoder maps an image to a latent f (B, C, n, n). One shared codebook E (V, C) quantizes it coarse
to fine over the scales p_1 < ... < p_K = n:

    f_rest = f, f_hat = 0
    for k:  z_k = area(f_rest, p_k);  r_k = argmin_v |z_k - E_v|;  h_k = phi_k(bicubic(E[r_k], n))
            f_hat += h_k;  f_rest -= h_k

phi_k(h) = 0.5 h + 0.5 conv3x3(h). The VQ loss is taken at every prefix, |f_hat_k - sg(f)|^2 +
0.25 |sg(f_hat_k) - f|^2, averaged over the K scales, and the decoder gets f_hat through the
straight-through estimator. With --scales 8 (one scale) this is a plain VQ-VAE (van den Oord et al. 2017).

Deviations from VAR, for small data (docs/autoregressive.md): no LPIPS or GAN loss (meaningless at 8x8);
one phi per scale instead of four shared; the first `warmup` training steps skip quantization (a plain
autoencoder), then the codebook is initialised by k-means on the residual vectors of every scale;
codes whose hits per step fall below DEAD are reseeded from current residuals every RESTART_EVERY steps.
Code use per scale is tracked (an average of hits per step) and saved with the weights.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnnoiseError

BETA = 0.25  # commitment weight (VAR, after van den Oord et al. 2017)
USAGE_DECAY = 0.99  # running average of hits per code and scale
DEAD = 0.03  # a code hit fewer times than this per step, over all scales, is reseeded
RESTART_EVERY = 50
MIN_PER_SCALE = 4  # a scale using fewer codes gets the least-used ones (the 1x1 scale collapses otherwise)
KMEANS_ITERS = 20


def parse_scales(text, latent):
    """'1,2,3,4,6,8' -> (1, 2, 3, 4, 6, 8), refusing lists that do not rise strictly to the latent side."""
    try:
        scales = tuple(int(s) for s in str(text).split(","))
    except ValueError:
        raise UnnoiseError(
            f"--scales {text!r}: give whole numbers separated by commas, e.g. 1,2,3,4,6,{latent}"
        ) from None
    if any(b <= a for a, b in zip(scales, scales[1:])) or scales[0] < 1 or scales[-1] != latent:
        raise UnnoiseError(
            f"--scales {text}: the sides must rise strictly from 1 or more and end at the latent "
            f"side {latent} (e.g. 1,2,3,4,6,{latent}, or {latent} for a single scale)"
        )
    return scales


def latent_side(size):
    """The latent side the encoder makes: the image halved while it is above 8 and even (8->8, 16->8, 28->7)."""
    side = size
    while side > 8 and side % 2 == 0:
        side //= 2
    return side


def area(x, side):
    """Area (average-pool) resize of (B, C, n, n) to (B, C, side, side)."""
    return x if x.shape[-1] == side else F.interpolate(x, size=(side, side), mode="area")


def bicubic(x, side):
    return x if x.shape[-1] == side else F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False)


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)
        )

    def forward(self, x):
        return x + self.body(x)


def encoder(channels, width, latent, halvings):
    layers = [nn.Conv2d(channels, width, 3, padding=1), Residual(width)]
    layers += [nn.Conv2d(width, width, 4, stride=2, padding=1) for _ in range(halvings)]
    return nn.Sequential(*layers, Residual(width), nn.SiLU(), nn.Conv2d(width, latent, 1))


def decoder(channels, width, latent, halvings):
    layers = [nn.Conv2d(latent, width, 3, padding=1), Residual(width)]
    for _ in range(halvings):
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1)]
    return nn.Sequential(*layers, Residual(width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))


class Phi(nn.Module):
    """phi(h) = 0.5 h + 0.5 conv3x3(h): VAR's residual refinement of an upsampled code map."""

    def __init__(self, latent):
        super().__init__()
        self.conv = nn.Conv2d(latent, latent, 3, padding=1)

    def forward(self, h):
        return 0.5 * h + 0.5 * self.conv(h)


class MultiScaleVQ(nn.Module):
    """Images (B, ch, S, S) in [-1, 1] <-> token maps r_1..r_K of sides `scales`, one codebook of `codebook` codes."""

    def __init__(self, channels=1, size=8, scales=(1, 2, 3, 4, 6, 8), codebook=64, latent=16, width=64, warmup=200):
        super().__init__()
        self.side = latent_side(size)
        halvings = (size // self.side).bit_length() - 1
        self.scales, self.vocab, self.dim, self.warmup = tuple(scales), codebook, latent, warmup
        self.encoder = encoder(channels, width, latent, halvings)
        self.decoder = decoder(channels, width, latent, halvings)
        self.codebook = nn.Parameter(torch.randn(codebook, latent) / codebook)
        self.phi = nn.ModuleList(Phi(latent) for _ in scales)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))  # training steps seen
        self.register_buffer("usage", torch.zeros(len(scales), codebook))  # hits per step, per scale

    @property
    def lengths(self):
        return [p * p for p in self.scales]

    def nearest(self, z):
        """Index of the nearest code of each vector of z (B, C, p, p) -> (B, p, p)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim)  # (B p p, C)
        dist = torch.cdist(flat, self.codebook)  # (B p p, V)
        return dist.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def embed_scale(self, idx, k):
        """h_k = phi_k(bicubic(E[r_k])): (B, p, p) indices -> (B, C, n, n)."""
        e = self.codebook[idx].permute(0, 3, 1, 2)  # (B, C, p, p)
        return self.phi[k](bicubic(e, self.side))

    def next_input(self, f_hat, k):
        """VAR's teacher-forcing input for scale k + 1: area(f_hat_k, p_{k+1}) as (B, p_{k+1}^2, C)."""
        return area(f_hat, self.scales[k + 1]).flatten(2).transpose(1, 2)

    def quantize(self, f):
        """(indices per scale [(B, p, p)], f_hat (B, C, n, n), VQ loss) with VAR's per-prefix loss."""
        f_rest, f_hat, loss, indices = f.detach().clone(), torch.zeros_like(f), 0.0, []
        for k, p in enumerate(self.scales):
            idx = self.nearest(area(f_rest, p))  # (B, p, p)
            h = self.embed_scale(idx, k)  # (B, C, n, n)
            f_hat = f_hat + h
            f_rest = f_rest - h.detach()
            loss = loss + F.mse_loss(f_hat, f.detach()) + BETA * F.mse_loss(f_hat.detach(), f)
            indices.append(idx)
        return indices, f_hat, loss / len(self.scales)

    def forward(self, x):
        """Training: (reconstruction (B, ch, S, S), VQ loss); a plain autoencoder during the warm-up."""
        f = self.encoder(x)  # (B, C, n, n)
        if self.training:
            self.calls += 1
            if int(self.calls) <= self.warmup:
                return self.decoder(f), f.new_zeros(())
            if int(self.calls) == self.warmup + 1:
                self.kmeans_init(f.detach())
        indices, f_hat, loss = self.quantize(f)
        if self.training:
            self.track(indices, f.detach())
        return self.decoder((f_hat - f).detach() + f), loss  # straight-through

    @torch.no_grad()
    def residual_vectors(self, f):
        """The vectors each scale would quantize if quantization were exact: [(B p_k^2, C)] per scale."""
        f_rest, out = f.clone(), []
        for k, p in enumerate(self.scales):
            z = area(f_rest, p)  # (B, C, p, p)
            out.append(z.permute(0, 2, 3, 1).reshape(-1, self.dim))
            f_rest -= self.phi[k](bicubic(z, self.side))
        return out

    @torch.no_grad()
    def kmeans_init(self, f):
        """Lloyd's k-means on every scale's residual vectors (a deviation from VAR, for small data)."""
        gen = torch.Generator().manual_seed(int(self.calls))
        vectors = torch.cat(self.residual_vectors(f))  # (M, C)
        centres = vectors[torch.randperm(len(vectors), generator=gen)[: self.vocab]].clone()
        for _ in range(KMEANS_ITERS):
            assign = torch.cdist(vectors, centres).argmin(1)  # (M,)
            sums = torch.zeros_like(centres).index_add_(0, assign, vectors)
            counts = torch.bincount(assign, minlength=self.vocab).to(vectors)
            centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        self.codebook.copy_(centres)

    @torch.no_grad()
    def track(self, indices, f):
        """Update hits per step per scale; every RESTART_EVERY steps reseed dead codes from current residuals,
        and give a scale that uses fewer than MIN_PER_SCALE codes the least-used ones, placed on its worst-fit vectors."""
        hits = torch.stack([torch.bincount(i.flatten(), minlength=self.vocab).float() for i in indices])  # (K, V)
        self.usage.mul_(USAGE_DECAY).add_(hits, alpha=1 - USAGE_DECAY)
        if int(self.calls) % RESTART_EVERY:
            return
        gen = torch.Generator().manual_seed(int(self.calls))
        per_scale = self.residual_vectors(f)
        dead = torch.nonzero(self.usage.sum(0) < DEAD).flatten()
        if len(dead):
            vectors = torch.cat(per_scale)
            self.codebook[dead] = vectors[torch.randint(0, len(vectors), (len(dead),), generator=gen)]
            self.usage[:, dead] = DEAD
        for k, vectors in enumerate(per_scale):
            short = min(MIN_PER_SCALE, len(vectors)) - int((self.usage[k] >= DEAD).sum())
            if short > 0:
                spare = self.usage.sum(0).argsort()[:short]  # least-used codes overall
                worst = torch.cdist(vectors, self.codebook).min(1).values.argsort(descending=True)[:short]
                self.codebook[spare] = vectors[worst]
                self.usage[:, spare] = 0
                self.usage[k, spare] = DEAD

    @torch.no_grad()
    def tokens(self, x):
        """Images (B, ch, S, S) in [-1, 1] -> token ids (B, L), the scales flattened coarse to fine, raster inside."""
        indices, _, _ = self.quantize(self.encoder(x))
        return torch.cat([i.flatten(1) for i in indices], dim=1)

    def split(self, tokens):
        """(B, L) -> [(B, p, p)] per scale."""
        parts = tokens.split(self.lengths, dim=1)
        return [t.view(-1, p, p) for t, p in zip(parts, self.scales)]

    @torch.no_grad()
    def teacher_inputs(self, tokens):
        """VAR's transformer inputs for scales 2..K from the tokens (B, L): (B, L - 1, C)."""
        f_hat, out = 0.0, []
        for k, idx in enumerate(self.split(tokens)[:-1]):
            f_hat = f_hat + self.embed_scale(idx, k)
            out.append(self.next_input(f_hat, k))
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def decode_prefixes(self, tokens, upto=None):
        """The decoded image after each prefix of scales: [(B, ch, S, S)] in model units."""
        f_hat, out = 0.0, []
        for k, idx in enumerate(self.split(tokens)[: upto or len(self.scales)]):
            f_hat = f_hat + self.embed_scale(idx, k)
            out.append(self.decoder(f_hat))
        return out

    @torch.no_grad()
    def decode(self, tokens):
        return self.decode_prefixes(tokens)[-1]

    def summary(self):
        """Codes in use per scale (hit at least DEAD times per step, on the running average)."""
        return {
            "codes_used_per_scale": [int((u >= DEAD).sum()) for u in self.usage],
            "scales": list(self.scales),
            "codebook": self.vocab,
        }


@torch.no_grad()
def reconstruction_report(tok, x, batch=500):
    """RMSE in [0, 1] pixel units after each prefix of scales, and of the unquantized autoencoder: x in model units."""
    errors, plain = torch.zeros(len(tok.scales), dtype=torch.float64), 0.0
    for chunk in x.split(batch):
        for k, image in enumerate(tok.decode_prefixes(tok.tokens(chunk))):
            errors[k] += ((image.clamp(-1, 1) - chunk) / 2).double().square().sum()
        plain += float(((tok.decoder(tok.encoder(chunk)).clamp(-1, 1) - chunk) / 2).double().square().sum())
    count = x.numel()
    return {
        "rmse_per_prefix": [float((e / count).sqrt()) for e in errors],
        "rmse_unquantized": (plain / count) ** 0.5,
        "n": len(x),
    }
