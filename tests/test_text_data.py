"""Character-level text data (data/text.py) and its judges (metrics/text.py): kjv, your own .txt, the markov
chain's exact entropy, the Kneser-Ney n-gram judge and the real-word share."""

import math

import pytest
import torch

from unnoise.data import text
from unnoise.errors import UnnoiseError
from unnoise.metrics import text as judges

PROSE = "It was the best of times, it was the worst of times; it was the age of wisdom.\n" * 20  # 1620 chars


def h2(p):
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def repeat_chain(r, s):
    """An order-2 chain on {0, 1}: the next symbol repeats the last one with probability r after a pair of equal
    symbols, s after a pair of different ones."""
    table = torch.zeros(2, 2, 2, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            stay = r if a == b else s
            table[a, b, b], table[a, b, 1 - b] = stay, 1 - stay
    return text.Chain(table)


def random_chain(vocab, seed):
    return text.Chain(torch.rand(vocab, vocab, vocab, generator=torch.Generator().manual_seed(seed)) + 0.05)


# --- kjv ----------------------------------------------------------------------------------------------------------


def test_kjv_text_alphabet_and_split():
    bible = text.kjv()
    assert 4_100_000 < len(bible) < 4_200_000
    assert bible.startswith("In the beginning God created the heaven and the earth.\n")
    chars = text.alphabet(bible)
    assert len(chars) == 63 and "\n" in chars and "’" in chars
    train, heldout = text.split(bible)
    assert len(train) + len(heldout) == len(bible)
    assert 0.08 < len(heldout) / len(bible) < 0.12
    ids = text.encode(heldout, chars)
    assert ids.dtype == torch.long and ids.shape == (len(heldout),)
    assert text.decode(ids, chars) == heldout


def test_load_kjv():
    data = text.load("kjv")
    assert data.alphabet == text.alphabet(text.kjv()) and data.chain is None
    assert len(data.train) + len(data.heldout) == len(text.kjv())
    assert {"god", "beginning", "lord’s"} <= data.words and "the" in data.words


# --- split, alphabet, ids ----------------------------------------------------------------------------------------


def test_split_blocks_closed_form():
    whole = "".join(chr(65 + i % 26) for i in range(2050))  # block 102; 20 full blocks and a partial one
    assert text.block_size(len(whole)) == 102
    train, heldout = text.split(whole)
    assert heldout == whole[918:1020] + whole[1938:2040]
    assert train == whole[:918] + whole[1020:1938] + whole[2040:]
    assert text.split("abc") == ("abc", "")
    assert text.block_size(10**9) == 65536


def test_encode_refuses_unknown_characters():
    with pytest.raises(UnnoiseError, match=r"2 characters not in the alphabet: 'x', 'y'"):
        text.encode("abxyab", "ab")
    assert text.encode("", "ab").shape == (0,)
    assert text.decode(torch.tensor([1, 0, 2]), "abc") == "bac"


# --- your own text -----------------------------------------------------------------------------------------------


def refusal(tmp_path, case):
    """A path that read_file must refuse, and a piece of the message that names the problem."""
    path = tmp_path / "book.txt"
    if case == "missing":
        return tmp_path / "none.txt", "does not exist"
    if case == "empty":
        path.write_text("  \n\t\n")
        return path, "empty"
    if case == "nul":
        path.write_bytes(PROSE.encode() + b"\0rest")
        return path, "NUL byte"
    if case == "utf8":
        path.write_bytes(PROSE.encode() + b"\xff\xfe")
        return path, "not valid UTF-8"
    if case == "vocab":
        path.write_text("".join(chr(0x4E00 + i) for i in range(300)) * 4, encoding="utf-8")
        return path, "300 distinct characters, more than the limit of 256"
    if case == "short":
        path.write_text("too short")
        return path, "9 characters, fewer than the minimum of 1000"
    if case == "folder":
        (tmp_path / "a.txt").write_text(PROSE)
        (tmp_path / "b.png").write_bytes(b"png")
        return tmp_path, "not .txt files"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "empty", "nul", "utf8", "vocab", "short", "folder"])
def test_read_file_refusals(tmp_path, case):
    path, message = refusal(tmp_path, case)
    with pytest.raises(UnnoiseError, match=message) as caught:
        text.read_file(path)
    assert "\n" not in str(caught.value)


