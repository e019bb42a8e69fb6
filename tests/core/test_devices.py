import subprocess
import sys

import pytest
import torch

from diffkit.devices import accelerator, generator_on, resolve_device, set_threads
from diffkit.errors import ConfigError


def test_auto_takes_a_gpu_only_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else None
    got = resolve_device("auto").type
    assert got == (expected or ("mps" if torch.backends.mps.is_available() else "cpu"))
    assert resolve_device("cpu") == torch.device("cpu")
    assert accelerator("auto") == "auto" and accelerator("cpu") == "cpu"


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cuda:-1", "gpu0"])
def test_unknown_devices_are_named(name):
    with pytest.raises(ConfigError, match="use auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_says_what_there_is():
    with pytest.raises(ConfigError, match=r"--device cuda:1 is not available here; use cpu"):
        resolve_device("cuda:1")


def test_threads_and_seeds_are_bounded():
    before = torch.get_num_threads()
    set_threads(1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)
    for bad in (0, 5000):
        with pytest.raises(ConfigError, match=r"--threads must lie in 1\.\.1024"):
            set_threads(bad)
    with pytest.raises(ConfigError, match="--seed must lie in"):
        generator_on(torch.device("cpu"), 2**64)
    a = torch.randn(3, generator=generator_on(torch.device("cpu"), 4))
    assert torch.equal(a, torch.randn(3, generator=torch.Generator().manual_seed(4)))


def test_the_images_network_does_not_import_lightning():
    code = (
        "import sys, diffkit.domains.images.network, diffkit.domains.toy.network; "
        "print('lightning' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
