"""One torch thread per test here: the models are tiny, and on a shared 2-core machine two
OpenMP threads fighting other processes made the training test 80x slower (83 s vs 1 s).

``exchange_file`` runs each glue test twice: on a synthetic file written like LSTNet's
exchange-rate matrix (always), and on the real one (skipped when the data is absent)."""

import pytest
import torch

from tests.reference import reference_file

from .glue import write_synthetic_exchange


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_exchange_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "exchange_rate"  # the data folder's layout
    folder.mkdir()
    return write_synthetic_exchange(folder / "exchange_rate.txt.gz")


@pytest.fixture(params=["synthetic", "real"])
def exchange_file(request):
    if request.param == "real":
        return reference_file("exchange_rate/exchange_rate.txt.gz")
    return request.getfixturevalue("synthetic_exchange_file")
