"""Shared fixtures for the images domain: the built-in digits and the optional MNIST folder."""

from pathlib import Path

import pytest
import torch

from diffkit.domains.images.data import ImageSet, load_digits_set
from tests.reference import reference_file


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # One thread: on a shared machine, OpenMP threads spin-waiting on a descheduled sibling
    # can make a small training loop ten times slower. Session scope so it precedes the
    # module-scoped training fixtures.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> ImageSet:
    return load_digits_set()


@pytest.fixture(scope="session")
def digits_split(digits) -> tuple[ImageSet, ImageSet]:
    """A fixed random 1,400 / 397 train / held-out split of the digits."""
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    return digits.take(perm[:1400]), digits.take(perm[1400:])


@pytest.fixture
def mnist_dir() -> Path:
    """The real MNIST folder (skip when absent); ``synthetic_mnist`` stands in for it."""
    return reference_file("mnist/t10k-images-idx3-ubyte.gz").parent
