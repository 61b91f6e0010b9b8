"""Snapshots (snapshots.py): the EMA kept at fixed shares of training, the loss curve, and loading them back."""

import json

import pytest
import torch

import unnoise
from unnoise import snapshots
from unnoise.cli import main
from unnoise.errors import UnnoiseError

TINY = dict(data="moons", family="flow", steps=100, width=16, depth=1)


def train(folder, hooks=(), callback=None):
    return unnoise.train(unnoise.TrainConfig(**TINY), folder, progress=False, hooks=hooks, callback=callback)


def test_snapshots_hold_the_ema_at_their_steps_and_change_nothing_else(tmp_path):
    seen = {}

    def keep(step, loss, net, ema):
        seen[step] = ({k: v.clone() for k, v in ema.state_dict().items()}, loss)

    run = train(tmp_path / "kept", [snapshots.Snapshots(tmp_path / "kept")], keep)
    index = snapshots.kept(run)
    assert [e["step"] for e in index["kept"]] == [1, 5, 20] and index["steps"] == 100  # 1, 5, 20 % of 100 steps
    for entry in index["kept"]:
        earlier = snapshots.at(run, entry)
        weights = earlier.net.state_dict()
        assert earlier.step == entry["step"] and all(
            torch.equal(weights[k], seen[entry["step"]][0][k]) for k in weights
        )
    assert index["loss"]["step"] == list(range(1, 101)) and index["loss"]["loss"][42] == pytest.approx(seen[43][1])
    plain = train(tmp_path / "plain")  # the hook draws nothing: the run is the same without it
    assert all(torch.equal(plain.net.state_dict()[k], v) for k, v in run.net.state_dict().items())


def test_the_loss_curve_is_binned_to_at_most_its_points(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "LOSS_POINTS", 30)
    run = train(tmp_path / "r", [snapshots.Snapshots(tmp_path / "r")])
    loss = snapshots.kept(run)["loss"]
    assert len(loss["step"]) == len(loss["loss"]) == 25 and loss["step"][-1] == 100  # bins of 4 steps


def test_a_snapshot_naming_another_file_is_refused(tmp_path):
    run = train(tmp_path / "r", [snapshots.Snapshots(tmp_path / "r")])
    index = snapshots.kept(run)
    for bad in ("../model.safetensors", "/etc/passwd", "0.json"):
        with pytest.raises(UnnoiseError, match="names the file"):
            snapshots.at(run, {**index["kept"][0], "file": bad})


def test_the_command_keeps_snapshots_and_refuses_them_on_resume(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", "--data", "moons", "--steps", "40", "--width", "16", "--depth", "1", "--out", str(out)]
    main([*args, "--snapshots"])
    assert json.loads((out / "snapshots" / "snapshots.json").read_text())["steps"] == 40
    kept = sorted(p.name for p in (out / "snapshots").iterdir())
    assert kept == ["0.safetensors", "1.safetensors", "2.safetensors", "snapshots.json"]
    assert main(["train", "--resume", "--steps", "60", "--out", str(out), "--snapshots"]) == 2
    assert "--snapshots starts with a run" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["step"] == 40  # nothing trained, nothing lost


@pytest.mark.parametrize(
    "change",
    [
        lambda index: index.pop("loss"),
        lambda index: index["kept"][0].pop("step"),
        lambda index: index["kept"][0].update(step="ten"),
        lambda index: index["loss"]["loss"].pop(),
    ],
)
def test_an_index_that_snapshots_did_not_write_is_refused_in_one_line(tmp_path, change):
    run = train(tmp_path / "r", [snapshots.Snapshots(tmp_path / "r")])
    path = tmp_path / "r" / "snapshots" / "snapshots.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))
    with pytest.raises(UnnoiseError, match="not a snapshot index"):
        snapshots.kept(run)
