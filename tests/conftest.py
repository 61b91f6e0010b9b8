import os

# Before torch loads: OpenMP threads that spin while waiting slow every op down many times over as
# soon as another process shares the two cores (a U-Net forward pass measured 0.70 s instead of 0.05 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    """One image-classifier cache for the session; the user's own cache is left alone."""
    return tmp_path_factory.mktemp("classifier-cache")
