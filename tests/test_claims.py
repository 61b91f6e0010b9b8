"""`unnoise claims`: the parts with closed forms, and the command end to end on tiny runs."""

import copy
import json

import pytest
import torch

import unnoise
from unnoise.claims import (
    audio,
    decision,
    efficiency,
    generalise,
    geometry,
    one_network,
    one_step,
    projection,
    same_idea,
    spectral,
)
from unnoise.cli import main
from unnoise.paths import make_path
from unnoise.run import Run
from unnoise.samplers import PerSampleNoise, sample_ddim, timesteps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("D,d", [(2, 1), (64, 10), (784, 10)])
def test_the_tangent_share_follows_its_beta_law(D, d):
    share = geometry.tangent_share(D, d, draws=8000)
    mean, var = geometry.beta_law(D, d)
    assert abs(float(share.mean()) - mean) < 4 * (var / 8000) ** 0.5  # 4 standard errors
    assert abs(float(share.var()) / var - 1) < 0.15
    assert mean == pytest.approx(d / D)
    row = geometry.geometry(dims=(D,), ds=(d,), draws=8000)[0]  # what the page's section 3 draws
    assert row["lo"] < row["mean"] < row["hi"] and row["law_mean"] == mean


@pytest.mark.parametrize("D,k", [(64, 10), (32, 3), (100, 50)])
def test_the_dimension_estimator_recovers_a_subspace_from_its_exact_score(D, k):
    basis = torch.linalg.qr(torch.randn(D, k, generator=torch.Generator().manual_seed(k), dtype=torch.float64)).Q
    x0 = basis @ torch.randn(k, dtype=torch.float64)  # a point on the subspace
    estimate, values = geometry.dimension(geometry.subspace_score(basis, 0.01), x0, 0.01)
    assert estimate == k and values[D - k - 1] > 10 * values[D - k]  # the cliff after D - k values


def two_point_denoiser(path, m):
    """The exact E[x0 | x_t] for data +m or -m with equal weights: m tanh(alpha m.x / sigma^2)."""

    def model(x, t):
        a, s = float(path.alpha(t)), float(path.sigma(t))
        x0 = torch.tanh(a * (x.double() @ m) / s**2)[:, None].float() * m.float()
        return x0, (x - a * x0) / s

    return model


