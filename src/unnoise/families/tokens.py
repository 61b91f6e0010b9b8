"""Sampling shared by the token families: logits -> tokens, level by level with a KV cache.

One loop serves raster AR (one token per level) and VAR (one scale per level). Per level: the
transformer's logits, classifier-free guidance on them, temperature, top-k and top-p, then one draw
per token from that sample's own random stream (inverse CDF on a uniform), so sample i depends only
on (seed, i), never on the batch it is drawn in.
"""

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .. import guidance as cfg_guidance
from ..errors import UnnoiseError, positive_int
from ..samplers import sample_seed
from .base import Family, positive_settings

OPTIONS = ("temperature", "top_k", "top_p", "guidance_ramp")
CONTINUOUS_ONLY = ("sampler", "nfe", "eta", "spacing", "s_churn")


@dataclass(frozen=True)
class TokenFamily(Family):
    """A family over images as tokens (a tokenizer, raster AR, VAR): no Gaussian path, no schedule or sampler."""

    discrete: bool = True
    kinds: tuple = ("images",)
    options: tuple = OPTIONS

    def check(self, cfg, kind):
        """The token families' settings: images only, no schedule or prediction; then the family's own."""
        if cfg.source != "gaussian":
            raise UnnoiseError(f"--source belongs to flow matching on points, not the {self.name} family")
        if cfg.time_density is not None:
            raise UnnoiseError(f"--time-density belongs to diffusion and flow, not the {self.name} family")
        if kind not in self.kinds:
            raise UnnoiseError(
                f"the {self.name} family models images (digits, mnist, emoji or a folder), "
                f"not the 2D set {cfg.data!r}; for points use diffusion, flow or edm"
            )
        if cfg.schedule is not None or cfg.prediction is not None or cfg.patch is not None:
            raise UnnoiseError(
                f"--schedule, --prediction and --patch belong to diffusion, flow and edm, not {self.name}"
            )
        if cfg.coupling != "independent" or cfg.min_snr_gamma is not None:
            raise UnnoiseError(f"--coupling and --min-snr-gamma belong to the continuous families, not {self.name}")
        from ..data.images import default_size

        cfg.size = positive_int("size", cfg.size or default_size(cfg.data))
        if cfg.latent is not None or cfg.net is not None:
            raise UnnoiseError(f"--latent and --net belong to diffusion, flow and edm, not {self.name}")
        names = ("steps", "batch_size", "width", "depth", "checkpoint_every", "heads", "codebook")
        positive_settings(cfg, names + (("latent_channels",) if cfg.latent_channels is not None else ()))
        self.check_tokens(cfg)

    def check_tokens(self, cfg):
        """The family's own settings (scales, tokens, levels)."""

    def sample(self, run, n=2000, seed=0, **kwargs):
        return sample(run, self, n, seed, **kwargs)

    def forward_passes(self, run, nfe=None):
        """One transformer call per level (a token, or a scale), the decoder not counted."""
        return len(self.lengths(run))

    def report(self, run, n, seed, likelihood=False):
        return self.bits(run, run.dataset.x)

    def report_lines(self, run, result):
        exact = (
            f", {result['bpd']:.3f} bits per dimension (exact, on the {result['grid']} grid)"
            if result["bpd"]
            else f" ({result['grid']}; per scale {result.get('bits_per_scale')})"
        )
        return [
            f"  code length {result['bits_per_image']:.1f} +- {result['bits_per_image_stderr']:.1f} bits per "
            f"held-out image{exact}, n={result['n']}"
        ]


@dataclass(frozen=True)
class Prior(TokenFamily):
    """A token family that generates: the transformer over a tokenizer's codes (or pixels)."""

    def check_tokens(self, cfg):
        if cfg.width % cfg.heads:
            raise UnnoiseError(f"--width {cfg.width} must be a multiple of the {cfg.heads} heads")
        if cfg.scales is not None:
            raise UnnoiseError(
                "--scales belongs to the tokenizer (--family vq); ar and var take the scales of "
                "their tokenizer (--tokens RUN, or auto)"
            )

    def role(self, run):
        return f"images-{self.name}"


LEVELS = "--levels is for raster AR over pixels (--family ar without --tokens)"
# the transformer of raster AR and VAR measured best at 3 blocks, batch 16 and lr 4e-3 (docs/performance.md,
# "Raster AR and VAR")
TRANSFORMER = {"steps": 6000, "batch_size": 16, "lr": 4e-3, "width": 64, "depth": 3, "ema": 0.999}


def check_options(run, options):
    """Refuse continuous-only options and out-of-range ones; returns temperature, top_k, top_p, guidance_ramp."""
    for name in CONTINUOUS_ONLY:
        if options.get(name) is not None:
            raise UnnoiseError(
                f"--{name.replace('_', '-')} belongs to diffusion, flow and edm runs; a {run.cfg.family} "
                "run samples token by token: use --temperature, --top-k, --top-p, --guidance "
                "(--guidance-ramp)"
            )
    unknown = sorted(set(options) - set(OPTIONS) - set(CONTINUOUS_ONLY))
    if unknown:
        raise UnnoiseError(f"a {run.cfg.family} run takes no option {unknown[0]!r}; its options: {', '.join(OPTIONS)}")
    return (*check_filters(options, run.net.vocab), bool(options.get("guidance_ramp")))