def test_read_file_refuses_large_files_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text(PROSE)
    monkeypatch.setattr(text, "MAX_BYTES", 1000)
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read before the size check"))
    with pytest.raises(UnnoiseError, match=r"big.txt has 1,\d{3} bytes, more than the limit"):
        text.read_file(path)


def test_read_folder_joins_sorted_files_and_loads(tmp_path):
    (tmp_path / "b.txt").write_text("Second part.\r\n" * 80)
    (tmp_path / "a.txt").write_text(PROSE)
    assert text.read_file(tmp_path) == PROSE + "\n" + "Second part.\n" * 80
    data = text.load(str(tmp_path))
    assert data.alphabet == text.alphabet(PROSE + "Second part.\n")
    assert text.decode(data.train, data.alphabet) + text.decode(data.heldout, data.alphabet) != ""
    assert data.words >= {"it", "was", "second"} and data.chain is None


def test_is_text_tells_prose_from_numeric_tables(tmp_path):
    prose, table, commas, folder = tmp_path / "p.TXT", tmp_path / "t.txt", tmp_path / "c.txt", tmp_path / "f"
    prose.write_text(PROSE)
    table.write_text("x y\n1.0 2.0\n-3 4e-2\n")
    commas.write_text("1.5,2\n3,4\n")
    folder.mkdir()
    assert text.is_text_file(prose) and not text.is_text_file(table) and not text.is_text_file(commas)
    assert not text.is_text_file(tmp_path / "missing.txt") and not text.is_text_file(tmp_path / "p.csv")
    assert not text.is_text_folder(folder)
    (folder / "a.txt").write_text(PROSE)
    assert text.is_text_folder(folder) and text.is_text(folder) and text.is_text("kjv")
    (folder / "x.jpg").write_bytes(b"jpg")
    assert not text.is_text_folder(folder)
    with pytest.raises(UnnoiseError, match="unknown text data set 'kvj'; choose one of kjv, markov"):
        text.load("kvj")
    with pytest.raises(UnnoiseError, match="is not text"):
        text.load(str(table))


def test_word_share():
    assert text.word_list("Don’t stop, O'Brien 3 times!") == ["don’t", "stop", "o'brien", "times"]
    known = frozenset({"the", "lord", "said"})
    assert judges.word_share("The LORD saud, thee", known) == 0.5
    assert judges.word_share(["the lord", "xq zz", "said"], known) == 3 / 5
    assert judges.word_share("123 ... !", known) == 0.0


# --- the markov chain --------------------------------------------------------------------------------------------


def test_kjv_chain_is_normalised_and_pi_stationary():
    chain = text.chain()
    assert chain.table.shape == (63, 63, 63) and chain.table.dtype == torch.float64
    torch.testing.assert_close(chain.table.sum(-1), torch.ones(63, 63, dtype=torch.float64), rtol=0, atol=1e-12)
    moved = torch.einsum("ab,abc->bc", chain.pi, chain.table)
    assert (moved - chain.pi).abs().max() < 1e-10 and abs(float(chain.pi.sum()) - 1) < 1e-12
    assert 2.0 < chain.entropy_rate < 3.0 and chain.window_bits(256) > chain.entropy_rate


def test_entropy_rate_and_window_bits_closed_form():
    r, s = 0.9, 0.3
    chain = repeat_chain(r, s)
    same, differ = s / (2 * (1 - r + s)), (1 - r) / (2 * (1 - r + s))  # pi of 00 and 11, of 01 and 10
    torch.testing.assert_close(chain.pi, torch.tensor([[same, differ], [differ, same]], dtype=torch.float64))
    rate = (s * h2(r) + (1 - r) * h2(s)) / (1 - r + s)
    assert chain.entropy_rate == pytest.approx(rate, abs=1e-12)
    pairs = -2 * same * math.log2(same) - 2 * differ * math.log2(differ)
    assert chain.window_bits(10) == pytest.approx((pairs + 8 * rate) / 10, abs=1e-12)


