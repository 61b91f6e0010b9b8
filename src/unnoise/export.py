"""`unnoise export RUN --format diffusers --out DIR`: a run's noise schedule as a diffusers scheduler config.

diffusers' schedulers (DDIM, DDPM, Euler, DPM-Solver++, ...) read one `scheduler_config.json`; written here
from the run's path, `DDIMScheduler.from_pretrained(DIR)` steps exactly as `unnoise sample --sampler ddim
--spacing trailing` does. The network stays unnoise's (safetensors, loaded by `unnoise.Run`): diffusers
calls it as `run.net(x, run.path.net_time(t), y)`. docs/diffusers.md shows the few lines.
"""

from pathlib import Path

from .checkpoint import save_json
from .errors import UnnoiseError, choose

FORMATS = ("diffusers",)
# the beta schedules every diffusers scheduler here knows (its "sigmoid" exists in DDPMScheduler only)
BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2"}
PREDICTION_TYPES = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


def diffusers_config(run):
    """The scheduler_config.json of a diffusion run on one of diffusers' beta schedules."""
    cfg = run.cfg
    if cfg.schedule not in BETA_SCHEDULES:  # the diffusion family alone takes beta schedules
        raise UnnoiseError(
            f"{run.folder} is a {cfg.family} run on the {cfg.schedule} schedule; the diffusers export "
            f"covers diffusion runs on {', '.join(BETA_SCHEDULES)} (diffusers' beta schedules; "
            f"train with --schedule linear or cosine to export)"
        )
    path = run.path
    return {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.42.1",
        "num_train_timesteps": path.T,
        "beta_start": path.beta_start,
        "beta_end": path.beta_end,
        "beta_schedule": BETA_SCHEDULES[cfg.schedule],
        "prediction_type": PREDICTION_TYPES[cfg.prediction],
        "clip_sample": run.images and run.latent is None,  # standardised latents are not clipped
        "clip_sample_range": 1.0,
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "timestep_spacing": "trailing",
        "thresholding": False,
    }


def export(run, out, fmt="diffusers"):
    """Write the run's scheduler config into out; returns the file written."""
    choose("export format", fmt, FORMATS)
    target = Path(out) / "scheduler_config.json"
    save_json(target, diffusers_config(run))
    return target


def add_parser(sub):
    p = sub.add_parser("export", help="write a run's schedule for another library (diffusers' scheduler config)")
    p.add_argument("run", help="run folder")
    p.add_argument("--format", default="diffusers", choices=FORMATS)
    p.add_argument("--out", required=True, help="folder for scheduler_config.json (DDIMScheduler.from_pretrained(DIR))")


def cmd_export(args):
    from .run import Run

    target = export(Run.load(args.run), args.out, args.format)
    print(f"wrote {target}: load it with diffusers.DDIMScheduler.from_pretrained({str(Path(args.out))!r})")
