"""One torch thread per test here: the models are tiny, and on a shared 2-core machine two
OpenMP threads fighting other processes made the training test 80x slower (83 s vs 1 s)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
