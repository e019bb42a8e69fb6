"""Shared fixtures: the reference data folder (skip when absent) and one torch thread."""

import os
from pathlib import Path

import pytest
import torch

# Tests use tiny models, for which one thread is fastest, and CI's two cores are shared.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$DIFFKIT_DATA`` or ``../shared/data`` beside the project, if present."""
    for candidate in (os.environ.get("DIFFKIT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("reference data not found: set DIFFKIT_DATA or place it at ../shared/data")
    return found
