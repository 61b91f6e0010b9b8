"""The `unnoise` command: one module per command group (train; sample, evaluate, data; reflow, likelihood, figures),
beside the claims, export and page commands' own. Bad input ends in one line on stderr and exit code 2, never a
traceback."""

import sys

from .. import claims, dist, export
from ..errors import UnnoiseError
from ..safety import Stopped
from ..web import commands as web_commands
from . import flow, sample, train
from .common import Parser, positive

__all__ = ["Parser", "build_parser", "main", "positive"]
ELSEWHERE = {  # the commands whose arguments live with their work
    "claims": claims.cmd_claims,
    "export": export.cmd_export,
    "explain": web_commands.cmd_explain,
    "serve": web_commands.cmd_serve,
}


def build_parser():
    parser = Parser(prog="unnoise", description="Train, sample and measure diffusion and flow models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.add_parser(sub)
    sample.add_parsers(sub)
    flow.add_parsers(sub)
    claims.add_parser(sub)
    export.add_parser(sub)
    web_commands.add_explain(sub)
    web_commands.add_serve(sub, positive)
    for name, command in ELSEWHERE.items():
        sub.choices[name].set_defaults(command_fn=command)
    p = sub.add_parser("demo", help="the explainer page from the quick budget: unnoise explain --budget quick")
    p.add_argument("--out", default="page", help="output folder (default page/)")
    p.set_defaults(command_fn=web_commands.cmd_explain, runs=None, budget="quick", claims=None)
    return parser


DISTRIBUTED = ("train", "sample", "evaluate")  # the commands that run under torchrun


def join(args):
    """Under torchrun: check the command runs there, and join the process group (the device's backend)."""
    if not dist.launched():
        return
    if args.command not in DISTRIBUTED:
        raise UnnoiseError(f"{args.command} runs as one process; under torchrun only {', '.join(DISTRIBUTED)} do")
    if args.command != "train":
        args.device = "cpu"  # sampling and measuring run on the CPU
    args.device = dist.init(args.device, args.dist_timeout)


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        join(args)
        args.command_fn(args)
        dist.close()
    except UnnoiseError as err:
        where = f"rank {dist.rank()} of {dist.world()}: " if dist.active() and "rank " not in str(err) else ""
        print(f"unnoise: error: {where}{err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a collective outside dist.py's helpers (DDP's own) failed
        if not (dist.active() and dist.is_lost(err)):
            raise
        print(f"unnoise: error: {dist.lost_message(err)}", file=sys.stderr)
        return 2
    except Stopped as stop:  # SIGINT / SIGTERM: the checkpoint is written
        print(f"unnoise: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:
        print("unnoise: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
