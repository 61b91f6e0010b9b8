"""Text, character by character, on the one transformer (nets/transformer.py): what the text families share, and
`ar` on text (left to right, as nanoGPT's character model and every LLM).

A text run trains on windows of `context` characters cut anywhere in the training split. Its samples are character
ids (n, length); `--prompt` fixes the first characters and, for the diffusion families (mdlm.py, duo.py), `--suffix`
the last ones, so they fill the middle. Held-out bits per character are measured on non-overlapping windows of the
held-out split: exact for ar, an upper bound (the ELBO) for the diffusion families.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data import text as text_data
from ..errors import UnnoiseError, positive_int
from ..metrics import text as text_metrics
from ..nets.transformer import Transformer
from ..samplers import sample_seed
from .base import Family, positive_settings
from .tokens import check_filters, filter_logits
from .tokens import draw as inverse_cdf

CONTEXT, MAX_CONTEXT = 256, 4096
# one network for every text family: 2 blocks of width 64, batch 32 windows of 256 characters (docs/performance.md,
# "Text")
TEXT = {"steps": 20000, "batch_size": 32, "lr": 3e-3, "width": 64, "depth": 2, "ema": 0.995, "warmup": 200}
OPTIONS = ("length", "prompt", "suffix", "temperature", "top_k", "top_p", "unmask")
NOT_TEXT = {  # settings of other data kinds, refused on text: (name, flag)
    "schedule": "--schedule",
    "prediction": "--prediction",
    "patch": "--patch",
    "min_snr_gamma": "--min-snr-gamma",
    "time_density": "--time-density",
    "size": "--size",
    "channels": "--channels",
    "tokens": "--tokens",
    "latent": "--latent",
    "latent_channels": "--latent-channels",
    "net": "--net",
    "levels": "--levels",
    "scales": "--scales",
    "fold_guidance": "--fold-guidance",
    "teacher": "--teacher",
}
HELDOUT_WINDOWS = 256  # held-out windows a report scores (of context characters each, non-overlapping)


def is_text(cfg):
    """True for a config of a text run (a context length set by the text families' check)."""
    return getattr(cfg, "context", None) is not None


@dataclass(frozen=True)
class TextFamily(Family):
    """A family over text: character ids on the one transformer; no Gaussian sampler, its own sampling options."""

    discrete: bool = True
    kinds: tuple = ("text",)
    options: tuple = OPTIONS

    def check(self, cfg, kind):
        if kind != "text":
            raise UnnoiseError(
                f"the {self.name} family models text (kjv, markov or a .txt file), not {cfg.data!r}; "
                "for points and images use diffusion, flow or edm"
            )
        for name, flag in NOT_TEXT.items():
            if getattr(cfg, name) is not None:
                raise UnnoiseError(f"{flag} is for points and images, not for text ({self.name} on {cfg.data})")
        if cfg.source != "gaussian" or cfg.coupling != "independent":
            raise UnnoiseError(f"--source and --coupling belong to flow matching, not to the {self.name} family")
        if cfg.conditional:
            raise UnnoiseError(f"{cfg.data} has no classes; train text without --conditional")
        cfg.context = positive_int("context", cfg.context or CONTEXT)
        if cfg.context > MAX_CONTEXT or cfg.context < 2:
            raise UnnoiseError(f"--context must lie in 2..{MAX_CONTEXT} characters, got {cfg.context}")
        positive_settings(cfg, ("steps", "batch_size", "width", "depth", "checkpoint_every", "heads"))
        if cfg.width % cfg.heads:
            raise UnnoiseError(f"--width {cfg.width} must be a multiple of the {cfg.heads} heads")
        if cfg.alphabet is not None and not (0 < len(cfg.alphabet) == len(set(cfg.alphabet))):
            raise UnnoiseError("a text run's alphabet must be distinct characters")

    def prepare(self, cfg, dataset, parts):
        """Every window of context characters of the training split, a strided view (no copy): ((N - L + 1, L),)."""
        if len(dataset.x) < cfg.context + 1:
            raise UnnoiseError(
                f"{cfg.data} has {len(dataset.x)} training characters, fewer than one window of --context "
                f"{cfg.context}; give more text or a smaller --context"
            )
        windows = dataset.x.unfold(0, cfg.context, 1)  # (N - L + 1, L)
        return {"tokens": windows}, torch.zeros(len(windows), dtype=torch.long)

    def vocab(self, cfg):
        return len(cfg.alphabet)

    def role(self, run):
        return f"text-{self.name}"

    def sampler_name(self, run, sampler=None):
        return self.name

    def report(self, run, n, seed, likelihood=False):
        """Held-out bits per character (exact for ar, the ELBO bound for diffusion), with their standard error."""
        windows = heldout_windows(run)
        bits = self.bits(run, windows, seed)  # (W,) bits per character of each window
        result = {
            "bits_per_char": float(bits.mean()),
            "bits_per_char_stderr": float(bits.std() / len(bits) ** 0.5),
            "heldout_windows": len(bits),
            "context": run.cfg.context,
            **self.bound(run),
        }
        chain = text_data.load(run.cfg.data).chain
        if chain is not None:  # the true chain's exact bits of the same windows: what a perfect model scores
            result["bits_per_char_floor"] = float(chain.bits_per_char(windows).mean())
        return result

    def bound(self, run):
        """How bits_per_char was measured (exact, or an ELBO with its t samples)."""
        return {"bits_per_char_kind": "exact"}

    def report_lines(self, run, result):
        kind = result["bits_per_char_kind"]
        floor = result.get("bits_per_char_floor")
        beside = f", floor {floor:.3f} (ratio {result['bits_per_char'] / floor:.3f})" if floor else ""
        lines = [
            f"  held-out {result['bits_per_char']:.3f} +- {result['bits_per_char_stderr']:.3f} bits per character "
            f"({kind}, {result['heldout_windows']} windows of {result['context']}){beside}"
        ]
        return lines + ([text_metrics.format_judge(result)] if "judge" in result else [])

    def steps(self, run, nfe):
        """The diffusion families' step count K: --nfe, or one per position of the context."""
        return positive_int("nfe", nfe or run.cfg.context)

    def sample(
        self,
        run,
        n=4,
        seed=0,
        label=None,
        guidance=1.0,
        batch_size=1000,
        callback=None,
        progress=False,
        first=0,
        nfe=None,
        **options,
    ):
        """Character ids (n, length); sample i depends only on (seed, i). The family writes each batch (write)."""
        check_unconditional(run, label, guidance)
        steps = self.steps(run, nfe)
        req = request(run, self, options)
        out = []
        for start in range(first, first + n, batch_size):
            stop = min(first + n, start + batch_size)
            out.append(self.write(run, req, steps, Uniforms(seed, start, stop), callback, progress))
        return torch.cat(out)


def heldout_windows(run, count=HELDOUT_WINDOWS):
    """The first `count` non-overlapping windows of context characters of the held-out split: (W, L)."""
    ids, L = run.dataset.x, run.cfg.context
    usable = min(count, len(ids) // L)
    if usable < 1:
        raise UnnoiseError(f"the held-out split of {run.cfg.data} is shorter than one window of {L} characters")
    return ids[: usable * L].view(usable, L)


class Uniforms:
    """U[0, 1) draws with one generator per sample (samplers.sample_seed), so sample i depends only on (seed, i)."""

    def __init__(self, seed, start, stop):
        self.generators = [torch.Generator().manual_seed(sample_seed(seed, i)) for i in range(start, stop)]

    def __call__(self, *shape):
        return torch.stack([torch.rand(shape, generator=g, dtype=torch.float64) for g in self.generators])


@dataclass
class Request:
    """A text draw's settings, checked: length, prompt and suffix ids, temperature, top-k, top-p, unmask order."""

    length: int
    prompt: torch.Tensor  # (P,)
    suffix: torch.Tensor  # (S,)
    temperature: float
    top_k: int | None
    top_p: float | None
    unmask: str


UNMASK = ("random", "confident")  # MDLM's ancestral order, or LLaDA's low-confidence remasking


def encode(run, text, what):
    """Character ids of text under the run's alphabet, or one line naming the characters it never saw."""
    alphabet = run.cfg.alphabet
    unknown = sorted({c for c in text if c not in alphabet})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise UnnoiseError(f"--{what} has characters this run never saw ({shown}); its alphabet: {alphabet!r}")
    index = {c: i for i, c in enumerate(alphabet)}
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def decode(run, ids):
    """Text of one row of character ids."""
    return "".join(run.cfg.alphabet[int(i)] for i in ids)


def request(run, family, options):
    """The checked Request of a draw's options (one line for each misuse)."""
    for name in ("sampler", "eta", "spacing", "s_churn", "guide", "guidance_ramp"):
        if options.get(name) not in (None, False):
            flag = "--" + name.replace("_", "-")
            raise UnnoiseError(f"{flag} belongs to diffusion, flow and edm runs, not to a text run ({family.name})")
    options.pop("clip", None)
    unknown = sorted(set(options) - set(OPTIONS) - {"sampler", "eta", "spacing", "s_churn", "guide", "guidance_ramp"})
    if unknown:
        raise UnnoiseError(f"a {family.name} run takes no option {unknown[0]!r}; its options: {', '.join(OPTIONS)}")
    L = run.cfg.context
    length = options.get("length")
    length = L if length is None else positive_int("length", length)
    if length > L:
        raise UnnoiseError(f"--length {length} is beyond this run's context of {L} characters; ask for 1..{L}")
    prompt = encode(run, options.get("prompt") or "", "prompt")
    suffix = encode(run, options.get("suffix") or "", "suffix")
    if len(suffix) and not family.infills:
        raise UnnoiseError(
            f"--suffix needs a model that sees both sides: mdlm or duo; an {family.name} run continues a --prompt"
        )
    if len(prompt) + len(suffix) > length:
        raise UnnoiseError(
            f"--prompt and --suffix hold {len(prompt) + len(suffix)} characters, more than --length {length}"
        )
    temperature, top_k, top_p = check_filters(options, len(run.cfg.alphabet), "characters")
    unmask = options.get("unmask") or "random"
    if unmask not in UNMASK:
        raise UnnoiseError(f"unknown --unmask {unmask!r}; choose one of {', '.join(UNMASK)}")
    if unmask != "random" and family.name != "mdlm":
        raise UnnoiseError("--unmask confident is LLaDA's remasking for mdlm runs")
    return Request(length, prompt, suffix, temperature, top_k, top_p, unmask)


def check_unconditional(run, label, guidance):
    if label is not None or guidance != 1:
        raise UnnoiseError(
            f"{run.cfg.data} has no classes, so a text run takes no --class or --guidance; give a --prompt"
        )


def fixed(req, L):
    """The positions a draw fixes and their ids: known (L,) bool, values (L,) long (prompt first, suffix last)."""
    known, values = torch.zeros(L, dtype=torch.bool), torch.zeros(L, dtype=torch.long)
    P, S = len(req.prompt), len(req.suffix)
    known[:P], values[:P] = True, req.prompt
    if S:
        known[req.length - S : req.length], values[req.length - S : req.length] = True, req.suffix
    return known, values


def pick(logits, req, u):
    """Character ids drawn from logits (..., V) filtered by the request's temperature, top-k and top-p, by inverse
    CDF on uniforms u (...); also the probability each drawn id had: ((...), (...))."""
    logits = filter_logits(logits.float(), req.temperature, req.top_k, req.top_p)
    ids = inverse_cdf(logits, u)
    return ids, logits.softmax(-1).gather(-1, ids[..., None])[..., 0]


@dataclass(frozen=True)
class TextAR(TextFamily):
    """Raster AR on text: position i predicts character i from the characters before it; a KV cache samples."""

    infills: bool = False

    def build(self, cfg, num_classes, parts):
        return Transformer(self.vocab(cfg), torch.arange(cfg.context), cfg.width, cfg.depth, cfg.heads)

    def loss(self, net, cfg, rows, y, generator):
        """Next-character cross-entropy (nats per character)."""
        ids = rows["tokens"]  # (B, L)
        logits = net(ids[:, :-1])  # (B, L, V)
        return F.cross_entropy(logits.transpose(1, 2), ids)

    @torch.no_grad()
    def bits(self, run, windows, seed=0):
        """Exact bits per character of each window (W, L): -log2 p(x) / L."""
        out = []
        for chunk in windows.split(64):
            logits = run.net(chunk[:, :-1])  # (b, L, V)
            nats = F.cross_entropy(logits.transpose(1, 2), chunk, reduction="none")  # (b, L)
            out.append(nats.mean(1) / math.log(2))
        return torch.cat(out)

    def forward_passes(self, run, nfe=None):
        return run.cfg.context

    def steps(self, run, nfe):
        """ar writes one character per call: --nfe is the diffusion families' step count."""
        if nfe is not None:
            raise UnnoiseError(
                "--nfe is the step count of mdlm and duo runs; an ar run calls its network once per character"
            )
        return None

    def write(self, run, req, steps, uniforms, callback=None, progress=False):
        return generate_ar(run, req, uniforms, callback, progress)


@torch.no_grad()
def generate_ar(run, req, uniforms, callback=None, progress=False):
    """Left to right with a KV cache: the prompt read as given, each next character drawn (B, length)."""
    net, B = run.net, len(uniforms.generators)
    u = uniforms(req.length)  # (B, length)
    y, cache, inputs, ids = net.null(B), net.new_cache(), None, []
    for pos in tqdm(range(req.length), desc="writing", disable=not progress, leave=False):
        logits = net.step(inputs, y, cache, pos)[:, -1]  # (B, V)
        if pos < len(req.prompt):
            picked = req.prompt[pos].expand(B)
        else:
            picked = pick(logits, req, u[:, pos])[0]
        ids.append(picked)
        if callback:
            callback(pos, torch.stack(ids, 1))
        inputs = picked[:, None]  # (B, 1)
    return torch.stack(ids, 1)


AR_TEXT = TextAR("ar", "raster autoregressive, on text: left to right", defaults=TEXT, order="raster")
