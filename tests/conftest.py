"""Shared fixtures: the reference data folder (skip when absent) and one torch thread."""

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
