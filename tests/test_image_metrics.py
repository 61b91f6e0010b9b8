"""Image metrics against closed forms, and the cached classifier against real digits."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from unnoise.data.images import load_images
from unnoise.metrics import classifier as clf
from unnoise.metrics.images import (
    class_matched,
    fid,
    format_report,
    kid,
    memorization_ratio,
    nearest_distances,
    precision_recall,
    report,
    sample_draws,
)


def _exact(n, mean, cov, seed):
    """n points whose sample mean and unbiased sample covariance are exactly mean and cov."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / (n - 1))).T  # sample covariance = I
    return z @ torch.linalg.cholesky(cov).T + mean


def _random_cov(d, seed):
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_fid_of_identical_features_is_zero():
    a = torch.randn(300, 16, dtype=torch.float64)
    assert abs(fid(a, a.clone())) < 1e-6


def test_fid_matches_the_closed_form_between_gaussians():
    """||m1 - m2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with scipy's matrix square root as the reference."""
    d = 6
    m1, m2 = torch.zeros(d, dtype=torch.float64), torch.linspace(-1, 2, d, dtype=torch.float64)
    s1, s2 = _random_cov(d, 1), _random_cov(d, 2)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float((m1 - m2).square().sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * root))
    got = fid(_exact(500, m1, s1, 3), _exact(700, m2, s2, 4))
    assert got == pytest.approx(expected, rel=1e-6)


def _mmd2_unbiased(a, b, degree=3, coef=1.0):
    """Binkowski et al. 2018 eq. (6)-style unbiased MMD^2 with k(x, y) = (x.y / d + coef)^degree, written out."""
    kernel = lambda x, y: (x @ y.T / a.shape[1] + coef) ** degree  # noqa: E731
    m = len(a)
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    return float((kaa.sum() - kaa.trace() + kbb.sum() - kbb.trace()) / (m * (m - 1)) - 2 * kab.mean())


def test_kid_is_the_unbiased_polynomial_mmd_and_near_zero_for_one_distribution():
    gen = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(200, 8, generator=gen, dtype=torch.float64),
        torch.randn(200, 8, generator=gen, dtype=torch.float64),
    )
    mean, _ = kid(a, b, subsets=3)  # subsets of the whole set: exactly one MMD^2
    assert mean == pytest.approx(_mmd2_unbiased(a, b), rel=1e-9)
    near, far = kid(a, b + 0.3, subsets=3)[0], kid(a, b + 1.0, subsets=3)[0]
    assert abs(mean) < 0.1 < near < 1.0 < far  # same law: ~0 (unbiased, so either sign); then it grows with the shift


def test_precision_recall_of_identical_disjoint_and_half_covered_sets():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 5, generator=gen)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    half = torch.cat([real[:100], real[100:] + 100.0])  # half the fakes copy reals, half are far away
    assert precision_recall(real, half)[0] == 0.5
    modes = torch.cat([real[:100] - 50.0, real[100:] + 50.0])  # two far-apart modes of real data
    fake = torch.randn(300, 5, generator=gen) - 50.0  # a model that drops the second mode
    precision, recall = precision_recall(modes, fake)
    assert precision > 0.9 and 0.4 < recall <= 0.5  # the dropped mode is never covered


def test_memorization_ratio_is_zero_for_copies_and_one_for_unseen_images():
    train, _, _ = load_images("digits", "train")
    heldout, _, _ = load_images("digits", "heldout")
    assert memorization_ratio(train[:100], train, heldout) == 0.0
    assert memorization_ratio(heldout, train, heldout) == 1.0
    assert nearest_distances(heldout[:3], heldout[:3]).abs().max() == 0


def test_sample_draws_match_the_real_class_counts():
    labels = torch.arange(1000) % 10  # 100 samples per class
    real = torch.tensor([0] * 36 + [1] * 35 + [2] * 37 + [9] * 2)
    draws = sample_draws(labels, real, 1000, len(real), draws=4)
    for rows in draws:
        assert torch.equal(torch.bincount(labels[rows], minlength=10), torch.bincount(real, minlength=10))
        assert len(set(rows.tolist())) == len(real)  # no sample twice in a draw
    assert not torch.equal(draws[0], draws[1])  # fresh draws, not one repeated
    assert class_matched(labels, torch.tensor([3] * 101), torch.Generator()) is None  # too few 3s
    unlabelled = sample_draws(None, real, 1000, 110, draws=2)  # no labels: plain random draws
    assert [len(rows) for rows in unlabelled] == [110, 110] and len(set(unlabelled[0].tolist())) == 110


@pytest.fixture(scope="module")
def cache(classifier_cache):
    """The session's cache (the digits judge itself ships in the package: nothing is trained for it)."""
    clf.classifier("digits", cache=classifier_cache, verbose=False)
    return classifier_cache


def shipped_files():
    from importlib import resources

    folder = resources.files("unnoise.metrics").joinpath(clf.SHIPPED)
    return sorted((p for p in folder.iterdir() if p.name.startswith("classifier-digits-")), key=lambda p: p.name)


