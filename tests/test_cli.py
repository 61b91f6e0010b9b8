"""The `unnoise` command: outputs a person can check, and one-line errors with exit code 2."""

import subprocess
import sys

import numpy as np
import pytest

import unnoise
from unnoise.cli import main


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "run"
    unnoise.train(unnoise.TrainConfig(data="moons", steps=30, width=32, depth=1), folder, progress=False)
    return folder


def fails_cleanly(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("unnoise: error:"), err
    for word in words:
        assert word in err, err


def test_sample_and_data_write_points_in_the_same_units(tmp_path, run_folder, capsys):
    assert main(["sample", str(run_folder), "--n", "64", "--nfe", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert main(["data", "moons", "--n", "64", "--out", str(tmp_path / "r.npy")]) == 0
    samples, real = np.load(tmp_path / "s.npy"), np.load(tmp_path / "r.npy")
    assert samples.shape == real.shape == (64, 2)
    assert abs(real.mean(0) - [0.5, 0.25]).max() < 0.2  # moons' own coordinates
    assert np.abs(samples.mean(0) - real.mean(0)).max() < 1.0


def test_evaluate_json_has_every_metric_and_floor(run_folder, capsys):
    import json

    assert main(["evaluate", str(run_folder), "--n", "200", "--nfe", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("w2", "w2_floor", "swd", "swd_floor", "mmd", "mmd_floor", "n", "nfe", "sample_seconds"):
        assert key in result
    assert result["n"] == 200 and result["nfe"] == 4 and result["w2_floor"] > 0


@pytest.mark.parametrize(
    "argv,words",
    [
        (["train", "--data", "mnist2d", "--out", "x"], ["unknown data set", "moons", "digits", "folder"]),
        (["train", "--data", "no/such/folder", "--out", "x"], ["does not exist"]),
        (["data", "digits", "--split", "fresh", "--out", "x.npy"], ["split", "heldout"]),
        (["train", "--data", "digits", "--size", "7", "--out", "x"], ["--size 7", "multiple of 2"]),
        (
            ["train", "--data", "digits", "--time-density", "beta", "--out", "x"],
            ["time density", "uniform", "logit-normal"],
        ),
        (
            ["train", "--data", "digits", "--schedule", "linear", "--time-density", "logit-normal", "--out", "x"],
            ["continuous-time path", "vp-cosine"],
        ),
        (["train", "--data", "moons", "--size", "8", "--out", "x"], ["image data"]),
        (["train", "--family", "gan", "--out", "x"], ["invalid choice", "diffusion"]),
        (["train", "--schedule", "quadratic", "--out", "x"], ["invalid choice", "linear"]),
        (["train", "--prediction", "noise", "--out", "x"], ["invalid choice", "eps"]),
        (["train", "--family", "flow", "--prediction", "eps", "--out", "x"], ["prediction for flow", "velocity"]),
        (["train", "--steps", "0", "--out", "x"], ["positive integer"]),
        (["train", "--lr", "-1", "--out", "x"], ["lr must be positive"]),
        (["data", "moons", "--n", "-3", "--out", "x.npy"], ["positive integer"]),
        (["data", "moons", "--out", "x.txt"], [".npy or .png"]),
    ],
)
def test_bad_input_without_a_run(argv, words, capsys):
    fails_cleanly(capsys, argv, *words)


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--sampler", "plms"], ["invalid choice", "ddpm", "ddim"]),
        (["--nfe", "0"], ["nfe must be a positive integer"]),
        (["--nfe", "ten"], ["nfe must be a positive integer"]),
        (["--n", "2.5"], ["n must be a positive integer"]),
        (["--sampler", "ddim", "--eta", "1.5"], ["eta must lie in [0, 1]"]),
        (["--spacing", "random"], ["invalid choice", "trailing"]),
        (["--nfe", "200000"], ["nfe = 200000", "at most 100,000"]),
    ],
)
def test_bad_sampling_options(extra, words, run_folder, tmp_path, capsys):
    fails_cleanly(capsys, ["sample", str(run_folder), "--out", str(tmp_path / "s.npy"), *extra], *words)


def test_missing_and_broken_runs(tmp_path, run_folder, capsys):
    fails_cleanly(capsys, ["evaluate", str(tmp_path / "nope")], "does not exist")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((run_folder / "config.json").read_text())
    (broken / "model.safetensors").write_bytes((run_folder / "model.safetensors").read_bytes()[:300])
    fails_cleanly(capsys, ["evaluate", str(broken)], "truncated or corrupted")


@pytest.mark.slow
def test_console_script_exit_code_and_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "unnoise.cli", "sample", str(tmp_path), "--out", "s.npy"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "holds no run" not in done.stderr
    assert "config.json is missing" in done.stderr