def check_filters(options, vocab, what="tokens"):
    """temperature (default 1), top_k and top_p of a draw's options, checked against a vocabulary of `vocab` `what`."""
    temperature = options.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise UnnoiseError(f"temperature must be a finite number > 0, got {temperature}")
    top_k = options.get("top_k")
    if top_k is not None and not (isinstance(top_k, int) and 1 <= top_k <= vocab):
        raise UnnoiseError(f"top-k must be a whole number in 1..{vocab} (the {vocab} {what} of this run), got {top_k}")
    top_p = options.get("top_p")
    if top_p is not None and not (math.isfinite(top_p) and 0 < top_p <= 1):
        raise UnnoiseError(f"top-p must lie in (0, 1], got {top_p}")
    return temperature, top_k, top_p


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Logits (..., V) divided by the temperature, with tokens outside top-k / top-p (Holtzman et al. 2020) at -inf."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1:
        probs, order = logits.softmax(-1).sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def draw(logits, uniforms):
    """One token per row by inverse CDF: logits (..., V), uniforms (...) in [0, 1) -> ids (...)."""
    cdf = logits.double().softmax(-1).cumsum(-1)
    idx = torch.searchsorted(cdf, (uniforms.double() * cdf[..., -1])[..., None], right=True)[..., 0]
    return idx.clamp(max=logits.shape[-1] - 1)


def uniforms(seed, start, stop, length):
    """(stop - start, length) uniforms, row i from sample i's own generator (samplers.sample_seed, as PerSampleNoise)."""
    return torch.stack(
        [torch.rand(length, generator=torch.Generator().manual_seed(sample_seed(seed, i))) for i in range(start, stop)]
    )


def guided(cond, uncond, w):
    """uncond + w (cond - uncond), with w = 1 the conditional logits exactly and w = 0 the unconditional."""
    if w == 1:
        return cond
    if w == 0:
        return uncond
    return uncond + w * (cond - uncond)


def level_weight(w, ramp, k, levels):
    """Guidance at level k: w, or VAR's ramp from 1 at the first level to w at the last."""
    return 1 + (w - 1) * k / max(1, levels - 1) if ramp else w


def generate(run, family, n, seed, label, w, options, batch_size=1000, callback=None, progress=False, first=0):
    """Token ids (n, L) of samples first..first+n-1, drawn level by level; family gives `lengths` (tokens per
    level) and `next_inputs`."""
    temperature, top_k, top_p, ramp = options
    net, lengths = run.net, family.lengths(run)
    n, batch_size = positive_int("n", n), positive_int("batch-size", batch_size)
    out = []
    starts = range(first, first + n, batch_size)
    bar = tqdm(total=len(starts) * len(lengths), desc="sampling", disable=not progress, leave=False)
    for start in starts:
        stop = min(first + n, start + batch_size)
        B = stop - start
        u = uniforms(seed, start, stop, sum(lengths))  # (B, L)
        y = net.null(B) if label is None and w == 1 else cfg_guidance.labels(run, label, start, stop)
        need_uncond = w != 1
        y_all = torch.cat([y, net.null(B)]) if need_uncond else y  # (B or 2B,)
        cache, state, inputs, pos, tokens = net.new_cache(), None, None, 0, []
        with torch.no_grad():
            for k, length in enumerate(lengths):
                logits = net.step(inputs, y_all, cache, pos)  # (B or 2B, length, V)
                if need_uncond:
                    cond, uncond = logits.chunk(2)
                    logits = guided(cond, uncond, level_weight(w, ramp, k, len(lengths)))
                picked = draw(filter_logits(logits, temperature, top_k, top_p), u[:, pos : pos + length])  # (B, length)
                tokens.append(picked)
                pos += length
                if k + 1 < len(lengths):
                    inputs, state = family.next_inputs(run, picked, k, state)  # (B, next length, ...)
                    if need_uncond:
                        inputs = torch.cat([inputs, inputs])
                bar.update()
                if callback:
                    callback(k, torch.cat(tokens, dim=1))
        out.append(torch.cat(tokens, dim=1))
    bar.close()
    return torch.cat(out)


def sample(
    run,
    family,
    n=2000,
    seed=0,
    label=None,
    guidance=1.0,
    batch_size=1000,
    callback=None,
    progress=False,
    first=0,
    **options,
):
    """Images (n, C, H, W) in [0, 1] from a token run; callback(level, tokens so far) after each level."""
    if options.pop("guide", None) is not None:
        raise UnnoiseError(
            "--autoguide is for diffusion, flow and edm runs; ar and var runs guide with --guidance only"
        )
    options.pop("clip", None)  # token runs draw ids on a grid: nothing to clamp
    cfg_guidance.check(run, label, guidance)
    checked = check_options(run, options)
    tokens = generate(run, family, n, seed, label, guidance, checked, batch_size, callback, progress, first)
    return run.to_data(family.decode(run, tokens))


@torch.no_grad()
def nll_bits(run, tokens, inputs, y=None, batch=250):
    """Code length of held-out tokens under the prior, -log2 p, per image and summed per level: ((N,), (levels,))."""
    per_image, per_token = [], []
    for i in range(0, len(tokens), batch):
        t = tokens[i : i + batch]
        logits = run.net(inputs[i : i + batch], None if y is None else y[i : i + batch])  # (b, L, V)
        nats = torch.nn.functional.cross_entropy(logits.transpose(1, 2), t, reduction="none")  # (b, L)
        per_token.append(nats)
        per_image.append(nats.sum(1))
    per_token = torch.cat(per_token) / math.log(2)
    levels = run.net.levels
    per_level = torch.zeros(int(levels.max()) + 1, dtype=torch.float64).index_add_(
        0, levels, per_token.double().mean(0)
    )
    return torch.cat(per_image) / math.log(2), per_level
