"""Flow matching from a non-Gaussian source (Tong et al. 2023: 8 gaussians -> moons), and a run that reads no path
its config names."""

import json

import numpy as np
import pytest
import torch

from unnoise import data, source
from unnoise.cli import main
from unnoise.config import TrainConfig
from unnoise.errors import UnnoiseError
from unnoise.families import continuous
from unnoise.likelihood import nll
from unnoise.metrics.points import w2
from unnoise.pipeline import train
from unnoise.reflow import generate_pairs
from unnoise.run import Run
from unnoise.samplers import PerSampleNoise

N = 500


def tiny(**kw):
    base = dict(
        data="moons",
        family="flow",
        source="8gaussians",
        steps=500,
        batch_size=256,
        width=64,
        depth=2,
        lr=3e-3,
        warmup=50,
        checkpoint_every=10_000,
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder, threads = tmp_path_factory.mktemp("source"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {c: train(tiny(coupling=c), folder / c, progress=False) for c in ("independent", "ot")}
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def real():
    heldout = data.load("moons", "heldout", N).x
    return heldout, w2(data.load("moons", "fresh", N).x, heldout)


def in_pool(points, pool):
    """Each row of points (model units) is some row of pool: the smallest distance to the pool, per row."""
    return torch.cdist(points.double(), pool.double()).min(1).values


@pytest.mark.slow
def test_samples_start_at_source_points_and_reach_the_data(runs, real):
    run, (heldout, floor) = runs["independent"], real
    x = run.sample(N, "euler", 50)
    first = run.initial(PerSampleNoise.for_range(0, 0, N))  # (N, 2) where each sample starts
    assert in_pool(first, run.source.points).max() == 0  # rows of the source's pool
    one_step = run.sample(N, "euler", 1)  # one Euler step from t = 1 lands on x0_hat
    assert torch.allclose(one_step, run.to_data(run.model()(first, 1.0)[0]), atol=1e-5)
    assert w2(x, heldout) < 1.6 * floor  # measured 1.39 x floor
    assert torch.allclose(run.sample(N, "euler", 50, batch_size=7), x, atol=1e-5)  # sample i: (seed, i) only


@pytest.mark.slow
def test_training_pairs_data_with_source_points_and_ot_shortens_them(runs):
    cfg, train_split = runs["ot"].cfg, data.load("moons", "train")
    start = source.Source(cfg.source, source.pool(runs["ot"].folder, 2), train_split.shift, train_split.scale)
    pool = start.points  # the pool kept in the run folder, in model units
    x0 = train_split.normalize(train_split.x[:256])
    drawn = {
        c: continuous.draw(tiny(coupling=c), {"x0": x0}, torch.Generator().manual_seed(0), start)["eps"]
        for c in ("independent", "ot")
    }
    assert in_pool(drawn["independent"], pool).max() < 1e-6 and in_pool(drawn["ot"], pool).max() < 1e-6
    cost = {c: float((x0 - e).square().sum(1).mean()) for c, e in drawn.items()}
    assert cost["ot"] < 0.5 * cost["independent"]


@pytest.mark.slow
def test_ot_coupling_from_the_source_makes_one_step_work(runs, real):
    heldout, floor = real
    one = {c: w2(r.sample(N, "euler", 1), heldout) / floor for c, r in runs.items()}
    assert one["ot"] < 0.6 * one["independent"]  # measured 1.47 vs 4.63 x floor


@pytest.mark.slow
def test_reflow_pairs_start_from_the_source(runs):
    run = runs["independent"]
    x0, eps, _ = generate_pairs(run, 200)
    assert in_pool(eps, run.source.points).max() < 1e-6
    assert x0.shape == eps.shape == (200, 2)


def test_likelihood_with_a_still_flow_is_the_source_density(tmp_path):
    """A velocity of zero moves nothing, so log p(x) is the 8-gaussians mixture itself (closed form)."""
    cfg = tiny(data="8gaussians", steps=1, lr=1e-12)
    run = train(cfg, tmp_path / "still", progress=False)
    for p in run.net.parameters():
        p.data.zero_()
    got = nll(run, n=200)["nll_nats"]
    x = data.load("8gaussians", "heldout", 200).x.double()
    angle = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
    centers = 2.0 * torch.stack([angle.cos(), angle.sin()], 1)
    sq = (x[:, None] - centers[None]).square().sum(-1)
    logp = torch.logsumexp(-0.5 * sq / 0.01 - torch.log(torch.tensor(2 * torch.pi * 0.01)), 1) - torch.log(
        torch.tensor(8.0)
    )
    assert got == pytest.approx(float(-logp.mean()), abs=1e-3)


def test_a_source_file_is_read_once_then_the_run_keeps_its_pool(tmp_path):
    ring = np.random.RandomState(0).randn(300, 2) * 0.2 + 2.0
    np.save(tmp_path / "blob.npy", ring)
    train(tiny(source=str(tmp_path / "blob.npy"), steps=20), tmp_path / "run", progress=False)
    np.save(tmp_path / "blob.npy", ring[:5] * 0)  # changed, then gone: never read again
    (tmp_path / "blob.npy").unlink()
    run = Run.load(tmp_path / "run")
    assert run.sample(10, "euler", 4).shape == (10, 2)
    resumed = train(None, tmp_path / "run", resume=True, steps=25, progress=False)
    assert resumed.step == 25 and torch.equal(resumed.source.points, run.source.points)
    assert reflow_ok(tmp_path / "run", tmp_path / "reflow")


def reflow_ok(run, out):
    from unnoise.pipeline import reflow

    new = reflow(run, out, pairs=50, steps=2, progress=False)
    return torch.equal(new.source.points, Run.load(run).source.points)


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--data", "moons", "--source", "8gaussians"], "needs --family flow"),
        (["train", "--data", "moons", "--family", "flow", "--source", "nope"], "choose one of gaussian"),
        (["train", "--data", "digits", "--family", "flow", "--source", "moons"], "for point data"),
        (["train", "--data", "digits", "--family", "ar", "--source", "moons"], "not the ar family"),
    ],
)
def test_bad_sources_fail_in_one_line(args, words, tmp_path, capsys):
    assert main(args + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_stochastic_samplers_are_refused_for_a_source_run(runs):
    for sampler in ("ddpm", "euler_ancestral"):
        with pytest.raises(UnnoiseError, match="deterministic sampler"):
            runs["independent"].sample(10, sampler, 10)
    with pytest.raises(UnnoiseError, match="deterministic sampler"):
        runs["independent"].sample(10, "ddim", 10, eta=0.5)
    out = runs["independent"].folder / "s.npy"
    main(["sample", str(runs["independent"].folder), "--n", "10", "--out", str(out)])  # default: euler
    assert np.load(out).shape == (10, 2)


# --- a run folder's paths are never followed -----------------------------------------------------------------


def test_an_image_folder_run_is_measured_only_against_a_folder_you_name(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pics"
    for label in range(2):
        (folder / f"c{label}").mkdir(parents=True)
        for k in range(12):
            Image.fromarray(np.full((8, 8), 60 * label + 5 * k, dtype=np.uint8)).save(folder / f"c{label}" / f"{k}.png")
    run = tmp_path / "run"
    train(TrainConfig(data=str(folder), size=8, steps=2, width=16), run, progress=False)
    assert main(["sample", str(run), "--n", "4", "--nfe", "2", "--out", str(tmp_path / "s.npy")]) == 0  # no data needed
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n", "10", "--nfe", "2"]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("unnoise")]  # past the bar
    assert len(said) == 1 and "outside its run folder" in said[0] and "--data" in said[0]
    assert main(["evaluate", str(run), "--n", "10", "--nfe", "2", "--data", "moons"]) == 2  # a points set: refused
    assert "models images" in capsys.readouterr().err


def test_data_given_for_measuring_keeps_the_run_units(tmp_path, capsys):
    run = tmp_path / "run"
    train(TrainConfig(data="moons", steps=5, width=16, depth=1), run, progress=False)
    own, other = Run.load(run), Run.load(run, "circles")
    assert torch.equal(own.sample(20, "ddim", 3), other.sample(20, "ddim", 3))  # the same samples, units kept
    np.save(tmp_path / "three.npy", np.random.RandomState(0).randn(50, 3))
    assert main(["evaluate", str(run), "--n", "20", "--data", str(tmp_path / "three.npy")]) == 2
    assert "3 numbers per point" in capsys.readouterr().err


def test_a_point_file_run_saved_before_copies_asks_for_its_data(tmp_path, capsys):
    np.save(tmp_path / "mine.npy", np.random.RandomState(1).randn(400, 2))
    run = tmp_path / "run"
    train(TrainConfig(data=str(tmp_path / "mine.npy"), steps=5, width=16, depth=1), run, progress=False)
    (run / "points.npy").unlink()  # as an older unnoise wrote it
    config = json.loads((run / "config.json").read_text())
    del config["units"]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 2
    assert "--data" in capsys.readouterr().err
    assert (
        main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy"), "--data", str(tmp_path / "mine.npy")])
        == 0
    )
    assert main(["train", "--resume", "--out", str(run), "--steps", "6", "--data", str(tmp_path / "mine.npy")]) == 0
    assert (run / "points.npy").is_file()  # the resume made the copy
    assert json.loads((run / "config.json").read_text())["train"]["data"] == str(tmp_path / "mine.npy")


def test_a_point_file_run_keeps_its_own_copy(tmp_path):
    pts = np.random.RandomState(1).randn(400, 3)
    np.save(tmp_path / "mine.npy", pts)
    cfg = TrainConfig(data=str(tmp_path / "mine.npy"), family="flow", steps=20, width=16, depth=1)
    train(cfg, tmp_path / "run", progress=False)
    before = data.load(str(tmp_path / "mine.npy"), "heldout").x
    (tmp_path / "mine.npy").unlink()
    run = Run.load(tmp_path / "run")
    assert torch.equal(run.dataset.x, before)  # the same split, from the copy


def test_a_path_outside_the_run_folder_is_never_read(tmp_path, capsys):
    run = tmp_path / "run"
    train(TrainConfig(data="moons", steps=5, width=16, depth=1), run, progress=False)
    secret = tmp_path / "secret.csv"
    secret.write_text("1,2\n" * 50)
    config = json.loads((run / "config.json").read_text())
    config["train"]["data"] = str(secret)
    (run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", str(run), "--n", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "outside its run folder" in err and "--data" in err and len(err.splitlines()) == 1  # refused before sampling
    assert main(["train", "--resume", "--out", str(run), "--steps", "6"]) == 2  # nor does a resume
    assert "outside its run folder" in capsys.readouterr().err
