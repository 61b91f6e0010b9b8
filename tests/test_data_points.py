"""2D data sets and point metrics against closed forms."""

import json
import math

import numpy as np
import pytest
import torch

from unnoise import data
from unnoise.data import toy2d
from unnoise.errors import UnnoiseError
from unnoise.metrics.points import mmd, report, swd, w2


def test_moons_lie_on_make_moons_half_circles():
    x, y = toy2d.draw("moons", 4000, 0)
    centre = torch.where(y[:, None] == 0, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5]))
    radius = (x - centre).norm(dim=1)
    assert radius.mean().item() == pytest.approx(1.0, abs=0.01)
    assert radius.std().item() == pytest.approx(0.05, abs=0.01)  # the noise level
    upper = x[y == 0, 1] > 0 - 0.2
    assert upper.float().mean() > 0.99  # outer moon is the upper half
    assert abs(y.float().mean().item() - 0.5) < 0.03  # classes drawn at random


def test_eight_gaussians_components():
    x, y = toy2d.draw("8gaussians", 8000, 0)
    angle = y.double() * 2 * math.pi / 8
    centres = 2 * torch.stack([angle.cos(), angle.sin()], 1).float()
    assert (x - centres).std().item() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("name", data.toy2d.NAMES)
def test_splits_are_seeded_and_independent(name):
    a = data.load(name, "heldout", 500)
    assert torch.equal(a.x, data.load(name, "heldout", 500).x)
    assert not torch.equal(a.x, data.load(name, "fresh", 500).x)
    z = a.normalize(data.load(name, "train").x)
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0) - 1).abs().max() < 1e-3
    assert torch.allclose(a.denormalize(a.normalize(a.x)), a.x, atol=1e-5)


def test_unknown_data_set_names_the_choices():
    with pytest.raises(UnnoiseError, match="moons"):
        data.load("mnist2d")


def test_w2_of_a_shift_is_the_shift_length():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    assert w2(x, x + torch.tensor([0.3, 0.4])) == pytest.approx(0.5, abs=1e-6)
    assert w2(x, x[torch.randperm(300)]) == pytest.approx(0.0, abs=1e-6)


def test_swd_of_a_shift_and_mmd_of_identical_sets():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    # A shift d projects onto direction u as <d, u>; averaged over the circle, E<d,u>^2 = |d|^2 / 2.
    assert swd(x, x + torch.tensor([1.0, 0.0]), projections=4000) == pytest.approx(math.sqrt(0.5), rel=0.03)
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-6)
    assert mmd(x, x + 3) > 0.5


def test_report_puts_every_metric_beside_its_floor():
    held, fresh = data.load("moons", "heldout", 400).x, data.load("moons", "fresh", 400).x
    good = report(fresh, held, data.load("moons", "fresh", 400, seed=9).x)
    bad = report(held + 0.5, held, fresh)
    assert 0.5 < good["w2_ratio"] < 2 and bad["w2_ratio"] > 3
    assert set(good) >= {"w2", "w2_floor", "swd", "swd_floor", "mmd", "mmd_floor", "n"}
    assert np.isclose(bad["w2"] / bad["w2_floor"], bad["w2_ratio"])


@pytest.mark.slow
def test_a_point_file_of_any_dimension_trains_samples_and_is_measured(tmp_path, capsys):
    import numpy as np

    import unnoise
    from unnoise.cli import main
    from unnoise.data import points_file

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5)).astype(np.float32) * [1, 2, 0.5, 1, 3] + [0, 1, 2, 3, 4]
    np.save(tmp_path / "mine.npy", x)
    parts = {s: points_file.part(str(tmp_path / "mine.npy"), s) for s in ("train", "heldout", "fresh")}
    assert [len(p) for p in parts.values()] == [600, 200, 200]
    rows = [{tuple(r.tolist()) for r in p} for p in parts.values()]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])  # disjoint
    run = unnoise.train(
        unnoise.TrainConfig(data=str(tmp_path / "mine.npy"), steps=300, width=64, depth=2),
        tmp_path / "run",
        progress=False,
    )
    assert run.cfg.dim == 5 and run.shape == (5,) and run.sample(7, "ddim", 10).shape == (7, 5)
    assert main(["evaluate", str(tmp_path / "run"), "--sampler", "ddim", "--nfe", "20", "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 200 and result["w2_ratio"] < 1.5  # a Gaussian in 5D, learned
    assert main(["sample", str(tmp_path / "run"), "--n", "50", "--out", str(tmp_path / "pairs.png")]) == 0
    assert (tmp_path / "pairs.png").stat().st_size > 5000


def test_tables_with_and_without_a_header_and_one_dimension(tmp_path):
    import numpy as np

    from unnoise import data
    from unnoise.cli import main

    values = np.arange(40, dtype=float).reshape(20, 2)
    (tmp_path / "h.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in values))
    (tmp_path / "n.txt").write_text("\n".join(f"{a} {b}" for a, b in values))
    (tmp_path / "one.csv").write_text("\n".join(str(v) for v in range(30)))
    for name in ("h.csv", "n.txt"):
        got = data.load(str(tmp_path / name), "train").x
        assert got.shape == (12, 2) and {tuple(r) for r in got.tolist()} <= {tuple(r) for r in values.tolist()}
    assert data.load(str(tmp_path / "one.csv"), "heldout").x.shape == (6, 1)
    assert main(["data", str(tmp_path / "one.csv"), "--out", str(tmp_path / "one.png")]) == 0


@pytest.mark.parametrize(
    "content,words",
    [
        ("x,y\n" + "\n".join(f"{i},{i}" for i in range(12)) + "\n3,nan\n4,inf\n", "rows 13, 14 hold NaN or infinity"),
        ("\n".join(f"{i},{i}" for i in range(5)), "has 5 rows of 2 numbers; need at least 10"),
        ("1,2\n3,4,5\n" + "\n".join(f"{i},{i}" for i in range(12)), "row 2 has 3 columns"),
        ("1,2\n3,x\n", "row 2 is not numbers"),
    ],
)
def test_bad_point_files_are_one_line_with_the_row(tmp_path, capsys, content, words):
    from unnoise.cli import main
    from unnoise.data import points_file

    points_file.read.cache_clear()
    (tmp_path / "bad.csv").write_text(content)
    assert main(["train", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "r").exists()


def test_a_pickled_npy_is_refused_without_running_it(tmp_path, capsys):
    import numpy as np

    from unnoise.cli import main

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 20, dtype=object), allow_pickle=True)
    assert main(["data", str(tmp_path / "obj.npy"), "--out", str(tmp_path / "o.png")]) == 2
    assert "not a readable .npy array of numbers" in capsys.readouterr().err
