"""`unnoise explain`: train (or reuse) the runs the page needs, compute its sections, write one HTML file.

Each run plays a role on the page (unnoise.recipes). `--budget quick|full` trains the roles its budget names,
for that many seconds each, into OUT/runs/ROLE, and reuses a role's folder when it already holds a run;
`--runs` uses the given folders instead and trains nothing. A section whose runs are missing still
appears, with the command that fills it.
"""

import time
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import atomic_write, load_json, save_json
from ..claims import geometry
from ..config import TrainConfig
from ..errors import UnnoiseError
from ..metrics import measure
from ..metrics.measure import cpu_name
from ..recipes import REFLOW, assign, train_budget
from ..run import Run
from . import sections

PAGE, BUNDLE = "index.html", "bundle.json"


def train_command(run):
    """The command that rebuilds a run: every setting that differs from the defaults, and its budget."""
    cfg, config = run.cfg, load_json(run.folder / "config.json")
    if cfg.coupling == "reflow":
        return f"unnoise reflow FLOW_RUN --pairs {REFLOW['pairs']} --steps {cfg.steps} --out {run.folder}"
    default = TrainConfig(data=run.trained_on, family=cfg.family)
    words = ["unnoise train", f"--data {run.trained_on}", f"--family {cfg.family}"]
    for name in (
        "prediction",
        "schedule",
        "batch_size",
        "lr",
        "warmup",
        "ema",
        "width",
        "depth",
        "heads",
        "coupling",
        "seed",
        "size",
        "channels",
        "patch",
        "levels",
        "scales",
        "codebook",
        "min_snr_gamma",
        "sigma_data",
        "subset",
        "subset_part",
        "source",
        "time_density",
    ):
        value = getattr(cfg, name)
        if value != getattr(default, name) and value is not None:
            words.append(f"--{name.replace('_', '-')} {value}")
    if cfg.tokens is not None:
        words.append("--tokens " + ("auto" if str(run.folder) in str(cfg.tokens) else str(cfg.tokens)))
    if cfg.conditional:
        words.append("--conditional")
    seconds = config.get("train_seconds")
    words.append(f"--seconds {max(1, round(seconds))}" if config.get("timed") and seconds else f"--steps {cfg.steps}")
    return " ".join(words + [f"--out {run.folder}"])


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


def missing(roles, budget="full"):
    """The command that fills a section whose runs are missing."""
    return (
        f"unnoise explain --budget {budget} --out page (trains {', '.join(roles)}), or train them and pass "
        "them with --runs"
    )


def collect(runs, budget=None, claims=None, progress=True):
    """Every section's data for the page, from {role: Run}."""
    get = runs.get
    pts, img = get("points-diffusion"), get("images-diffusion")
    methods = [
        (name, run, sampler)
        for name, run, sampler in (
            ("reverse SDE (DDPM)", pts, "ddpm"),
            ("probability-flow ODE (DDIM)", pts, "ddim"),
            ("flow matching", get("points-flow"), "euler"),
            ("OT-CFM", get("points-ot"), "euler"),
            ("reflow", get("points-reflow"), "euler"),
        )
        if run is not None
    ]
    if pts is not None and pts.cfg.family != "diffusion":  # an edm run: its ODE only
        methods = [(name, run, "heun" if run is pts else s) for name, run, s in methods if s != "ddpm"]
    steps = tqdm(total=7, desc="explain", disable=not progress, leave=False)
    bundle = {
        "budget": budget,
        "made": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "runs": {},
        "sections": {},
    }
    out = bundle["sections"]

    def done(name, value):
        out[name] = value
        steps.update()

    done("noise", sections.noise(pts, img))
    done("denoise", sections.denoise(pts, img))
    done(
        "why",
        {
            "geometry": geometry.geometry(dims=(2, 4, 16, 64, 256, 1024), ds=(1,), draws=2000),
            "tangent": sections.tangent_share(img.cfg.data) if img is not None and img.cfg.size <= 16 else None,
        },
    )
    arrows_run = next((run for _, run, _ in methods), None)  # the diffusion run, else the first flow
    field = (
        {"missing": missing(["points-diffusion"])}
        if arrows_run is None
        else {
            **sections.arrows(arrows_run),
            "trajectories": sections.trajectories(methods),
            "w2": measure.w2_curves(methods, n=sections.W2_N),
        }
    )
    gone = [r for r in ("points-diffusion", "points-flow", "points-ot", "points-reflow") if r not in runs]
    done("field", {**field, "missing_methods": missing(gone) if gone else None})
    quality = {}
    if img is not None:  # the judge of the image metrics: trained once, then cached
        from ..metrics import classifier

        tqdm.write(f"explain: loading (or, the first time, training) the {img.cfg.data} judge classifier")
        classifier.classifier(img.cfg.data, img.cfg.size, img.cfg.channels, verbose=True)
    if img is not None and img.cfg.conditional:
        out["guidance"] = sections.guidance(img)
        ones = [row for row in out["guidance"]["curve"] if row["w"] == 1.0]
        quality[str(img.folder)] = {k: v for k, v in ones[0].items() if k != "w"}
    done("guidance", out.get("guidance") or {"missing": missing(["images-diffusion"]) + " (a --conditional run)"})
    racers = [
        (name, role, get(role))
        for name, role in (("raster AR", "images-ar"), ("VAR", "images-var"), ("diffusion", "images-diffusion"))
        if get(role) is not None
    ]
    debate = sections.debate(racers, quality=quality) if racers else {"panels": [], "table": []}
    gone = [role for role in ("images-ar", "images-var", "images-diffusion") if role not in runs]
    done("debate", {**debate, "missing": missing(gone) if gone else None})
    done("claims", claims_section(claims))
    steps.close()
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
    w2 = out["field"].get("w2") or {"curves": []}
    for curve in reversed(w2["curves"]):  # a diffusion run: its ODE (DDIM) curve, the one the figures use
        if curve["run"] == str(run.folder):
            return (
                f"W2 {curve['w2'][-1]:.3f} at {curve['nfe'][-1]} NFE ({curve['name']}) beside a real-vs-real "
                f"floor of {curve['floor']:.3f} (ratio {curve['w2'][-1] / curve['floor']:.2f}), n={w2['n']}"
            )
    return None


def claims_section(folder):
    """Section 7: the table of `unnoise claims`, when a claims folder is given and holds one."""
    path = Path(folder) / "claims.json" if folder else None
    if path is not None and path.exists():
        return {"rows": load_json(path).get("rows", [])}
    return {
        "missing": "unnoise claims --out claims (about 24 minutes; --quick about 7), then unnoise explain "
        "--claims claims"
    }


def explain(out="page", runs=None, budget="quick", claims=None):
    """Write OUT/index.html (and OUT/bundle.json, which `unnoise serve` reads); returns the page's path."""
    from .page import render

    out = Path(out)
    start = time.perf_counter()
    roles = assign(runs) if runs else train_budget(budget, out)
    bundle = collect(roles, None if runs else budget, claims)
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
