"""The text families on the one transformer: ar (left to right), mdlm (masked) and duo (uniform-state) diffusion.

Closed forms: MDLM's bound with the exact conditionals of a known chain is the sequence's exact log-likelihood, an
ar model that outputs uniform logits scores log2 V exactly, Duo's Gaussian argmax has the marginals its paper gives
and its posterior is Bayes' rule. Then training thresholds on markov, sampling, infilling and bad input.
"""

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from unnoise.cli import main
from unnoise.config import TrainConfig
from unnoise.families import duo, mdlm
from unnoise.families.text import AR_TEXT
from unnoise.nets.transformer import Transformer
from unnoise.pipeline import train
from unnoise.run import Run

from .test_browser import ARGS, CHROMIUM, browser_or_skip, move, open_page, press, serving


def chain_conditionals(start, P, z):
    """p(x_i | the unmasked characters of z) of a first-order chain (start (V,), P (V, V)) by forward-backward,
    masked entries of z (B, L) being -1: log-probs (B, L, V)."""
    B, L = z.shape
    V = len(start)
    seen = torch.where(z[..., None] >= 0, F.one_hot(z.clamp(min=0), V).double(), torch.ones(B, L, V).double())
    forward = [start * seen[:, 0]]
    for i in range(1, L):
        forward.append((forward[-1] @ P) * seen[:, i])
    backward = [torch.ones(B, V, dtype=torch.float64)]
    for i in range(L - 1, 0, -1):
        backward.insert(0, (P @ (seen[:, i] * backward[0]).T).T)
    marginal = torch.stack([f * b for f, b in zip(forward, backward)], 1)  # (B, L, V)
    return (marginal / marginal.sum(-1, keepdim=True)).log()


