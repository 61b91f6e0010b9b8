"""The `explain` and `serve` subcommands: their arguments here (light), their work imported when run."""

import argparse


def add_explain(sub):
    p = sub.add_parser("explain", help="write the explainer page: one offline HTML file made from your own runs")
    p.add_argument(
        "--runs",
        nargs="+",
        metavar="RUN",
        help="use these run folders (trains nothing); each plays the "
        "role its kind fits: 2D diffusion / flow / OT / reflow, image diffusion, ar, var",
    )
    p.add_argument(
        "--budget",
        default="quick",
        help="what to train when --runs is not given: quick (about 5 minutes on 2 cores: every role for 1-30 s, "
        "digits in the latent section) or full (about 50 minutes: each role for 1-10 minutes, colour emoji in the "
        "latent section; BENCHMARKS.md has both timed)",
    )
    p.add_argument(
        "--claims", metavar="DIR", help="a folder written by `unnoise claims` (default claims/ if it exists)"
    )
    p.add_argument("--out", default="page", help="output folder (default page/): index.html, bundle.json, runs/")


def cmd_explain(args):
    from pathlib import Path

    from ..errors import choose
    from ..recipes import BUDGETS
    from .explain import explain

    if args.runs is None:
        choose("budget", args.budget, tuple(BUDGETS))
    if args.claims and not (Path(args.claims) / "claims.json").exists():
        from ..errors import UnnoiseError

        raise UnnoiseError(
            f"{Path(args.claims) / 'claims.json'} does not exist; write it with "
            f"`unnoise claims --out {args.claims}` or leave --claims out"
        )
    claims = args.claims or ("claims" if Path("claims/claims.json").exists() else None)
    path = explain(args.out, args.runs, args.budget, claims)
    size = path.stat().st_size / 1e6
    print(f"explain: the page is {path} ({size:.1f} MB, self-contained: open it in a browser, no network needed)")


def port_number(text):
    """--port: a whole number in 0..65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"--port takes a number in 0..65535, not {text!r}")
    return int(text)


def add_serve(sub, positive):
    """The `serve` subcommand."""
    p = sub.add_parser(
        "serve",
        help="serve the explainer page with live sampling from trained runs",
        description="A local web server: the page `unnoise explain` wrote, plus a JSON API "
        "(/api/runs, /api/sample) that samples the given runs on demand.",
    )
    p.add_argument("--runs", nargs="+", metavar="RUN", help="run folders to sample from")
    p.add_argument("--page", default="page", metavar="DIR", help="the folder `unnoise explain` wrote (default page/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--queue",
        type=positive("queue"),
        default=8,
        help="requests sampling or waiting at once; more get 503 (default 8)",
    )


def cmd_serve(args):
    from .explain import for_serving
    from .server import serve

    runs, page_html = for_serving(args.runs, args.page)
    serve(runs, page_html, args.host, args.port, queue=args.queue)
