"""A tiny toy-domain run configuration that trains in seconds, shared by engine and CLI tests."""

import pytest
import torch

from diffkit.config import merge
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

MODEL = {
    "hidden": 16,
    "depth": 2,
    "time_dim": 8,
    "n_train": 256,
    "n_val": 64,
    "n_eval": 128,
    "eval_steps": 5,
}
TRAIN = {
    "max_steps": 12,
    "batch_size": 32,
    "warmup_steps": 3,
    "checkpoint_every": 4,
    "log_every": 4,
    "accelerator": "cpu",
}

SETS = [f"--set={k}={v}" for k, v in MODEL.items()] + [
    f"--set=train.{k}={v}" for k, v in TRAIN.items() if k != "max_steps"
]


def tiny_config(train: dict | None = None, model: dict | None = None, diffusion=None):
    """The toy domain's RunConfig with small sizes, overridden by the given sections."""
    return resolve_config(
        get_domain("toy"),
        merge(
            {"model": MODEL, "train": TRAIN},
            {"model": model or {}, "train": train or {}, "diffusion": diffusion or {}},
        ),
    )


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run far faster on one thread than on threads that fight for shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A toy run trained for 4 steps with the tiny sizes, once per test module."""
    from typer.testing import CliRunner

    from diffkit.cli import app

    out = tmp_path_factory.mktemp("toy") / "run"
    args = ["train", "--domain", "toy", "--out", str(out), "--max-steps", "4", "--quiet", *SETS]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out
