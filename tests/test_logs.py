"""`--log`: TensorBoard event files read back as TensorBoard reads them, and the flag's bad inputs."""

import io
import sys

import pytest
from PIL import Image

from unnoise import data
from unnoise.cli import main
from unnoise.config import DEFAULTS
from unnoise.logs import POINTS
from unnoise.metrics.points import w2_floor

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read(folder):
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_a_point_run_logs_scalars_its_metric_beside_the_floor_and_a_scatter(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                "moons",
                "--steps",
                "200",
                "--width",
                "64",
                "--prediction",
                "eps",
                "--schedule",
                "linear",
                "--log",
                "tensorboard",
                "--eval-every",
                "100",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    acc = read(out / "logs")
    scalars = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "train/steps_per_second",
        "eval/w2",
        "eval/w2_floor",
    } <= scalars
    loss = [e.value for e in acc.Scalars("train/loss")]
    assert len(loss) == 20 and sum(loss[-5:]) < 0.8 * sum(loss[:5])  # every 10 steps, and falling
    w2 = acc.Scalars("eval/w2")
    assert [e.step for e in w2] == [100, 200] and w2[-1].value < 3 * acc.Scalars("eval/w2_floor")[-1].value
    held = data.load("moons", "heldout", POINTS).x  # the floor: the mean of 4 real draws
    assert acc.Scalars("eval/w2_floor")[-1].value == pytest.approx(w2_floor("moons", held), rel=1e-5)
    assert max(e.value for e in acc.Scalars("train/lr")) == pytest.approx(DEFAULTS["points"]["lr"], rel=0.05)
    picture = Image.open(io.BytesIO(acc.Images("eval/samples")[-1].encoded_image_string))
    assert picture.size[0] > 200


@pytest.mark.slow
def test_an_image_run_logs_fid_beside_its_floor_accuracy_and_a_grid(tmp_path):
    logs = tmp_path / "elsewhere"
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--conditional",
                "--steps",
                "20",
                "--width",
                "16",
                "--log",
                str(logs),
                "--eval-every",
                "20",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    acc = read(logs)
    fid, floor = acc.Scalars("eval/fid")[-1].value, acc.Scalars("eval/fid_floor")[-1].value
    assert fid > floor > 0  # 20 steps: far from the floor
    assert 0 <= acc.Scalars("eval/accuracy")[-1].value <= 1
    image = acc.Images("eval/samples")[-1]
    assert (image.width, image.height) == (80, 80)  # 10 x 10 digits of 8 x 8


def test_log_without_tensorboard_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert main(["train", "--steps", "5", "--log", "tensorboard", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'unnoise[tensorboard]'" in err and len(err.splitlines()) == 1


def test_eval_every_needs_a_log(tmp_path, capsys):
    assert main(["train", "--steps", "5", "--eval-every", "2", "--out", str(tmp_path / "r")]) == 2
    assert "--log" in capsys.readouterr().err
    assert (
        main(["train", "--steps", "5", "--log", "tensorboard", "--eval-every", "0", "--out", str(tmp_path / "s")]) == 2
    )