def test_log2_prob_by_hand():
    r, s = 0.9, 0.3
    chain = repeat_chain(r, s)
    ids = torch.tensor([[0, 0, 1, 1, 0], [1, 0, 0, 0, 0]])
    same = s / (2 * (1 - r + s))
    differ = (1 - r) / (2 * (1 - r + s))
    first = math.log2(same) + math.log2(1 - r) + math.log2(s) + math.log2(1 - r)  # 00 -> 1 -> 1 -> 0
    second = math.log2(differ) + math.log2(s) + 2 * math.log2(r)  # 10 -> 0 -> 0 -> 0
    torch.testing.assert_close(chain.log2_prob(ids), torch.tensor([first, second], dtype=torch.float64))
    torch.testing.assert_close(chain.bits_per_char(ids), -torch.tensor([first, second], dtype=torch.float64) / 5)
    assert judges.sample_bits_markov(chain, ids) == pytest.approx(-(first + second) / 10)


def test_sampled_bits_match_window_bits():
    chain = random_chain(5, seed=3)
    ids = chain.sample(64, 4096, seed=0)  # (64, 4096)
    assert ids.shape == (64, 4096) and ids.dtype == torch.long and 0 <= ids.min() and ids.max() < 5
    bits = chain.bits_per_char(ids)
    error = float(bits.std()) / 8
    assert abs(float(bits.mean()) - chain.window_bits(4096)) < 4 * error
    assert torch.equal(chain.sample(64, 100, seed=0), ids[:, :100])  # a prefix of the same draw
    assert not torch.equal(chain.sample(64, 100, seed=1), ids[:, :100])


@pytest.mark.slow
def test_markov_data_set():
    data = text.load("markov")
    assert data.train.shape == (text.CHAINS * text.CHAIN_LENGTH,) and data.heldout.shape == (16 * text.CHAIN_LENGTH,)
    assert data.alphabet == text.alphabet(text.kjv()) and data.chain is text.chain() and "god" in data.words
    assert torch.equal(data.heldout.reshape(16, -1)[:, :300], data.chain.sample(16, 300, seed=1))
    assert torch.equal(text.markov_text("fresh").reshape(16, -1)[:, :300], data.chain.sample(16, 300, seed=2))
    rows = data.heldout.reshape(-1, 256)
    assert judges.sample_bits_markov(data.chain, rows) == pytest.approx(data.chain.window_bits(256), rel=0.01)
    ngram = judges.NGram(data.train, len(data.alphabet), order=3)
    assert ngram.bits_per_char(rows) == pytest.approx(data.chain.entropy_rate, rel=0.05)


# --- the n-gram judge --------------------------------------------------------------------------------------------


def test_ngram_probabilities_sum_to_one():
    ids = random_chain(4, seed=1).sample(1, 5000, seed=0).reshape(-1)
    ngram = judges.NGram(ids, 4, order=3)
    for prefix in ([], [2], [1, 3], [0, 1, 2, 3], [3, 3, 3]):  # every context length, seen or not
        rows = torch.tensor([prefix + [w] for w in range(4)])
        probs = torch.from_numpy(ngram.log2_probs(rows)[:, -1]).exp2()
        assert float(probs.sum()) == pytest.approx(1.0, abs=1e-12) and float(probs.min()) > 0


@pytest.mark.parametrize("vocab, order", [(4, 6), (8, 3)])
def test_ngram_on_iid_uniform_approaches_log2_vocab(vocab, order):
    generator = torch.Generator().manual_seed(0)
    train = torch.randint(0, vocab, (400_000,), generator=generator)
    heldout = torch.randint(0, vocab, (64, 256), generator=generator)
    bits = judges.NGram(train, vocab, order).bits(heldout)
    assert bits.shape == (64,) and bits.dtype == torch.float64
    assert float(bits.mean()) == pytest.approx(math.log2(vocab), rel=0.02)


def test_ngram_on_periodic_text_is_near_zero():
    period = torch.tensor([0, 3, 1, 4, 1, 5, 2, 6])
    ids = period.repeat(2000)
    assert judges.NGram(ids, 7).bits_per_char(ids[:4096].reshape(16, 256)) < 0.1


def test_ngram_learns_an_order_2_chain():
    chain = random_chain(6, seed=2)
    train, heldout = chain.sample(32, 8192, seed=0).reshape(-1), chain.sample(32, 256, seed=1)
    assert judges.NGram(train, 6, order=3).bits_per_char(heldout) == pytest.approx(chain.entropy_rate, rel=0.05)


def test_ngram_refuses_bad_settings():
    with pytest.raises(UnnoiseError, match="order 1..7"):
        judges.NGram(torch.zeros(100, dtype=torch.long), 300)
    with pytest.raises(UnnoiseError, match="ids in 0..3"):
        judges.NGram(torch.full((100,), 5), 4)
