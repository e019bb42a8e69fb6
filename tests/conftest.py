"""Shared fixtures: the reference data folder (skip when absent), one torch thread, and a
cache folder of the test session's own."""

import os
from pathlib import Path

import pytest
import torch

from tests.reference import shared_data_dir

# Tests use tiny models, for which one thread is fastest, and CI's two cores are shared.
torch.set_num_threads(1)


@pytest.fixture
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("reference data not found: set DIFFKIT_DATA or place it at ../shared/data")
    return found


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """Every test caches classifiers and autoencoders (``DIFFKIT_CACHE``) in a folder of its
    session, never in the user's ~/.cache (a test that counts training calls points it at
    its own folder). Session scope so that module-scoped training fixtures use it too."""
    before = os.environ.get("DIFFKIT_CACHE")
    os.environ["DIFFKIT_CACHE"] = str(tmp_path_factory.mktemp("diffkit-cache"))
    yield
    if before is None:
        del os.environ["DIFFKIT_CACHE"]
    else:
        os.environ["DIFFKIT_CACHE"] = before