def test_digits_classifier_is_accurate_and_shipped_without_pickles(cache):
    files = shipped_files()
    assert len(files) == 2 and files[0].name.endswith(".json") and files[1].name.endswith(".safetensors")
    info = json.loads(files[0].read_text())
    assert info["heldout_accuracy"] >= 0.988 and info["heldout_n"] == 359 and info["task"] == "classes"  # 0.994 here
    x, y, _ = load_images("digits", "heldout")
    net, again = clf.classifier("digits", cache=cache)
    assert again == info and not any(cache.glob("classifier-digits-*"))  # loaded, not retrained
    assert float((clf.predict(net, x) == y).float().mean()) == pytest.approx(info["heldout_accuracy"])


@pytest.mark.slow
def test_a_corrupt_cache_is_retrained(tmp_path, monkeypatch):
    """Without a shipped judge, a cached file that does not load is trained again, in one line, not a traceback."""
    files = shipped_files()
    for path in files:
        (tmp_path / path.name).write_bytes(
            path.read_bytes()[:100] if path.name.endswith(".safetensors") else path.read_bytes()
        )
    monkeypatch.setattr(clf, "SHIPPED", "no-such-folder")
    trained = []
    monkeypatch.setattr(clf, "train", lambda x, y, k, **kw: trained.append(1) or clf.Classifier(x.shape[1], k))
    _, info = clf.classifier("digits", cache=tmp_path, verbose=False)
    assert trained == [1] and (tmp_path / files[0].name).exists()


@pytest.mark.slow
def test_report_puts_heldout_images_at_their_floor_and_noise_far_from_it(cache):
    x, y, _ = load_images("digits", "heldout")
    real = report(x, y, "digits", cache=cache)
    assert real["n"] == 359 and real["class_accuracy"] == pytest.approx(real["class_accuracy_floor"])
    for name in ("fid", "kid", "precision", "recall", "memorization_ratio"):
        assert real[name] == pytest.approx(real[f"{name}_floor"], rel=1e-6, abs=1e-9), name
    noise = report(torch.rand(200, 1, 8, 8), torch.randint(0, 10, (200,)), "digits", cache=cache)
    assert noise["n"] == 200 and noise["fid"] > 10 * noise["fid_floor"] and noise["kid"] > noise["kid_floor"]
    assert noise["precision"] < noise["precision_floor"] and noise["class_accuracy"] < 0.5
    assert noise["memorization_ratio"] > 1.5
    assert "fid" in format_report(noise)


@pytest.mark.slow
def test_a_folder_without_classes_gets_rotation_features(tmp_path, monkeypatch):
    """No labels: the classifier learns quarter turns instead, and class accuracy is left out."""
    import numpy as np
    from PIL import Image

    gen = np.random.RandomState(0)
    for i in range(40):
        image = np.zeros((8, 8), dtype=np.uint8)
        image[: gen.randint(2, 5), :] = 255  # a bright band at the top: rotations show
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(clf, "STEPS", 60)
    x, _, _ = load_images(str(tmp_path), "heldout", size=8)
    result = report(x, None, str(tmp_path), cache=tmp_path / "cache", verbose=False)
    _, info = clf.classifier(str(tmp_path), cache=tmp_path / "cache")
    assert info["task"] == "rotation" and info["heldout_accuracy"] > 0.9
    assert result["class_accuracy"] is None and result["n"] == 8


def test_the_judge_does_not_depend_on_what_ran_before_it():
    """Dropout draws from torch's global generator: training seeds it, so the judge is the same in any process."""
    x, y, _ = load_images("digits", "train")
    nets = []
    for before in (1, 2):
        torch.manual_seed(before)
        nets.append(clf.train(x, y, 10, steps=20).state_dict())
    assert all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])


@pytest.mark.parametrize("source,size", [("digits", 8), ("mnist", 28)])
def test_the_shipped_judges_match_todays_recipe_and_data(source, size, tmp_path):
    """The judges in the package are found under the key today's data and recipe give, and load without training."""
    from importlib import resources

    x, y, _ = load_images(source, "train", size)
    key = clf._key(source, x, y, "classes", clf.SEED)
    shipped = resources.files("unnoise.metrics").joinpath(clf.SHIPPED)
    assert shipped.joinpath(f"classifier-{key}.safetensors").is_file(), "retrain and ship the judge: its recipe moved"
    net, info = clf.classifier(source, size, cache=tmp_path, verbose=False)  # an empty cache: no training
    assert not list(tmp_path.iterdir()) and info["heldout_accuracy"] > 0.98 and info["steps"] == clf.STEPS