def predicted_phi(snr, draws=200_000):
    """Two clones of x_t agree with chance E[p^2 + (1 - p)^2], p = sigmoid(L), L = 2 snr + 2 sqrt(snr) z:
    the exact reverse process ends in class + with the posterior p(+ | x_t), whose log-odds are 2 alpha m.x / sigma^2."""
    z = torch.randn(draws, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = torch.sigmoid(2 * snr + 2 * snr**0.5 * z)
    return float((p.square() + (1 - p).square()).mean())


def test_cloning_on_an_exact_two_class_denoiser_decides_at_the_predicted_time():
    path, D, lam = make_path("vp-cosine"), 8, 9.0
    m = torch.zeros(D, dtype=torch.float64)
    m[0] = lam**0.5  # the data covariance's top eigenvalue is |m|^2 = Lambda
    model, ts, n = two_point_denoiser(path, m), timesteps(path, 60), 400
    noise = PerSampleNoise.for_range(0, 0, n)
    xs = [noise.initial((D,))]
    sample_ddim(model, xs[0], ts, path, noise, callback=lambda i, t, x, x0: xs.append(x))

    def classify(x):
        return (x.double() @ m > 0).long()

    for k in (15, 25, 35, 45):
        snr = float(path.alpha(ts[k]) ** 2 * lam / path.sigma(ts[k]) ** 2)
        measured = decision.phi(model, path, xs[k], float(ts[k]), classify, clones=4, steps=60)
        assert abs(measured - predicted_phi(snr)) < 0.1, (k, snr, measured, predicted_phi(snr))
    t_s = decision.time_at_snr(path, 1 / lam)  # speciation: alpha^2 Lambda = sigma^2
    assert float(path.alpha(t_s) ** 2 * lam / path.sigma(t_s) ** 2) == pytest.approx(1, rel=1e-6)
    assert 0.75 < predicted_phi(1.0) < 0.95  # at the predicted time the class is mostly decided


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    cfg = unnoise.TrainConfig(data="moons", family="flow", steps=150)
    return unnoise.train(cfg, tmp_path_factory.mktemp("claims") / "flow", progress=False)


def test_ddim_is_the_flow_euler_sampler(flow_run):
    for steps in (4, 16):
        a, b = same_idea.flow_euler(flow_run, 500, steps), same_idea.ddim(flow_run, 500, steps)
        assert (a - b).abs().max() <= 1e-5 * a.abs().max()  # float32 rounding: 2e-6 relative here
    ddpm = flow_run.sample(500, "ddpm", 16, seed=0, clip=False)
    assert (ddpm - flow_run.to_data(b)).abs().max() > 0.05  # a stochastic sampler is another computation
    run64 = copy.copy(flow_run)  # the same net in float64: the identity is exact
    run64.net = copy.deepcopy(flow_run.net).double()
    a, b = (f(run64, 500, 16, dtype=torch.float64) for f in (same_idea.flow_euler, same_idea.ddim))
    assert a.dtype == torch.float64 and (a - b).abs().max() <= 1e-6 * a.abs().max()


def test_the_dimension_row_quotes_a_cliff_only_when_most_classes_show_one():
    """Stanczuk's estimate near D means no cliff; one class with a low k must not make the row quote it."""
    base = {
        "geometry": geometry.geometry(dims=(2, 784), draws=200),
        "oracle": {"k": 10, "estimate": 10},
        "D": 784,
        "data": "mnist",
        "size": 28,
    }
    flat = dict(base, digits=[{"sigma": 0.05, "k": {str(c): 156 if c == 7 else 782 for c in range(10)}}])
    row = geometry.row(flat)
    assert "no cliff in the score spectrum for 9 of 10 classes" in row["ours"] and "not shown" in row["verdict"]
    low = dict(base, digits=[{"sigma": 0.05, "k": {str(c): 60 + 10 * c for c in range(10)}}])
    assert "median k from 60 to 150, lowest for digit 0" in geometry.row(low)["ours"]
    assert geometry.plan(64, False) == ((0.02, 0.05, 0.1), 6) and geometry.plan(784, True) == ((0.05,), 1)


def test_a_continuation_grid_is_fine_below_t():
    """continue_from's grid: t itself, then the requested number of steps below it, falling, ending near 0."""
    path = make_path("vp-cosine")
    grid = decision.fine_grid(path, 0.3, 60)
    assert len(grid) == 61 and grid[0] == 0.3 and (grid[1:] < 0.3).all() and (grid.diff() < 0).all()
    assert grid[-1] < 0.01 and len(decision.fine_grid(path, 0.02, 60)) < 25  # only what the 1000 grid holds (~20)


def test_crossing_reads_a_curve_from_noise_down():
    """The first time met going down from noise at which a curve reaches the level."""
    ts, kept = [1.0, 0.8, 0.6, 0.4, 0.2, 0.02], [0.1, 0.1, 0.3, 0.8, 0.95, 0.97]
    assert decision.crossing(ts, kept, 0.5) == 0.4 and decision.crossing(ts, kept, 0.99) is None


def one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_bad_input_is_one_line_and_exit_2(flow_run, tmp_path, capsys, monkeypatch):
    from unnoise import claims

    one_line(capsys, ["claims", "--only", "sculpture", "--out", str(tmp_path)], "unknown claim", "marble", "one-idea")
    monkeypatch.setitem(claims.PLANNED, "speech", "a claim still to build")  # none is planned today
    one_line(capsys, ["claims", "--only", "speech", "--out", str(tmp_path)], "not built yet", "perpendicular")
    one_line(
        capsys,
        ["claims", "--only", "marble", "--runs", str(flow_run.folder), "--out", str(tmp_path)],
        "need a images-diffusion run",
    )


def test_the_efficiency_verdict_names_the_families_that_have_not_learned_yet():
    def family(name, accuracy, tuned):
        return {
            "family": name,
            "train_seconds": 180.0,
            "nfe": 20,
            "ms_batch1": 30.0,
            "accuracy": accuracy,
            "fid_ratio": tuned,
            "tuned_fid_ratio": tuned,
            "seeds": 3,
        }

    table = [family("diffusion", 0.99, 1.1), family("var", 0.95, 3.7)]
    assert efficiency.row({"data": "digits", "table": table})["verdict"].startswith("True at this budget")
    table.append(family("ar-tokens", 0.53, 52.0))  # the 2026-12-01 race's token AR
    verdict = efficiency.row({"data": "digits", "table": table})["verdict"]
    assert verdict.startswith("Half true") and "while ar-tokens did not yet" in verdict


def test_the_one_step_verdict_weighs_quality_and_time_against_var():
    def entry(family, passes, fid, ms):
        return dict(family=family, passes=passes, fid_ratio=fid, accuracy=0.9, ms_batch1=ms, steps=10, train_seconds=1)

    result = {"data": "digits", "budget": 180, "n": 10}
    table = [entry("shortcut", 1, 1.4, 2.0), entry("shortcut", 2, 1.1, 4.0), entry("var", 6, 3.7, 12.0)]
    assert one_step.row({**result, "table": table})["verdict"].startswith("False at this budget")
    table[0]["fid_ratio"] = 5.0
    assert one_step.row({**result, "table": table})["verdict"].startswith("Half true")
    table[0]["ms_batch1"] = 20.0
    assert one_step.row({**result, "table": table})["verdict"].startswith("True at this budget")


def test_the_one_network_verdict_names_each_winner():
    row = dict(bits_kind="exact", passes=1, steps=1, word_share=0.9, real_word_share=0.95)
    table = [
        {**row, "modality": "text", "family": "ar", "bits": 2.0, "quality": 1.3, "ms": 80.0},
        {**row, "modality": "text", "family": "mdlm", "bits": 2.4, "quality": 1.1, "ms": 40.0},
        {**row, "modality": "images", "family": "ar", "bits": 1.0, "quality": 9.0, "ms": 10.0},
        {**row, "modality": "images", "family": "diffusion", "bits": None, "quality": 2.0, "ms": 30.0},
    ]
    verdict = one_network.row({"budget": 60, "n": 4, "steps": 8, "table": table})["verdict"]
    assert "1.20x AR's bits" in verdict
    assert "mdlm wins the sample judge and mdlm is faster" in verdict
    assert "diffusion wins FID and ar speed" in verdict


def test_claims_end_to_end_on_tiny_runs(explained, tmp_path, capsys, monkeypatch):
    _, root = explained
    monkeypatch.setitem(spectral.SETTINGS, "quick", dict(n=8, steps=10, clones=2, points=4, below=20))
    monkeypatch.setitem(decision.SETTINGS, "quick", dict(n=12, steps=10, clones=2, points=3, below=10, held=12))
    monkeypatch.setitem(generalise.SETTINGS, "quick", dict(sizes=(5, 40), seconds=1, n=6, nfe=4))
    monkeypatch.setitem(projection.SETTINGS, "quick", dict(d=2, D=8, rows=500, seconds=1, n=20))
    monkeypatch.setitem(audio.SETTINGS, "quick", dict(seconds=1, judge_steps=20, n=10, nfe=2, lengths=(40,), batch=2))
    monkeypatch.setitem(one_step.SETTINGS, "quick", dict(seconds=1, n=20))
    monkeypatch.setattr(one_step, "METHODS", {"shortcut": (1, 2)})  # VAR's tokenizer alone takes a minute
    monkeypatch.setitem(one_network.SETTINGS, "quick", dict(seconds=1, n=2, steps=4, images=20))
    out = tmp_path / "claims"
    assert main(["claims", "--quick", "--runs", str(root / "pf"), str(root / "id"), "--out", str(out)]) == 0
    saved = json.loads((out / "claims.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [
        "marble",
        "perpendicular",
        "projection",
        "one-idea",
        "progressive-jpeg",
        "generalises",
        "efficiency",
        "one-step",
        "audio",
        "one-network",
    ]
    assert [r["size"] for r in saved["results"]["generalises"]["rows"]] == [5, 40]
    assert Run.load(out / "runs" / "generalises" / "40-1").cfg.subset_part == 1
    assert all(r["verdict"] and r["ours"] and (out / r["figure"]).stat().st_size > 1000 for r in saved["rows"])
    assert saved["results"]["perpendicular"]["oracle"]["estimate"] == 10
    assert [r["ratio"] for r in saved["results"]["projection"]["dimension"]] == list(projection.RATIOS)
    assert "| claim |" in (out / "claims.md").read_text()
    from unnoise.web import sections

    assert sections.claims_table(out)["rows"] == saved["rows"]  # the page's section 8 reads them


def stationary_field(n, size, c, seed):
    """Gaussian images (n, 1, size, size) whose Fourier coefficients have variance c[radius] (orthonormal FFT)."""
    w = torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.fft.ifft2(torch.fft.fft2(w, norm="ortho") * c.sqrt(), norm="ortho").real


def test_clone_variance_per_band_follows_the_exact_posterior_of_a_gaussian_field():
    """For a stationary Gaussian field the exact denoiser is a per-frequency Wiener filter, and clones of x_t keep
    exactly the posterior variance C / (1 + SNR_f): the measured map must match the predicted one."""
    size, path = 8, make_path("vp-cosine")
    r = spectral.radius(size)
    c = (1.0 + r.double()) ** -2.0 * 8  # a power law, 8 at DC
    ring_c = spectral.band_means(c, size)

    def wiener(x, t):
        a, s = float(path.alpha(t)), float(path.sigma(t))
        x0 = torch.fft.ifft2(torch.fft.fft2(x.double(), norm="ortho") * a * c / (a * a * c + s * s), norm="ortho").real
        return x0.float(), ((x.double() - a * x0) / s).float()

    for k, t in enumerate((0.67, 0.4, 0.17)):
        t = torch.tensor(t, dtype=torch.float64)
        x0 = stationary_field(300, size, c, seed=k)
        x_t = (path.alpha(t) * x0 + path.sigma(t) * stationary_field(300, size, torch.ones_like(c), 99 + k)).float()
        measured = spectral.undecided(spectral.clones_at(wiener, path, x_t, float(t), 4, 10 * k), ring_c)
        expected = spectral.predicted(path, [float(t)], ring_c)[0]
        assert torch.allclose(measured, expected, rtol=0.1, atol=0.01), (float(t), measured, expected)


def test_the_spectrum_tools_on_closed_forms():
    white = torch.randn(4000, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(spectral.rapsd(white).mean(0), torch.ones(4, dtype=torch.float64), atol=0.05)
    assert torch.allclose(spectral.band_variance(white), torch.ones(4, dtype=torch.float64), atol=0.05)
    f = torch.arange(1, 9, dtype=torch.float64)
    alpha, residual = spectral.slope((f**-2.0).numpy())
    assert alpha == pytest.approx(2.0) and residual < 1e-9
    path = make_path("rectified")
    assert float(spectral.predicted(path, [0.5], torch.tensor([1.0], dtype=torch.float64))[0, 0]) == pytest.approx(0.5)
    assert spectral.var_levels(8) == ([1, 3, 4, 5], 6)  # VAR 1,2,3,4,6,8: ring r needs p >= 2r
    assert spectral.half_time([0.9, 0.5, 0.1], [1.0, 0.6, 0.2]) == pytest.approx(0.5 - 0.4 * 0.1 / 0.4)
    assert spectral.coarse_first([0.8, 0.5, 0.3]) and not spectral.coarse_first([0.3, 0.5])


def test_generalisation_measures_on_closed_forms():
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(generalise.cosine(x, 3 * x + 2), torch.ones(5, dtype=torch.float64))  # scale, offset
    assert torch.allclose(generalise.cosine(x, -x), -torch.ones(5, dtype=torch.float64))
    best, index = generalise.nearest(x[[3, 0]] * 2 + 0.5, x)
    assert index.tolist() == [3, 0] and torch.allclose(best, torch.ones(2, dtype=torch.float64))
    rows = [{"size": 10, "agreement": 0.3, "memorization": 0.9}, {"size": 100, "agreement": 0.8, "memorization": 0.7}]
    assert generalise.transition(rows) == 100 and generalise.transition(rows[:1]) is None


def test_subsets_of_one_size_are_disjoint_and_bounded(tmp_path):
    from unnoise import data

    train = data.load("digits", "train")
    a, b = data.subset(train, 300, 0), data.subset(train, 300, 1)
    flat = lambda d: {tuple(row.tolist()) for row in d.x.flatten(1)}  # noqa: E731
    assert len(a.x) == len(b.x) == 300 and not (flat(a) & flat(b))
    assert torch.equal(data.subset(train, 300, 1).x, b.x)  # one fixed order
    with pytest.raises(unnoise.UnnoiseError, match=r"needs 1500 rows.*the parts of size 300 are 0..3"):
        data.subset(train, 300, 4)
    assert (
        main(["train", "--data", "digits", "--subset", "700", "--subset-part", "2", "--out", str(tmp_path / "r")]) == 2
    )
    assert not (tmp_path / "r").exists()


def test_the_normal_share_on_a_sphere_in_closed_form():
    x, q = projection.sphere(5, 32, 50)
    assert torch.allclose(x.norm(dim=1), torch.ones(50, dtype=torch.float64))
    assert torch.allclose((x @ q) @ q.T, x)  # inside the (d + 1)-subspace
    inside = torch.randn(50, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64) @ q.T
    tangent = inside - (inside * x).sum(1, keepdim=True) * x  # orthogonal to the radius
    off = torch.randn(50, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    off = off - (off @ q) @ q.T  # orthogonal to the subspace
    assert torch.allclose(
        projection.normal_share(tangent, 1.3 * x, q), torch.zeros(50, dtype=torch.float64), atol=1e-12
    )
    assert torch.allclose(projection.normal_share(x, 1.3 * x, q), torch.ones(50, dtype=torch.float64))
    assert torch.allclose(projection.normal_share(off, x, q), torch.ones(50, dtype=torch.float64))
    noise = torch.randn(20000, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    share = projection.normal_share(noise, x.repeat(400, 1), q)
    assert abs(float(share.mean()) - 27 / 32) < 0.01  # (D - d) / D for isotropic noise


def test_the_projection_gap_tells_a_projection_from_a_step_to_the_centre():
    x, q = projection.sphere(5, 32, 50)
    noise = 0.05 * torch.randn(50, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x_t = x + noise
    exact = projection.nearest_on_sphere(x_t, q)
    assert torch.allclose(projection.projection_gap(exact, x_t, q), torch.zeros(50, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(projection.projection_gap(x_t, x_t, q), torch.ones(50, dtype=torch.float64))
    centre = projection.projection_gap(torch.zeros_like(x_t), x_t, q)
    assert (centre > 2).all() and (projection.normal_share(-x_t, x_t, q) > 0.9).all()  # normal, yet no projection


def test_a_page_without_runs_says_what_each_claim_needs():
    """on_page with no runs: the quick claims that need a run name it; the long ones their time; efficiency, which
    reads the families race, is measured."""
    from unnoise import claims as claim_set

    rows = {r["name"]: r for r in claim_set.on_page({})}
    assert set(rows) == set(claim_set.CLAIMS)
    assert "needs a images-diffusion run" in rows["perpendicular"]["verdict"] and rows["perpendicular"]["later"]
    assert "longer than the page allows" in rows["audio"]["verdict"] and "about 115 s" in rows["audio"]["verdict"]
    assert rows["efficiency"]["ours"] and not rows["efficiency"].get("later")
