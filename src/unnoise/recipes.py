"""The runs the explainer page and the claims are made from: each run's role, the recipe that trains it, and the
seconds a budget gives it; and the one way both train (or reuse) them, through pipeline.get_or_train.

A role names what a run shows (`points-flow`: a flow on the two moons). `unnoise explain --budget quick|full`
trains the roles its BUDGETS entry names; `unnoise claims` trains the roles its claims need for CLAIM_BUDGETS'
seconds; both into OUT/runs/ROLE, reusing a role's folder when it already holds a run. `--runs` gives the
runs instead, and role_of says which role each one plays.
"""

from pathlib import Path

from .config import TrainConfig
from .errors import UnnoiseError, choose
from .pipeline import get_or_train
from .run import Run
from .snapshots import Snapshots

# role -> the training recipe of the run that plays it (reflow starts from points-flow)
ROLES = {
    "points-diffusion": {"data": "moons", "family": "diffusion"},
    "points-flow": {"data": "moons", "family": "flow"},
    "points-ot": {"data": "moons", "family": "flow", "coupling": "ot"},
    "points-reflow": {"data": "moons", "family": "flow", "coupling": "reflow"},
    "images-diffusion": {"data": "digits", "family": "diffusion", "conditional": True},
    "images-ar": {"data": "digits", "family": "ar", "conditional": True},
    "images-var": {"data": "digits", "family": "var", "conditional": True},
    "points-shortcut": {"data": "moons", "family": "shortcut"},
    "points-meanflow": {"data": "moons", "family": "meanflow"},
    "images-shortcut": {"data": "digits", "family": "shortcut", "conditional": True},
    "text-ar": {"data": "kjv", "family": "ar"},
    "text-mdlm": {"data": "kjv", "family": "mdlm"},
    "images-latent": {"data": "mnist", "size": 28, "family": "diffusion", "conditional": True, "latent": "auto"},
    # the parts trained apart (VAR's tokenizer, the latent autoencoder): a budget that names one times it, and
    # the run it feeds takes it (STAGES) instead of training its own for the family's default steps
    "images-vq": {"data": "digits", "family": "vq"},
    "images-ae": {"data": "digits", "family": "ae"},
}
STAGES = {"images-var": ("tokens", "images-vq"), "images-latent": ("latent", "images-ae")}  # role -> (setting, stage)
# the page's budget -> training seconds per role, in order (a stage before the run it feeds; the quick page is
# `make demo`: every section in under 5 minutes on 2 cores, docs/explainer.md)
BUDGETS = {
    "quick": {
        "points-diffusion": 10,
        "points-flow": 10,
        "points-ot": 6,
        "points-reflow": 1,  # reflow counts steps (REFLOW), not seconds
        "points-shortcut": 8,
        "points-meanflow": 8,
        "images-diffusion": 30,
        "images-ar": 15,
        "images-vq": 20,
        "images-var": 15,
        "images-shortcut": 12,
        "text-ar": 12,
        "text-mdlm": 12,
        "images-ae": 10,
        "images-latent": 12,
    },
    "full": {
        "points-diffusion": 90,
        "points-flow": 60,
        "points-ot": 60,
        "points-reflow": 60,
        "images-diffusion": 180,
        "images-ar": 180,
        "images-var": 180,
        "points-shortcut": 60,
        "points-meanflow": 60,
        "images-shortcut": 180,
        "text-ar": 300,
        "text-mdlm": 300,
        "images-ae": 400,  # the emoji autoencoder: 1,500 steps took 437 s (its reconstructions 1.70 x the FID floor)
        "images-latent": 600,
    },
}
# the page's budget -> role -> settings over ROLES for that budget: in 25 s a 2-block raster AR learns digits
# (accuracy 0.91 at 1,160 steps) where the family's 3 blocks reach 0.81 (docs/performance.md, "Raster AR and VAR")
RECIPES = {
    "quick": {
        "images-ar": {"depth": 2},
        "images-var": {"depth": 1, "batch_size": 8},  # in 15 s: 0.76 accuracy, 50x FID, where 2 blocks: 0.27, 137x
        "text-ar": {"context": 64},  # 4x the steps of 256 characters in the same seconds
        "text-mdlm": {"context": 64},
        "images-ae": {"data": "digits", "size": None},
        "images-latent": {"data": "digits", "size": None},
    },
    "full": {  # colour: OpenMoji's emoji at 32x32 (no classes), in the latent of their own autoencoder
        "images-ae": {"data": "emoji", "size": 32},
        "images-latent": {"data": "emoji", "size": 32, "conditional": False},
    },
}
# `unnoise claims` (quick, or the full set) -> training seconds per role its claims may need
CLAIM_BUDGETS = {
    "quick": {"points-flow": 10, "images-diffusion": 40},
    "full": {"points-flow": 60, "images-diffusion": 180},
}
LEARN_ROLES = ("points-flow", "images-diffusion")  # the runs that keep snapshots (snapshots.py) for the page
REFLOW = {"pairs": 5000, "min_steps": 200}  # reflow's (noise, sample) pairs, and its least training steps


def role_of(run):
    """The role a run can play, from its kind; a tokenizer or a few-step run plays none."""
    role = run.family.role(run)
    if role is None:
        raise UnnoiseError(
            f"{run.folder} is a {run.cfg.family} run ({run.family.help}), which plays no part on the page; it uses diffusion, "
            "flow or edm runs on points or images, ar or var runs on images, and ar or mdlm runs on text"
        )
    return role


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
    """The run for role in folder: reused when folder holds one, else trained there under the time budget
    (recipe: settings over the role's own). runs: the roles trained so far (reflow starts from points-flow)."""
    cfg = TrainConfig(**{**ROLES[role], **(recipe or {})})
    if cfg.coupling != "reflow":
        keep = [Snapshots(folder, seconds)] if role in LEARN_ROLES else []  # what "watch it learn" replays
        return get_or_train(cfg, folder, seconds=seconds, hooks=keep)
    source = runs.get("points-flow")
    if source is None:
        raise UnnoiseError("points-reflow starts from points-flow; give the budget a points-flow run too")
    cfg.steps = max(REFLOW["min_steps"], source.step // 2)  # reflow counts steps, not seconds
    return get_or_train(cfg, folder, base=source.folder, pairs=REFLOW["pairs"])


def train_budget(budget, out):
    """{role: Run} for every role the page's budget names, trained in order (reflow after its flow, a stage before
    the run it feeds); the stages themselves play no part on the page and are left out."""
    runs = {}
    for role, seconds in BUDGETS[choose("budget", budget, tuple(BUDGETS))].items():
        recipe = dict(RECIPES.get(budget, {}).get(role, {}))
        setting, stage = STAGES.get(role, (None, None))
        if stage in runs:
            recipe[setting] = str(runs[stage].folder)
        runs[role] = train_role(role, seconds, Path(out) / "runs" / role, runs, recipe)
    stages = {stage for _, stage in STAGES.values()}
    return {role: run for role, run in runs.items() if role not in stages}
