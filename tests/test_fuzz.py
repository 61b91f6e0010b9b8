"""Property-based tests (hypothesis): random command lines end in exit 0 or 2 with one line, never a traceback;
every time grid the spacing functions produce gives finite samples on the closed-form Gaussian."""

import contextlib
import io
import math
import os

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unnoise.cli import main  # noqa: E402
from unnoise.errors import UnnoiseError  # noqa: E402
from unnoise.paths import SCHEDULES, make_path  # noqa: E402
from unnoise.samplers import SAMPLERS, PerSampleNoise, steps_for, timesteps  # noqa: E402
from unnoise.schedules import SPACINGS  # noqa: E402

from .gaussian import exact_model  # noqa: E402

# values a hurried or hostile user types: out of range, not numbers, empty, huge, unicode, paths that are not there
NASTY = [
    "0",
    "-1",
    "-0",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "1e999",
    "10000000000000000000000",
    "3.5",
    "٣",
    "ｘ",
    "数字",
    "🙂",
    "../../etc/passwd",
    "/nonexistent/file.npy",
    "a\tb",
    "--",
    "2",
]
NUMBERS = st.one_of(st.sampled_from(NASTY), st.sampled_from(["1", "3", "0.5", "2"]))  # about half valid
NAMES = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(
        ["moons", "digits", "ddim", "flow", "gaussian", "8gaussians", "cosine", "euler", "exact", "train", "diffusers"]
    ),
)

LOGS = st.sampled_from(["tensorboard", "", " ", "logs", "数字", "🙂", "a\tb"])  # relative: inside the scratch folder
OPTIONS = {
    "train": {
        "--data": NAMES,
        "--family": NAMES,
        "--steps": NUMBERS,
        "--batch-size": NUMBERS,
        "--lr": NUMBERS,
        "--width": NUMBERS,
        "--depth": NUMBERS,
        "--seed": NUMBERS,
        "--schedule": NAMES,
        "--source": NAMES,
        "--coupling": NAMES,
        "--subset": NUMBERS,
        "--seconds": NUMBERS,
        "--min-snr-gamma": NUMBERS,
        "--checkpoint-every": NUMBERS,
        "--accumulate": NUMBERS,
        "--log": LOGS,
        "--eval-every": NUMBERS,
    },
    "sample": {
        "--n": NUMBERS,
        "--nfe": NUMBERS,
        "--sampler": NAMES,
        "--eta": NUMBERS,
        "--spacing": NAMES,
        "--seed": NUMBERS,
        "--guidance": NUMBERS,
        "--class": NUMBERS,
        "--s-churn": NUMBERS,
        "--data": NAMES,
    },
    "evaluate": {"--n": NUMBERS, "--nfe": NUMBERS, "--sampler": NAMES, "--data": NAMES, "--guidance": NUMBERS},
    "data": {"--n": NUMBERS, "--split": NAMES, "--seed": NUMBERS, "--size": NUMBERS},
    "likelihood": {"--n": NUMBERS, "--divergence": NAMES, "--probes": NUMBERS, "--data": NAMES},
    "export": {"--format": NAMES},
}
SMALL = {"--steps": "2", "--n": "8", "--nfe": "2", "--probes": "1"}  # where a valid value would take long


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                "moons",
                "--family",
                "flow",
                "--steps",
                "3",
                "--width",
                "8",
                "--depth",
                "1",
                "--out",
                str(folder),
            ]
        )
        == 0
    )
    return folder


def command_lines(run_folder, out):
    @st.composite
    def line(draw):
        command = draw(st.sampled_from(sorted(OPTIONS)))
        chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS[command])), max_size=3, unique=True))
        argv = [command]
        if command in ("sample", "evaluate", "likelihood", "export"):
            argv.append(draw(st.sampled_from([str(run_folder), str(run_folder), "/nonexistent", "🙂", ""])))
        if command == "data":
            argv.append(draw(NAMES))
        for option in chosen:
            value = draw(OPTIONS[command][option])
            small = value.isdigit() and 2 < int(value) < 10**6  # a valid but slow value; huge ones stay
            argv += [option, SMALL.get(option, value) if small else value]
        for option, value in SMALL.items():  # keep valid runs short: small budgets unless drawn
            if option in OPTIONS[command] and option not in chosen:
                argv += [option, value]
        if command in ("train", "sample", "data", "export"):
            argv += ["--out", str(out / {"train": "t", "sample": "s.npy", "data": "d.npy", "export": "e"}[command])]
        return argv

    return line()


@pytest.mark.slow
def test_any_command_line_ends_in_exit_0_or_2_with_one_line(run_folder, tmp_path_factory):
    codes = []

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def check(data):
        out = tmp_path_factory.mktemp("out")
        argv = data.draw(command_lines(run_folder, out))
        err, here = io.StringIO(), os.getcwd()
        os.chdir(out)  # relative paths drawn (--log NAME) land in the scratch folder
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        finally:
            os.chdir(here)
        lines = [line for line in err.getvalue().splitlines() if line.strip() and "\r" not in line]
        assert code in (0, 2), (argv, code)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("unnoise: error:"), (argv, err.getvalue())
        assert "Traceback" not in err.getvalue()
        codes.append(code)

    check()
    assert codes.count(0) >= 10 and codes.count(2) >= 10, (codes.count(0), codes.count(2))  # both kinds drawn


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    sampler=st.sampled_from(sorted(set(SAMPLERS) - {"dopri5"})),
    schedule=st.sampled_from(SCHEDULES),
    spacing=st.sampled_from(SPACINGS),
    nfe=st.integers(1, 300),
    seed=st.integers(0, 2**31),
)
def test_every_grid_gives_finite_samples_on_the_gaussian(sampler, schedule, spacing, nfe, seed):
    path = make_path(schedule)
    try:
        ts = timesteps(path, steps_for(sampler, nfe), spacing)
    except UnnoiseError:
        return  # a refused grid is no grid
    assert torch.isfinite(ts).all() and (ts[1:] < ts[:-1]).all()
    noise = PerSampleNoise.for_range(seed, 0, 64)
    std = math.sqrt(float(path.alpha(path.t_max) ** 2 + path.sigma(path.t_max) ** 2))
    x = noise.initial((2,), dtype=torch.float64) * std
    try:
        out = SAMPLERS[sampler](exact_model(path), x, ts, path, noise)
    except UnnoiseError:
        return  # refused in one line (euler_maruyama where alpha = 0)
    assert torch.isfinite(out).all(), (sampler, schedule, spacing, nfe)
    assert out.abs().max() < 1e4  # finite and not blown up (Euler-Maruyama at 2 NFE: ~90)