@pytest.mark.slow
def test_the_shipped_emoji_judge_matches_this_render(tmp_path):
    """The emoji judge (rotation, 658 s to train) ships too; its key holds the rendered pixels, so a Pillow that
    draws the emoji otherwise trains its own (skipped here), and this one loads it without training."""
    from importlib import resources

    shipped = resources.files("unnoise.metrics").joinpath(clf.SHIPPED)
    names = [f for f in shipped.iterdir() if f.name.startswith("classifier-emoji-") and f.name.endswith(".json")]
    (info,) = [json.loads(f.read_text()) for f in names]
    assert info["task"] == "rotation" and info["version"] == clf.VERSION and info["steps"] == clf.STEPS
    x, y, _ = load_images("emoji", "train", 32)
    key = clf._key("emoji", x, y, "rotation", clf.SEED)
    if not shipped.joinpath(f"classifier-{key}.safetensors").is_file():
        pytest.skip("this Pillow renders the emoji otherwise than the one the judge was trained on")
    net, loaded = clf.classifier("emoji", 32, cache=tmp_path, verbose=False)
    assert not list(tmp_path.iterdir()) and loaded == info and loaded["heldout_accuracy"] > 0.7


def test_leaving_out_kid_changes_no_other_figure():
    """The page's and benchmarks' brief report is the full one less KID, figure for figure."""
    x, y, _ = load_images("digits", "heldout")
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    full, brief = report(noisy, y, verbose=False), report(noisy, y, verbose=False, kid_too=False)
    assert "kid" not in brief and "kid" in full
    assert brief == {k: v for k, v in full.items() if not k.startswith("kid")}


def test_the_canonical_split_scored_as_a_level_is_the_reports_floor():
    """metrics/level.py scores a split as report() scores the floor: the canonical split, under the shipped judge,
    is the floor of the full held-out set, and its held-out n and class shares are the split's."""
    from unnoise.data.images import load_all, split_mask
    from unnoise.metrics import level

    x, y, _ = load_all("digits")
    judge, _ = clf.classifier("digits", verbose=False)
    floor, accuracy, n = level.resplit_floor(x, y, "classes", 0, clf.SEED, judge)
    held_x, held_y, _ = load_images("digits", "heldout")
    assert n == len(held_x) == 359 and floor == pytest.approx(report(held_x, held_y, verbose=False)["fid_floor"])
    train, held = split_mask(y, seed=level.FIRST_SPLIT_SEED)
    assert int(held.sum()) == n and not torch.equal(held, split_mask(y)[1])  # another draw, the same shares
    assert torch.equal(torch.bincount(y[held]), torch.bincount(held_y))


def test_a_level_is_measured_once_kept_and_scales_the_floor(tmp_path, monkeypatch):
    """compute=True trains SPLITS judges, keeps the level beside the judge's key, and report() quotes the floor
    times its ratio; a kept level is read, not measured again; one of another judge is ignored."""
    from unnoise.metrics import level

    monkeypatch.setattr(clf, "STEPS", 40)  # a quick recipe: its own key, so nothing shipped is found
    found = level.level("digits", cache=tmp_path, compute=True, verbose=False)
    assert len(found["floors"]) == level.SPLITS and found["split_seeds"] == [1000, 1001, 1002]
    assert found["ratio"] == pytest.approx(np.mean(found["floors"]) / found["canonical_floor"])
    kept = tmp_path / f"level-{found['judge']}.json"
    assert kept.is_file() and json.loads(kept.read_text()) == found
    monkeypatch.setattr(level, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert level.level("digits", cache=tmp_path, compute=True) == found
    x, y, _ = load_images("digits", "heldout")
    r = report(x[:200], y[:200], cache=tmp_path, verbose=False, kid_too=False)
    assert r["fid_level"] == pytest.approx(r["fid_floor"] * found["ratio"]) and r["fid_level_splits"] == 3
    assert "real data's expected level" in format_report(r)
    kept.write_text(json.dumps({**found, "judge": "another-judge"}))
    assert level.level("digits", cache=tmp_path) is None
    assert report(x[:200], y[:200], cache=tmp_path, verbose=False, kid_too=False)["fid_level"] is None


@pytest.mark.parametrize("source,size,seeds", [("digits", 8, (0, 1, 2)), ("mnist", 28, (0, 1, 2)), ("emoji", 32, (0,))])
def test_real_data_levels_ship_for_the_built_in_sets(source, size, seeds):
    """benchmarks/floor_noise.py --write kept each built-in set's level in the package, under today's judge keys:
    at least 3 re-splits, their mean over the canonical floor as the ratio, measured at the full held-out n."""
    from importlib import resources

    shipped = resources.files("unnoise.metrics").joinpath(clf.SHIPPED)
    held = len(load_images(source, "heldout", size)[0])
    for seed in seeds:
        key, _ = clf.key_of(source, size, seed=seed)
        path = shipped.joinpath(f"level-{key}.json")
        if source == "emoji" and not path.is_file():
            pytest.skip("this Pillow renders the emoji otherwise than the one the level was measured on")
        found = json.loads(path.read_text())
        assert found["judge"] == key and found["heldout_n"] == held and len(found["floors"]) >= 3
        assert found["ratio"] == pytest.approx(np.mean(found["floors"]) / found["canonical_floor"])
        assert 0.7 < found["ratio"] < 2.0  # a fresh real draw scores near the one draw the floor is
