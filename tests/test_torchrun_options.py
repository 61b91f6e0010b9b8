"""Every option of the commands that run under torchrun reaches unnoise through torchrun's own parser (argparse
matches option prefixes before it hands the rest to the module: an unnoise `--n` was ambiguous with torchrun's
--nnodes and --nproc-per-node), and the torchrun commands the README and docs/scale.md show parse as written."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from torch.distributed.run import get_args_parser

import unnoise
from unnoise.cli import DISTRIBUTED, build_parser

ROOT = Path(__file__).resolve().parents[1]
SINGLE_PROCESS = {"--n", "--log"}  # the old spellings torchrun's prefixes shadow, kept for one process


def through_torchrun(argv):
    """What unnoise receives when torchrun parses `argv` (SystemExit -> the error torchrun prints)."""
    try:
        parsed = get_args_parser().parse_args(argv)
    except SystemExit:
        return None
    return [parsed.training_script, *parsed.training_script_args]


def subcommand(name):
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices[name]


@pytest.mark.parametrize("command", DISTRIBUTED)
def test_every_option_of_a_distributed_command_passes_through_torchrun(command):
    positional = [] if command == "train" else ["RUN"]
    options = [o for a in subcommand(command)._actions for o in a.option_strings if o not in ("-h", "--help")]
    assert "-n" in options or command == "train"
    for option in sorted(set(options) - SINGLE_PROCESS):
        args = [command, *positional, option, "1"]
        assert through_torchrun(["--standalone", "--nproc-per-node", "2", "-m", "unnoise", *args]) == [
            "unnoise",
            *args,
        ], f"torchrun takes {option} for one of its own options; give it a name no torchrun option starts with"


def test_the_old_spellings_are_the_ones_torchrun_shadows():
    """The test above would pass for any option it skips: these two must really collide, or the list is stale."""
    for option in SINGLE_PROCESS:
        assert through_torchrun(["--standalone", "-m", "unnoise", "sample", "RUN", option, "1"]) is None


def documented_commands():
    """Every `torchrun ...` command in the README and docs/scale.md, continuation lines joined."""
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "scale.md").read_text()
    text = text.replace("\\\n", " ")
    return [m.group(0).strip().rstrip("`") for m in re.finditer(r"torchrun [^\n`]*-m unnoise [^\n`]*", text)]


def test_the_documented_torchrun_commands_parse_as_written():
    commands = documented_commands()
    assert any(" sample " in c and " -n " in c for c in commands), commands  # the README shows sampling
    for command in commands:
        argv = [w for w in shlex.split(command)[1:] if w != "..."]
        received = through_torchrun(argv)
        assert received is not None and received[0] == "unnoise", command
        if "..." not in command:  # a whole command: unnoise accepts what arrives
            assert build_parser().parse_args(received[1:]).command in DISTRIBUTED


@pytest.mark.slow
def test_the_readme_sampling_command_runs_under_torchrun(tmp_path):
    run = tmp_path / "run"
    unnoise.train(unnoise.TrainConfig(data="moons", steps=4, width=16, depth=1), run, progress=False)
    command = next(c for c in documented_commands() if " sample " in c)
    argv = shlex.split(command.replace("RUN", str(run)).replace("s.png", str(tmp_path / "s.npy")))
    assert argv[:4] == ["torchrun", "--standalone", "--nproc-per-node", "2"], command
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", **dict(__import__("os").environ)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "s.npy").exists() and "Traceback" not in done.stderr
