"""Judges of generated text that are not the model itself: a character n-gram model fitted on the training split
(interpolated Kneser-Ney), the share of generated words that are real words, and, for markov, the exact bits under
the true chain.
"""

import functools

import numpy as np
import torch

from ..data.text import decode, load, word_list
from ..errors import UnnoiseError

ORDER = 6
DISCOUNT = 0.75  # the standard absolute discount of Kneser-Ney (Chen & Goodman 1998, section 3.5)


def _np_ids(ids):
    return torch.as_tensor(ids).long().cpu().numpy()


def _grams(ids, k, vocab):
    """The code of each k-gram of ids (N,) ending at positions k - 1 .. N - 1, oldest symbol highest: (N - k + 1,)."""
    code = np.zeros(len(ids) - k + 1, dtype=np.int64)
    for j in range(k):
        code = code * vocab + ids[j : len(ids) - k + 1 + j]
    return code


class _Level:
    """Counts of the k-grams of one order (sorted codes) and, per context (the first k - 1 symbols), their total
    and the number of distinct symbols that follow it."""

    def __init__(self, keys, counts, vocab):
        self.keys, self.counts = keys, counts.astype(np.float64)  # (G,), (G,)
        self.contexts, starts = np.unique(keys // vocab, return_index=True)  # (H,) sorted, since keys are
        self.totals = np.add.reduceat(self.counts, starts)  # (H,) c(h)
        self.followers = np.diff(np.append(starts, len(keys))).astype(np.float64)  # (H,) N1+(h .)

    def count(self, codes):
        """c(h w) for each code (0 when unseen)."""
        return _lookup(self.keys, self.counts, codes)

    def context(self, codes):
        """(c(h), N1+(h .)) for each context code (0 when unseen)."""
        return _lookup(self.contexts, self.totals, codes), _lookup(self.contexts, self.followers, codes)


def _lookup(keys, values, codes):
    """values[keys == code] for each code, 0 where keys lack it (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(codes))
    at = np.minimum(np.searchsorted(keys, codes), len(keys) - 1)
    return np.where(keys[at] == codes, values[at], 0.0)


class NGram:
    """A character n-gram model with interpolated Kneser-Ney smoothing (Chen & Goodman 1998, eq. 26), down to the
    uniform 1 / V, so that no probability is zero."""

    def __init__(self, ids, vocab, order=ORDER):
        self.vocab, self.order = int(vocab), int(order)
        if not 1 <= self.vocab <= 256 or not 1 <= self.order <= 7:
            raise UnnoiseError(f"an n-gram model takes 1..256 symbols and order 1..7, got {vocab} and {order}")
        ids = _np_ids(ids).reshape(-1)
        if len(ids) <= self.order or ids.min() < 0 or ids.max() >= self.vocab:
            raise UnnoiseError(f"an n-gram model fits more than {self.order} ids in 0..{self.vocab - 1}")
        self.raw, self.continued = [None], [None]  # by order k = 1 .. order
        for k in range(1, self.order + 1):
            keys, counts = np.unique(_grams(ids, k, self.vocab), return_counts=True)
            self.raw.append(_Level(keys, counts, self.vocab))
            if k > 1:  # N1+(. w): the distinct left extensions of each (k - 1)-gram
                shorter, extended = np.unique(keys % self.vocab ** (k - 1), return_counts=True)
                self.continued.append(_Level(shorter, extended, self.vocab))

    def _step(self, level, codes, lower):
        """One order of interpolated KN: (max(c(hw) - D, 0) + D N1+(h .) P_lower) / c(h), or P_lower for an unseen h."""
        total, followers = level.context(codes // self.vocab)
        seen = np.maximum(level.count(codes) - DISCOUNT, 0.0)
        return np.where(total > 0, (seen + DISCOUNT * followers * lower) / np.maximum(total, 1.0), lower)

    def log2_probs(self, ids):
        """log2 P(x_t | the up to order - 1 symbols before it in its row) of ids (B, L): (B, L). The top order of each
        position uses raw counts, the lower ones continuation counts."""
        ids = _np_ids(ids)
        ids = ids.reshape(1, -1) if ids.ndim == 1 else ids
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab):
            raise UnnoiseError(f"ids must lie in 0..{self.vocab - 1} for this n-gram model")
        rows, length = ids.shape
        flat = ids.reshape(-1)  # (B * L,)
        position = np.tile(np.arange(length), rows)  # (B * L,)
        top = np.minimum(position + 1, self.order)  # the longest order with a context inside the row
        code = np.zeros_like(flat)  # the k-gram ending at each position (only valid where position >= k - 1)
        lower = np.full(flat.shape, 1.0 / self.vocab)  # P_0: uniform
        prob = np.empty(flat.shape)
        for k in range(1, self.order + 1):
            back = np.roll(flat, k - 1)  # the symbol k - 1 before each position
            code = code + np.where(position >= k - 1, back, 0) * self.vocab ** (k - 1)
            here = top == k
            prob[here] = self._step(self.raw[k], code[here], lower[here])
            if k < self.order:
                lower = self._step(self.continued[k], code, lower)
        return np.log2(prob).reshape(rows, length)

    def bits(self, ids):
        """The mean bits per character of each row of ids (B, L), each row scored on its own: float64 (B,)."""
        return torch.from_numpy(-self.log2_probs(ids).mean(1))

    def bits_per_char(self, ids):
        """The mean of bits over rows."""
        return float(self.bits(ids).mean())


def word_share(text, words):
    """The share of the words of text (or pooled over a list of texts) that are in words; 0.0 when there are none."""
    found = [w for t in ([text] if isinstance(text, str) else text) for w in word_list(t)]
    return sum(w in words for w in found) / len(found) if found else 0.0


def sample_bits_markov(chain, ids):
    """The mean exact bits per character of sample rows ids (B, L) under the true chain."""
    return float(chain.bits_per_char(ids).mean())


JUDGED_WINDOWS = 256  # held-out windows of real text each sample judge is set beside


@functools.lru_cache(maxsize=4)
def ngram_of(name):
    """The n-gram judge of a text data set, fitted once on its training split."""
    found = load(name)
    return NGram(found.train, found.vocab)


def real_windows(found, length, count=JUDGED_WINDOWS):
    """Held-out real text as non-overlapping windows of `length` characters: (W, length)."""
    usable = min(count, len(found.heldout) // length)
    return found.heldout[: usable * length].view(usable, length)


def judge(name, alphabet, samples):
    """Samples (n, length) judged beside held-out real text of the same length: on markov their exact bits under the
    true chain; else the n-gram judge's bits and the share of their words that the training text holds."""
    found = load(name)
    real = real_windows(found, samples.shape[1])
    if found.chain is not None:
        return {
            "judge": "the true chain (exact)",
            "sample_bits_per_char": sample_bits_markov(found.chain, samples),
            "real_bits_per_char": sample_bits_markov(found.chain, real),
            "entropy_rate": found.chain.entropy_rate,
        }
    ngram = ngram_of(name)
    texts = [decode(row, alphabet) for row in samples]
    return {
        "judge": f"{ngram.order}-gram, Kneser-Ney, fitted on the training split",
        "sample_bits_per_char": ngram.bits_per_char(samples),
        "real_bits_per_char": ngram.bits_per_char(real),
        "word_share": word_share(texts, found.words),
        "real_word_share": word_share([decode(row, alphabet) for row in real], found.words),
    }


def format_judge(result):
    """judge()'s part of a result, in words."""
    lines = [
        f"  samples {result['sample_bits_per_char']:.3f} bits per character under {result['judge']}; held-out real "
        f"text {result['real_bits_per_char']:.3f} (ratio {result['sample_bits_per_char'] / result['real_bits_per_char']:.3f})"
    ]
    if "word_share" in result:
        lines.append(
            f"  real words {result['word_share']:.3f} of the samples' words; held-out text {result['real_word_share']:.3f}"
        )
    return "\n".join(lines)
