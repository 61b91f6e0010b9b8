import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")    # before torch loads: see unnoise/__init__.py

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
