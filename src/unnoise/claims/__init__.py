"""`unnoise claims`: each claim of the discussion as an experiment with numbers, a figure and a verdict.

A claim is a module with NAME, TITLE, ROLES (the runs it needs, as the explainer page names them),
measure(runs, quick) -> numbers (measure(runs, quick, folder) for a claim with TRAINS, which trains its own runs
into OUT/runs/NAME), figure(numbers, path) -> a matplotlib figure, row(numbers) -> the
claims table's row, and QUICK_SECONDS (what --quick took, past training the page's runs). The explainer page
measures the quick ones itself (on_page). The runs are trained (or reused) as `unnoise explain` does
(unnoise.recipes), into OUT/runs/ROLE, or taken from --runs. Every function here works on your own runs from Python as well.
"""

import time
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import atomic_write, save_json
from ..errors import UnnoiseError
from ..recipes import CLAIM_BUDGETS, assign, train_role
from . import (
    audio,
    decision,
    efficiency,
    generalise,
    geometry,
    one_network,
    one_step,
    projection,
    same_idea,
    spectral,
)

CLAIMS = {
    m.NAME: m
    for m in (decision, geometry, projection, same_idea, spectral, generalise, efficiency, one_step, audio, one_network)
}
PAGE_SECONDS = 10  # the page measures a claim itself when it takes at most this long with --quick (QUICK_SECONDS)
PLANNED = {}  # claims of the issue not built yet, and what they will measure: none today


def choose_claims(only):
    """The claim modules to run: all, or the named ones (a planned name says it is not built yet)."""
    if not only:
        return list(CLAIMS.values())
    for name in only:
        if name in PLANNED:
            raise UnnoiseError(f"claim {name!r} ({PLANNED[name]}) is not built yet; choose from {', '.join(CLAIMS)}")
        if name not in CLAIMS:
            raise UnnoiseError(f"unknown claim {name!r}; choose from {', '.join(CLAIMS)}")
    return [CLAIMS[name] for name in only]


def runs_for(chosen, out, given, quick):
    """{role: Run} that the chosen claims need: from --runs, else trained (or reused) under OUT/runs."""
    need = {role for claim in chosen for role in claim.ROLES}
    runs = assign(given) if given else {}
    budget = CLAIM_BUDGETS["quick" if quick else "full"]
    for role in sorted(need - set(runs)):
        if given:
            raise UnnoiseError(
                f"claims {', '.join(c.NAME for c in chosen if role in c.ROLES)} need a {role} run; "
                "add one to --runs, or leave --runs out to train it"
            )
        runs[role] = train_role(role, budget[role], Path(out) / "runs" / role, runs)
    return runs


def measure_claim(claim, runs, quick, out):
    """(numbers, row) of one claim; a missing input gives (None, a row that says so) and the others go on."""
    start = time.perf_counter()
    try:
        extra = {"folder": Path(out) / "runs" / claim.NAME} if getattr(claim, "TRAINS", False) else {}
        numbers = claim.measure(runs, quick, **extra)  # a claim that TRAINS its own runs keeps them there
    except UnnoiseError as err:
        return None, blank_row(claim, f"Not measured: {err}")
    numbers["seconds"] = round(time.perf_counter() - start, 1)
    return numbers, {**claim.row(numbers), "name": claim.NAME}


def blank_row(claim, verdict, **extra):
    """A row with no numbers: only the claim and a verdict saying why."""
    return {"claim": claim.TITLE, "experiment": "", "ours": "", "reference": "", "figure": None, "verdict": verdict,
            "name": claim.NAME, **extra}  # fmt: skip


def claims(out="claims", only=None, quick=False, runs=None):
    """Run the chosen claims; write claims.json, claims.md and one figure per claim into out. Returns the rows."""
    from ..viz import figures2d

    out = Path(out)
    chosen = choose_claims(only)
    trained = runs_for(chosen, out, runs, quick)
    results, rows = {}, []
    for claim in tqdm(chosen, desc="claims", leave=False):
        numbers, row = measure_claim(claim, trained, quick, out)
        if numbers is not None:
            figures2d.save(claim.figure(numbers, out), out / f"{claim.NAME}.png")
            results[claim.NAME] = numbers
            row["figure"] = f"{claim.NAME}.png"
        rows.append(row)
    save_json(
        out / "claims.json",
        {"quick": quick, "runs": {r: str(run.folder) for r, run in trained.items()}, "rows": rows, "results": results},
    )
    atomic_write(out / "claims.md", lambda tmp: Path(tmp).write_text(markdown(rows, quick)))
    return rows


def on_page(runs, seconds=PAGE_SECONDS):
    """The claims table of a page without a claims folder: each claim whose runs are on the page and that takes at
    most `seconds` with --quick is measured now; every other one says the command that measures it and its time."""
    rows = []
    for claim in CLAIMS.values():
        gone = sorted(set(claim.ROLES) - set(runs))
        quick = not getattr(claim, "TRAINS", False) and claim.QUICK_SECONDS <= seconds
        if quick and not gone:
            rows.append(measure_claim(claim, runs, True, None)[1])
            continue
        command = (
            f"`unnoise claims --quick --only {claim.NAME} --out claims` (its own runs, or --runs from this page), "
            "then `unnoise explain --claims claims`"
        )
        why = f"it needs a {', '.join(gone)} run, not on this page" if quick else "longer than the page allows"
        later = {"seconds": claim.QUICK_SECONDS, "name": claim.NAME, "gone": gone if quick else []}  # page.js's words
        rows.append(
            blank_row(claim, f"Not measured here ({why}): about {claim.QUICK_SECONDS} s with {command}", later=later)
        )
    return rows


def markdown(rows, quick):
    """claims.md: one table, the figures below it."""
    lines = [
        "# The claims, measured" + (" (quick)" if quick else ""),
        "",
        "| claim | experiment | ours | reference | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(str(r[k]).replace("|", "/") for k in ("claim", "experiment", "ours", "reference", "verdict"))
            + " |"
        )
    lines += ["", *[f"![{r['name']}]({r['figure']})" for r in rows if r["figure"]], ""]
    if PLANNED:
        lines += ["Not built yet: " + "; ".join(f"{k} ({v})" for k, v in PLANNED.items()), ""]
    return "\n".join(lines)


def add_parser(sub):
    p = sub.add_parser("claims", help="run the discussion's claims as experiments: claims.md, claims.json, figures")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these claims: {', '.join(CLAIMS)}")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small runs and samples (about 7 minutes in all on 2 cores before one-network, which trains four "
        "runs of 60 s more; generalises 2.1 of them, audio 1.9; the full set took about 24 before one-network's "
        "four runs of 300 s)",
    )
    p.add_argument(
        "--runs", nargs="+", metavar="RUN", help="use these runs (2D flow, image diffusion) instead of training them"
    )
    p.add_argument("--out", default="claims", help="output folder (default claims/)")


def cmd_claims(args):
    rows = claims(args.out, args.only, args.quick, args.runs)
    for r in rows:
        print(f"{r['name']}: {r['verdict']}")
    print(f"claims: {Path(args.out) / 'claims.md'}, claims.json and {len(rows)} figures")
