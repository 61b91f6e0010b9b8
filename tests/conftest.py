import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")    # before torch loads: see unnoise/__init__.py

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    """One image-classifier cache for the session; the user's own cache is left alone."""
    return tmp_path_factory.mktemp("classifier-cache")