def small_chain():
    start = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    P = torch.tensor([[0.8, 0.15, 0.05], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64)
    return start, P


def test_mdlm_bound_of_the_exact_conditionals_is_the_exact_likelihood():
    """MDLM's NELBO averages the log-likelihood over unmasking orders; with exact conditionals each order gives log
    p(x) exactly (the chain rule), so the bound equals -log2 p(x) / L up to the Monte Carlo error."""
    start, P = small_chain()
    x = torch.tensor([[0, 0, 1, 2, 2, 1, 0, 0]])
    L = x.shape[1]
    exact = -(start[x[0, 0]].log() + sum(P[x[0, i - 1], x[0, i]].log() for i in range(1, L))) / L / math.log(2)
    generator = torch.Generator().manual_seed(0)
    replicates = torch.stack(
        [mdlm.nelbo_bits(lambda z: chain_conditionals(start, P, z), x, 400, generator)[0] for _ in range(30)]
    )
    stderr = float(replicates.std() / len(replicates) ** 0.5)
    assert abs(float(replicates.mean()) - float(exact)) < 4 * stderr + 1e-9
    assert stderr < 0.02  # the check has teeth: a bound off by a few percent would fail it


def test_mdlm_bound_of_a_wrong_model_is_above():
    """A denoiser that ignores what it sees (the first character's distribution everywhere) scores a run of the
    chain's likeliest step worse than the exact one: about 1 bit per character against 0.4."""
    start, P = small_chain()
    x = torch.zeros(1, 8, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    exact = mdlm.nelbo_bits(lambda z: chain_conditionals(start, P, z), x, 2000, generator)
    blind = mdlm.nelbo_bits(lambda z: start.log().expand(*z.shape, 3), x, 2000, generator)
    assert float(blind) > float(exact) + 0.5


def test_ar_bits_of_a_uniform_model_are_log2_v():
    V, L = 11, 16
    net = Transformer(V, torch.arange(L), width=16, depth=1, heads=2).eval()
    torch.nn.init.zeros_(net.head.weight), torch.nn.init.zeros_(net.head.bias)
    run = SimpleNamespace(net=net)
    windows = torch.randint(0, V, (5, L), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(AR_TEXT.bits(run, windows), torch.full((5,), math.log2(V)), atol=1e-6)


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_duo_gaussian_argmax_has_the_uniform_state_marginals(t):
    """argmax(a_t onehot(x) + s_t eps) = x with probability alpha_t + (1 - alpha_t) / V and any other character with
    (1 - alpha_t) / V, alpha_t = 1 - t (Duo eq. 8)."""
    V, n = 7, 200_000
    x = torch.full((n, 1), 3)
    z = duo.through_gaussian(x, torch.full((n,), t), torch.randn(n, 1, V, generator=torch.Generator().manual_seed(1)))
    share = torch.bincount(z.flatten(), minlength=V).double() / n
    expected = torch.full((V,), t / V, dtype=torch.float64)
    expected[3] += 1 - t
    assert torch.allclose(share, expected, atol=4 * math.sqrt(0.25 / n))


def test_duo_posterior_is_bayes_rule():
    """posterior(z_t, onehot(x)) = q(z_t | z_s) q(z_s | x) / q(z_t | x), by brute force over z_s."""
    V, t, s = 5, 0.7, 0.4
    a_t, a_s = 1 - t, 1 - s

    def q(later, earlier, alpha):  # q(z = later | earlier) of uniform-state noise at keep probability alpha
        return alpha * (later == earlier) + (1 - alpha) / V

    for x in range(V):
        for zt in range(V):
            got = duo.posterior(torch.tensor([[zt]]), F.one_hot(torch.tensor([[x]]), V).double(), t, s)[0, 0]
            want = torch.tensor([q(zt, j, a_t / a_s) * q(j, x, a_s) / q(zt, x, a_t) for j in range(V)])
            assert torch.allclose(got, want.double(), atol=1e-12)


def test_duo_posterior_of_a_prediction_puts_it_into_the_marginals():
    """p(z_s | z_t) = q(z_t | z_s) q(z_s | x_hat) / q(z_t | x_hat), the marginals linear in x_hat (Duo's reverse step):
    brute force over z_s, normalised by the same marginal."""
    V, t, s = 6, 0.5, 0.2
    probs = torch.softmax(torch.randn(V, generator=torch.Generator().manual_seed(2)), -1).double()
    got = duo.posterior(torch.tensor([[2]]), probs[None, None], t, s)[0, 0]
    keep = torch.tensor([(1 - t) / (1 - s) * (j == 2) + (1 - (1 - t) / (1 - s)) / V for j in range(V)]).double()
    marginal = (1 - s) * probs + s / V  # q(z_s | x_hat)
    want = keep * marginal / ((1 - t) * probs[2] + t / V)
    assert torch.allclose(got, want, atol=1e-12) and torch.isclose(want.sum(), torch.tensor(1.0).double())


@pytest.mark.parametrize("t", [0.02, 0.3, 0.7, 0.97])
def test_duos_continuous_time_integrand_is_the_limit_of_a_discrete_steps_kl(t):
    """UDLM's integrand at t equals KL(q(z_s | z_t, x) || p(z_s | z_t)) / dt for a step of length dt -> 0, for every
    pair of clean and noised characters (equal or not) and a random prediction; it is zero at the truth."""
    V, dt = 6, 1e-7
    logits = torch.randn(V, V, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    probs = torch.softmax(3 * logits, -1)  # (V, V): one prediction per noised character, summing to 1 in float64
    x, z = torch.arange(V).repeat_interleave(V)[None], torch.arange(V).repeat(V)[None]  # every (x, z): (1, V V)
    x_hat = probs[z]  # a prediction per noised character (1, V V, V)
    q = duo.posterior(z, F.one_hot(x, V).double(), t, t - dt)  # Bayes' rule (tested above)
    p = duo.posterior(z, x_hat, t, t - dt)  # the model's reverse step
    kl = (torch.special.xlogy(q, q) - q * p.log()).sum(-1) / dt  # (1, V V)
    got = duo.integrand(x_hat.log(), x, z, torch.tensor([t], dtype=torch.float64))
    assert torch.allclose(got, kl, rtol=1e-5, atol=1e-9) and (got > 0).all()
    truth = duo.integrand(F.one_hot(x, V).double().clamp(min=1e-300).log(), x, z, torch.tensor([t]).double())
    assert truth.abs().max() < 1e-9


def test_duos_sampler_with_the_optimal_prediction_draws_the_data_exactly():
    """One character from p0: the loss's optimal x_hat is p0 itself at every (z_t, t) (the reverse step adds z_t's
    own evidence), and then K ancestral steps from uniform characters are the exact reverse process: samples ~ p0."""
    from unnoise.families.text import Request, Uniforms

    p0 = torch.tensor([0.5, 0.3, 0.15, 0.05])
    run = SimpleNamespace(
        cfg=SimpleNamespace(alphabet="abcd", context=1), net=lambda z, c, t: p0.log().expand(*z.shape, 4)
    )
    req = Request(1, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 1.0, None, None, "random")
    n = 20_000
    z = duo.denoise(run, req, 3, Uniforms(0, 0, n))  # (n, 1)
    share = torch.bincount(z.flatten(), minlength=4).double() / n
    assert torch.allclose(share, p0.double(), atol=4 * math.sqrt(0.25 / n))


TINY = dict(data="markov", width=32, depth=1, heads=2, context=32, batch_size=16, lr=3e-3)


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    return {f: train(TrainConfig(family=f, steps=40, **TINY), root / f, progress=False) for f in ("ar", "mdlm", "duo")}


def test_text_runs_save_their_alphabet_and_load(text_runs):
    for family, run in text_runs.items():
        again = Run.load(run.folder)
        assert again.text and again.cfg.alphabet == run.cfg.alphabet and len(again.cfg.alphabet) == 63
        assert again.family.name == family and again.shape == (32,)


@pytest.mark.parametrize("family", ["ar", "mdlm", "duo"])
def test_sample_i_depends_only_on_seed_and_i(text_runs, family):
    run = text_runs[family]
    options = {} if family == "ar" else {"nfe": 8}
    whole = run.sample(3, seed=5, batch_size=3, **options)
    single = torch.cat([run.sample(1, seed=5, first=i, batch_size=1, **options) for i in range(3)])
    assert whole.shape == (3, 32) and torch.equal(whole, single)
    assert not torch.equal(whole[0], whole[1])


@pytest.mark.parametrize("family", ["mdlm", "duo"])
def test_diffusion_fills_the_middle_between_prompt_and_suffix(text_runs, family):
    run = text_runs[family]
    x = run.sample(2, seed=0, nfe=8, prompt="And the ", suffix=" of God", length=24)
    from unnoise.families.text import decode

    for row in x:
        text = decode(run, row)
        assert len(text) == 24 and text.startswith("And the ") and text.endswith(" of God")


def test_ar_continues_a_prompt(text_runs):
    from unnoise.families.text import decode

    x = text_runs["ar"].sample(2, seed=0, prompt="In the", length=20)
    assert all(decode(text_runs["ar"], row).startswith("In the") for row in x) and x.shape == (2, 20)


def test_confident_unmasking_fills_every_position(text_runs):
    x = text_runs["mdlm"].sample(2, seed=0, nfe=4, unmask="confident")
    assert x.shape == (2, 32) and int(x.min()) >= 0


def test_sample_cli_writes_one_paragraph_per_sample(text_runs, tmp_path):
    out = tmp_path / "s.txt"
    assert main(["sample", str(text_runs["mdlm"].folder), "--n", "3", "--nfe", "4", "--out", str(out)]) == 0
    passages = out.read_text(encoding="utf-8")[:-1].split("\n\n")
    assert len(passages) >= 3  # a sample may hold a blank line itself
    assert len(out.read_text(encoding="utf-8")) >= 3 * 32


@pytest.mark.parametrize(
    "args, words",
    [
        (["--suffix", "God"], "--suffix needs a model that sees both sides"),
        (["--length", "33"], "beyond this run's context of 32"),
        (["--prompt", "caf\u00e9"], "never saw"),
        (["--nfe", "8"], "--nfe is the step count of mdlm and duo"),
        (["--unmask", "confident"], "mdlm runs"),
        (["--guidance", "2"], "no classes"),
        (["--sampler", "euler"], "--sampler belongs to diffusion"),
        (["--top-k", "100"], "1..63 (the 63 characters of this run)"),
        (["--temperature", "0"], "temperature must be a finite number > 0"),
    ],
)
def test_bad_sampling_input_is_one_line_and_writes_nothing(text_runs, tmp_path, capsys, args, words):
    out = tmp_path / "s.txt"
    assert main(["sample", str(text_runs["ar"].folder), "--n", "2", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and not out.exists()


def test_text_runs_write_only_txt(text_runs, tmp_path, capsys):
    assert main(["sample", str(text_runs["ar"].folder), "--out", str(tmp_path / "s.png")]) == 2
    assert ".txt" in capsys.readouterr().err


def test_evaluate_json_reports_bits_beside_the_floor(text_runs, capsys):
    import json

    assert main(["evaluate", str(text_runs["mdlm"].folder), "--n", "2", "--nfe", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bits_per_char"] > result["bits_per_char_floor"] > 2.3  # a bound above the chain's exact bits
    assert result["t_samples"] == mdlm.T_SAMPLES and result["bits_per_char_stderr"] > 0
    assert result["judge"] == "the true chain (exact)" and result["real_bits_per_char"] == pytest.approx(2.5, abs=0.1)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"hello\x00world" * 200, "binary"),
        (b"\xff\xfe" + b"ab" * 1000, "UTF-8"),
        ("".join(chr(0x4E00 + i) for i in range(300)).encode() * 4, "distinct characters"),
    ],
)
def test_bad_text_files_are_refused_in_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "book.txt"
    path.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--family", "mdlm", "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and not (out / "config.json").exists()


def test_text_family_refuses_points_and_image_settings(capsys):
    assert main(["train", "--data", "moons", "--family", "mdlm", "--out", "/nonexistent/x"]) == 2
    assert "models text" in capsys.readouterr().err
    assert main(["train", "--data", "kjv", "--family", "duo", "--size", "8", "--out", "/nonexistent/x"]) == 2
    assert "--size is for points and images" in capsys.readouterr().err
    assert main(["train", "--data", "moons", "--context", "8", "--out", "/nonexistent/x"]) == 2
    assert "--context is for text" in capsys.readouterr().err
    for family in ("diffusion", "flow", "var", "meanflow"):
        assert main(["train", "--data", "kjv", "--family", family, "--out", "/nonexistent/x"]) == 2
        assert "for text use ar, mdlm or duo" in capsys.readouterr().err


def test_own_text_file_trains_and_keeps_a_copy(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    cfg = TrainConfig(data=str(path), family="ar", steps=5, width=16, depth=1, heads=2, context=16, batch_size=8)
    run = train(cfg, tmp_path / "run", progress=False)
    assert (run.folder / "text.txt").read_text(encoding="utf-8").startswith("the cat")
    path.unlink()  # the run measures against its own copy
    assert set(Run.load(run.folder).cfg.alphabet) == set("the cat sat on the mat.")
    assert main(["evaluate", str(run.folder), "--n", "2", "--json"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("family, ceiling", [("ar", 3.25), ("mdlm", 4.0)])
def test_markov_training_approaches_the_entropy_rate(tmp_path, family, ceiling):
    """300 steps of a small net get below the unigram (4.3 bits), toward the chain's exact 2.60 bits on these
    windows of 32 (uniform: log2 63 = 5.98): the models use their context. Measured: ar 3.10, mdlm 3.82."""
    cfg = TrainConfig(family=family, steps=300, **{**TINY, "width": 64, "depth": 2, "batch_size": 64})
    run = train(cfg, tmp_path / family, progress=False)
    result = run.family.report(run, 0, 0)
    assert result["bits_per_char_floor"] < result["bits_per_char"] < ceiling


def test_page_section_writes_one_passage_per_order(text_runs):
    from unnoise.web import sections

    runs = {"text-ar": text_runs["ar"], "text-mdlm": text_runs["mdlm"]}
    out = sections.text(runs, sections.Params(text_length=24, text_steps=8, text_samples=2), {})
    ar, masked = out["panels"]
    for panel in (ar, masked):
        frames = panel["frames"]
        assert len(frames) == sections.TEXT_FRAMES and all(len(f) == 24 for f in frames)
        assert frames[0] == sections.MASK * 24 and sections.MASK not in frames[-1]
        hidden = [f.count(sections.MASK) for f in frames]
        assert hidden == sorted(hidden, reverse=True)  # written, never unwritten
        assert panel["bits_per_char_floor"] < panel["bits_per_char"]
    # left to right: every frame is a written prefix, then masks
    assert all(f.rstrip(sections.MASK).count(sections.MASK) == 0 for f in ar["frames"])
    assert ar["calls"] == 24 and masked["calls"] <= 8
    assert out["missing_methods"] is None


@pytest.mark.slow
def test_the_text_section_in_a_browser(text_runs, tmp_path):
    from unnoise.web.explain import explain
    from unnoise.web.sections import MASK, Params

    params = Params(text_length=48, text_steps=8, text_samples=2, quality_n=50, w2_n=100)
    path = explain(tmp_path / "page", [str(text_runs["ar"].folder), str(text_runs["mdlm"].folder)], params=params)
    sync_playwright = browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which(CHROMIUM), headless=True, args=ARGS)
        page, errors, outside = open_page(browser, Path(path).as_uri())
        passages = page.locator("#text-panels pre.passage")
        assert passages.count() == 2 and MASK not in passages.nth(1).text_content()
        move(page, "text-progress", 4)
        assert MASK in passages.nth(0).text_content() and MASK in passages.nth(1).text_content()
        assert page.locator("#text-table tr").count() == 2
        page.set_viewport_size({"width": 390, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 400
        assert errors == [] and outside == []
        assert page.locator("#text-live:not([hidden])").count() == 0  # no live controls offline
        served(browser, Path(path).parent)
        browser.close()


def served(browser, page_folder):
    """The served page writes from the reader's prompt (left to right) and fills between prompt and suffix
    (masked diffusion), each in its own panel."""
    from unnoise.web.sections import MASK

    with serving(page_folder) as url:
        page, errors, outside = open_page(browser, url)
        press(page, "text-live", {"prompt": "And God", "suffix": " the earth", "length": "32", "nfe": "8"}, "calls")
        written = page.locator("#text-panels pre.passage")
        ar, masked = written.nth(0).text_content(), written.nth(1).text_content()
        assert ar.startswith("And God") and len(ar) == 32 and MASK not in ar
        assert masked.startswith("And God") and masked.endswith(" the earth") and len(masked) == 32
        assert "network calls" in page.text_content("#text-live .status")
        assert errors == [] and outside == []


def test_the_server_writes_text_and_refuses_bad_requests_with_4xx(text_runs):
    from fastapi.testclient import TestClient

    from unnoise.web import explain, server

    runs, html = explain.for_serving([str(text_runs["ar"].folder), str(text_runs["mdlm"].folder)], None)
    client = TestClient(server.create_app(runs, html))
    listed = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert listed["text-mdlm"]["kind"] == "text" and "suffix" in listed["text-mdlm"]["inputs"]
    assert "suffix" not in listed["text-ar"]["inputs"]
    r = client.post("/api/sample", json={"run": "text-mdlm", "n": 2, "nfe": 8, "prompt": "In", "suffix": "God",
                                         "length": 20})  # fmt: skip
    assert r.status_code == 200
    assert all(t.startswith("In") and t.endswith("God") and len(t) == 20 for t in r.json()["text"])
    assert r.json()["nfe"] <= 8
    for body, status, words in (
        ({"run": "text-ar", "suffix": "God"}, 400, "--suffix needs a model that sees both sides"),
        ({"run": "text-ar", "length": 33}, 400, "beyond this run's context"),
        ({"run": "text-mdlm", "prompt": "x" * 300}, 422, "prompt"),
        ({"run": "text-mdlm", "n": 9}, 422, "n: must be <= 8"),
        ({"run": "text-mdlm", "frames": True}, 422, "frames"),
        ({"run": "text-ar", "prompt": "\u00e9"}, 400, "never saw"),
    ):
        r = client.post("/api/sample", json=body)
        assert r.status_code == status and words in r.json()["error"], (body, r.json())


def test_commands_for_points_and_images_refuse_a_text_run(text_runs, tmp_path, capsys):
    folder = str(text_runs["ar"].folder)
    assert main(["likelihood", folder]) == 2
    assert "whose bits `unnoise evaluate` reports" in capsys.readouterr().err
    assert main(["figures", folder, "--out", str(tmp_path / "f")]) == 2
    assert "models text" in capsys.readouterr().err
    assert main(["reflow", folder, "--out", str(tmp_path / "r")]) == 2
    assert "reflow needs a flow model" in capsys.readouterr().err
