"""Where a command runs: ``--device auto|cpu|cuda|cuda:N|mps`` and ``--threads N``."""

from __future__ import annotations

import torch

from diffkit.errors import ConfigError

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``name`` means; ``auto`` takes a GPU (CUDA, then MPS) when present.

    A device that is not there is a ConfigError naming the devices there are.
    """
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps():
            raise ConfigError(f"--device mps is not available here; use {_present()}.")
        return torch.device("mps")
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ConfigError(f"unknown device {name!r}; use {DEVICES}.")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0 or (index and int(index) >= count):
        raise ConfigError(f"--device {name} is not available here; use {_present()}.")
    return torch.device(name)


def accelerator(name: str) -> str:
    """Lightning's accelerator for ``--device`` on ``train`` (it picks the device count)."""
    device = resolve_device(name)
    if name.strip().lower() == "auto":
        return "auto"
    if device.type == "cuda" and device.index is not None:
        raise ConfigError(
            "train takes --device cuda with --devices N; pick GPUs with CUDA_VISIBLE_DEVICES."
        )
    return {"cuda": "gpu"}.get(device.type, device.type)


def set_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` for a count in 1..1024; None leaves torch's default."""
    if n is None:
        return
    if not 1 <= n <= 1024:
        raise ConfigError(f"--threads must lie in 1..1024, got {n}.")
    torch.set_num_threads(n)


def generator_on(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (noise is drawn where the data are)."""
    if not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must lie in 0..{2**63 - 1}, got {seed}.")
    return torch.Generator(device=device).manual_seed(seed)


def _mps() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def _present() -> str:
    there = ["cpu"]
    if torch.cuda.is_available():
        there += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps():
        there.append("mps")
    return ", ".join(there)
