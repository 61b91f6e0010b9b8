import os

# Before torch loads: OpenMP threads that spin while waiting slow every op down many times over as
# soon as another process shares the two cores (a U-Net forward pass measured 0.70 s instead of 0.05 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # `make test` runs two processes (pytest-xdist)
SHARED = {"test_explain": "explained", "test_browser": "explained", "test_claims": "explained"}  # one page for these


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(max(1, 2 // WORKERS))  # two cores: both for one process, one each for two


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup) each test file runs whole in one process, so its module fixtures are
    built once, and the files that share the explained page run in the same one."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        item.add_marker(pytest.mark.xdist_group(SHARED.get(item.path.stem, item.path.stem)))


@pytest.fixture(scope="session", autouse=True)
def classifier_cache(tmp_path_factory):
    """One image-classifier cache for the whole session (subprocesses too): every judge is trained once, as on a
    fresh machine, and the user's own cache is left alone."""
    folder = tmp_path_factory.mktemp("classifier-cache")
    saved = os.environ.get("UNNOISE_CACHE")
    os.environ["UNNOISE_CACHE"] = str(folder)
    yield folder
    os.environ.pop("UNNOISE_CACHE") if saved is None else os.environ.__setitem__("UNNOISE_CACHE", saved)


@pytest.fixture(scope="session")
def explained(tmp_path_factory, classifier_cache):
    """A page written by `unnoise explain --runs` from tiny runs of most roles (path, runs by role)."""
    import unnoise
    from unnoise import snapshots
    from unnoise.web import explain
    from unnoise.web.sections import Params

    root = tmp_path_factory.mktemp("explain")
    tiny = {"width": 16, "progress": False}
    ae = unnoise.TrainConfig(data="digits", family="ae", steps=50, width=16)
    unnoise.train(ae, root / "ae", progress=False)  # plays no part itself: the latent run copies it
    recipes = {
        "pd": dict(data="moons", steps=200),
        "pf": dict(data="moons", family="flow", steps=200),
        "ps": dict(data="moons", family="shortcut", steps=200),
        "id": dict(data="digits", conditional=True, steps=60, width=16),
        "ia": dict(data="digits", family="ar", conditional=True, steps=30, width=16, depth=1, heads=2),
        "il": dict(data="digits", latent=str(root / "ae"), conditional=True, steps=30, width=16),
    }
    for name, recipe in recipes.items():
        kept = [snapshots.Snapshots(root / name)] if name in ("pf", "id") else []  # section 10 replays them
        unnoise.train(unnoise.TrainConfig(**recipe), root / name, progress=tiny["progress"], hooks=kept)
    small = Params(guidance=(1.0, 3.0), quality_n=100, w2_n=300, nfe=8)
    page = explain.explain(root / "page", [str(root / name) for name in recipes], params=small)
    return page, root
