"""`unnoise explain`: train (or reuse) the runs the page needs, compute its sections, write one HTML file.

Each run plays a role on the page (ROLES). `--budget quick|full` trains the roles its budget names, for
that many seconds each, into OUT/runs/ROLE, and reuses a role's folder when it already holds a run;
`--runs` uses the given folders instead and trains nothing. A section whose runs are missing still
appears, with the command that fills it.
"""

import time
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import atomic_write, load_json, save_json
from ..claims import geometry
from ..config import TrainConfig
from ..errors import UnnoiseError, choose
from ..run import Run
from . import sections

# role -> the training recipe of the run that plays it (reflow starts from points-flow)
ROLES = {
    "points-diffusion": {"data": "moons", "family": "diffusion"},
    "points-flow": {"data": "moons", "family": "flow"},
    "points-ot": {"data": "moons", "family": "flow", "coupling": "ot"},
    "points-reflow": {"data": "moons", "family": "flow", "coupling": "reflow"},
    "images-diffusion": {"data": "digits", "family": "diffusion", "conditional": True},
    "images-ar": {"data": "digits", "family": "ar", "conditional": True},
    "images-var": {"data": "digits", "family": "var", "conditional": True},
}
# budget -> training seconds per role (the quick page is `make demo`: about 4 minutes on 2 cores in all)
BUDGETS = {
    "quick": {"points-diffusion": 20, "points-flow": 15, "images-diffusion": 50, "images-ar": 25},
    "full": {
        "points-diffusion": 90,
        "points-flow": 60,
        "points-ot": 60,
        "points-reflow": 60,
        "images-diffusion": 180,
        "images-ar": 180,
        "images-var": 180,
    },
}
# budget -> role -> settings over ROLES for that budget: in 25 s a 2-block raster AR learns digits (accuracy
# 0.91 at 1,160 steps) where the family's 3 blocks reach 0.81 (docs/performance.md, "Raster AR and VAR")
RECIPES = {"quick": {"images-ar": {"depth": 2}}}
PAGE, BUNDLE = "index.html", "bundle.json"
REFLOW = {"pairs": 5000, "min_steps": 200}  # reflow's (noise, sample) pairs, and its least training steps


def role_of(run):
    """The page role a run can play, from its kind; a tokenizer plays none."""
    if run.cfg.family == "vq":
        raise UnnoiseError(
            f"{run.folder} is a tokenizer (vq) run; the page uses diffusion, flow or edm runs on "
            "points or images, and ar or var runs on images"
        )
    if run.images:
        return f"images-{run.cfg.family}" if run.cfg.discrete else "images-diffusion"
    if run.cfg.family == "flow" and run.cfg.coupling != "independent":
        return "points-reflow" if run.cfg.coupling == "reflow" else "points-ot"
    return "points-flow" if run.cfg.family == "flow" else "points-diffusion"


def assign(folders):
    """{role: Run} for the given run folders; two runs for one role are refused."""
    roles = {}
    for folder in folders:
        run = Run.load(folder)
        role = role_of(run)
        if role in roles:
            raise UnnoiseError(f"{folder} and {roles[role].folder} both play {role} on the page; give one of them")
        roles[role] = run
    return roles


def train_role(role, seconds, folder, runs, recipe=None):
    """Train the run for role under the time budget into folder (or reuse the run already there); recipe:
    settings over the role's own."""
    from ..reflow import reflow
    from ..train import train

    if (folder / "config.json").exists():
        run = Run.load(folder)
        print(f"explain: reusing {role} from {folder} ({run.step} steps)")
        return run
    print(f"explain: training {role} for {seconds:g} s into {folder}")
    if role == "points-reflow":
        source = runs.get("points-flow")
        if source is None:
            raise UnnoiseError("points-reflow starts from points-flow; give the budget a points-flow run too")
        return reflow(source.folder, folder, pairs=REFLOW["pairs"], steps=max(REFLOW["min_steps"], source.step // 2))
    cfg = TrainConfig(**{**ROLES[role], **(recipe or {})}, steps=10**6)
    return train(cfg, folder, seconds=seconds)


def train_budget(budget, out):
    """{role: Run} for every role the budget names, trained in order (reflow after its flow)."""
    runs = {}
    for role, seconds in BUDGETS[choose("budget", budget, tuple(BUDGETS))].items():
        runs[role] = train_role(role, seconds, Path(out) / "runs" / role, runs, RECIPES.get(budget, {}).get(role))
    return runs


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
        "cpu": sections.cpu_name(),
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
        "cpu": sections.cpu_name(),
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
            "w2": sections.w2_curves(methods),
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
