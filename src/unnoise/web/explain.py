"""`unnoise explain`: train (or reuse) the runs the page needs, compute its sections, write one HTML file.

Each run plays a role on the page (unnoise.recipes). `--budget quick|full` trains the roles its budget names,
for that many seconds each, into OUT/runs/ROLE, and reuses a role's folder when it already holds a run;
`--runs` uses the given folders instead and trains nothing. Every section of sections.SECTIONS is computed in
turn; one whose runs are missing still appears, with the command that fills it.
"""

import dataclasses
import time
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import atomic_write, load_json, save_json
from ..config import train_arguments
from ..errors import UnnoiseError
from ..metrics.measure import cpu_name
from ..recipes import REFLOW, assign, train_budget
from ..run import Run
from .sections import SECTIONS, Params

PAGE, BUNDLE = "index.html", "bundle.json"


def train_command(run):
    """The command that rebuilds a run: every setting that differs from the defaults, and its budget."""
    cfg, config = run.cfg, load_json(run.folder / "config.json")
    if cfg.coupling == "reflow":
        return f"unnoise reflow FLOW_RUN --pairs {REFLOW['pairs']} --steps {cfg.steps} --out {run.folder}"
    words = ["unnoise train", f"--data {run.trained_on}", f"--family {cfg.family}"]
    words += train_arguments(cfg, run.trained_on)
    if cfg.tokens is not None:
        words.append("--tokens " + ("auto" if str(run.folder) in str(cfg.tokens) else str(cfg.tokens)))
    seconds = config.get("train_seconds")
    words.append(f"--seconds {max(1, round(seconds))}" if config.get("timed") and seconds else f"--steps {cfg.steps}")
    command = " ".join(words + [f"--out {run.folder}"])
    for stage in (cfg.tokens, cfg.latent):  # a stage trained apart (the quick budget's): its command first
        if stage not in (None, "auto") and (Path(stage) / "config.json").exists():
            return f"{train_command(Run.load(stage))} && {command}"
    return command


def stamp(run, metric):
    """What a figure says about where it came from: run, seed, steps, seconds, CPU, metric, command."""
    config = load_json(run.folder / "config.json")
    return {
        "run": str(run.folder),
        "family": run.cfg.family,
        "data": run.trained_on,
        "seed": run.cfg.seed,
        "steps": run.step,
        "train_seconds": config.get("train_seconds"),
        "cpu": cpu_name(),
        "metric": metric,
        "command": train_command(run),
    }


def collect(runs, budget=None, params=None, progress=True):
    """Every section's data for the page, from {role: Run}, in the order of SECTIONS (a section may read the
    ones before it); params: a sections.Params (the defaults when None)."""
    params = params or Params()
    bundle = {"budget": budget, "made": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "runs": {}, "sections": {}}
    out = bundle["sections"]
    for section in tqdm(SECTIONS, desc="explain", disable=not progress, leave=False):
        out[section.key] = section.compute(runs, params, out)
    for role, run in runs.items():
        bundle["runs"][role] = stamp(run, run_metric(run, out))
    return bundle


def run_metric(run, out):
    """The run's quality beside its floor, in words, from what the sections measured."""
    for row in out["debate"].get("table", []):
        if row["run"] == str(run.folder):
            accuracy = "" if row["accuracy"] is None else f"class accuracy {row['accuracy']:.3f}, "
            return (
                f"{accuracy}FID {row['fid']:.2f} beside a held-out floor of {row['floor']:.2f} "
                f"(ratio {row['ratio']:.2f}), n={row['n']}"
            )
    # a diffusion run: its ODE (DDIM) curve at its most NFE; a few-step run (section 7): its one-call figure
    for w2, k in ((out["field"].get("w2"), -1), (out.get("few", {}).get("w2"), 0)):
        for curve in reversed((w2 or {"curves": []})["curves"]):
            if curve["run"] == str(run.folder):
                return (
                    f"W2 {curve['w2'][k]:.3f} at {curve['nfe'][k]} NFE ({curve['name']}) beside a real-vs-real "
                    f"floor of {curve['floor']:.3f} (ratio {curve['w2'][k] / curve['floor']:.2f}), n={w2['n']}"
                )
    for curve in out.get("few", {}).get("images", []):
        if curve["run"] == str(run.folder):
            return f"FID {curve['ratio'][0]:.2f} x its held-out floor at {curve['nfe'][0]} network call(s)"
    quality = out.get("latent", {}).get("quality")
    if quality is not None and quality["run"] == str(run.folder):
        return (
            f"FID {quality['fid']:.2f} beside a held-out floor of {quality['floor']:.2f} (ratio {quality['ratio']:.2f})"
        )
    for panel in out.get("text", {}).get("panels", []):
        if panel["run"] == str(run.folder):
            floor = panel.get("bits_per_char_floor")
            return f"held-out {panel['bits_per_char']:.3f} bits per character ({panel['bits_per_char_kind']})" + (
                f" beside a floor of {floor:.3f}" if floor else ""
            )
    return None


def explain(out="page", runs=None, budget="quick", claims=None, params=None):
    """Write OUT/index.html (and OUT/bundle.json, which `unnoise serve` reads); returns the page's path.
    claims: a folder written by `unnoise claims`; params: a sections.Params (the defaults when None)."""
    from .page import render

    out = Path(out)
    start = time.perf_counter()
    params = dataclasses.replace(params or Params(), **({"claims": claims} if claims else {}))
    roles = assign(runs) if runs else train_budget(budget, out)
    bundle = collect(roles, None if runs else budget, params)
    bundle["seconds"] = round(time.perf_counter() - start, 1)
    bundle["roles"] = {role: str(run.folder.resolve()) for role, run in roles.items()}
    save_json(out / BUNDLE, bundle)
    page = render(bundle, live=False)
    atomic_write(out / PAGE, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return out / PAGE


def for_serving(folders, page_folder):
    """({role: Run}, the live page's HTML) for `unnoise serve`: from --runs, else from an explain folder."""
    from .page import render

    if folders:
        runs = assign(folders)
        return runs, render(collect(runs), live=True)
    path = Path(page_folder) / BUNDLE
    if not path.exists():
        raise UnnoiseError(
            f"{path} does not exist; write the page first (unnoise explain --out {page_folder}) "
            "or name the runs to serve with --runs"
        )
    bundle = load_json(path)
    runs = {role: Run.load(folder) for role, folder in bundle.get("roles", {}).items()}
    return runs, render(bundle, live=True)
