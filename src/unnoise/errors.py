"""The one error type the CLI turns into a one-line message and exit code 2."""


class UnnoiseError(Exception):
    """Bad input or a state the user must fix: shown as one line, never as a traceback."""


class Elsewhere(str):
    """A data path named by a loaded run's config.json, outside its folder: never followed (data.confined)."""

    def refuse(self):
        raise UnnoiseError(
            f"this run was trained on {str(self)!r}, a path outside its run folder, and unnoise follows "
            f"no path a run folder names; give it yourself: evaluate, sample and likelihood take "
            f"--data {str(self)}, train --resume takes it too"
        )


def refuse_elsewhere(name):
    """Raise if name is an Elsewhere: every reader of a data path calls this first."""
    if isinstance(name, Elsewhere):
        name.refuse()


def choose(kind, value, choices):
    """Return value if it is one of choices, else raise naming the valid ones."""
    if value not in choices:
        raise UnnoiseError(f"unknown {kind} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value


def positive_int(name, value):
    """Return value as an int if it is a positive whole number, else raise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number != float(value) or number <= 0:
        raise UnnoiseError(f"{name} must be a positive integer, got {value!r}")
    return number


LIMITS = {"n": 10**7, "nfe": 10**5, "probes": 1000, "batch-size": 10**6}  # beyond any real request: refused, not tried


def bounded(name, value):
    """positive_int, and no more than LIMITS[name] (10^22 samples would ask for exabytes)."""
    number = positive_int(name, value)
    if number > LIMITS[name]:
        raise UnnoiseError(f"{name} = {number} is more than unnoise will try (at most {LIMITS[name]:,})")
    return number
