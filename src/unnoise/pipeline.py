"""Above the trainer: a run's prerequisites trained, reused or copied first, then the run itself; and the one
"train or reuse" every front end calls."""

from pathlib import Path

from .run import Run


def get_or_train(cfg, folder, seconds=None, progress=True, base=None, pairs=None):
    """The run in folder if it holds one; else cfg trained there (for `seconds` of wall time when given: steps
    then only cap it if cfg was given them). base, pairs: a reflow's flow run and its (noise, sample) pair count,
    for a cfg with coupling 'reflow'."""
    from .reflow import reflow
    from .train import UNCAPPED, train

    folder = Path(folder)
    if (folder / "config.json").exists():
        run = Run.load(folder)
        if progress:
            print(f"reusing {folder} ({run.step} steps)")
        return run
    if progress:
        print(f"training {cfg.family} on {cfg.data} into {folder}" + (f" for {seconds:g} s" if seconds else ""))
    if cfg.coupling == "reflow":
        return reflow(base, folder, pairs=pairs or 20000, steps=cfg.steps, seed=cfg.seed, progress=progress)
    if seconds is not None and "steps" not in cfg.given:
        cfg.steps = UNCAPPED
    return train(cfg, folder, seconds=seconds, progress=progress)
