"""The report's header: the machine, the versions of every engine and reference, the seeds."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

PACKAGES = ("diffkit", "torch", "numpy", "diffusers", "gluonts", "matplotlib")


def package_version(name: str) -> str:
    """The installed version of ``name``, or "not installed"."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def header(context, command: list[str] | None = None) -> dict[str, Any]:
    """Machine, versions, seeds and the command, JSON-ready."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "command": " ".join(["diffkit", "bench", *(command or [])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": context.device,
            "load_average_1m": round(load[0], 2),
        },
        "versions": {"python": sys.version.split()[0], **{p: package_version(p) for p in PACKAGES}},
        "seeds": {"bench": context.seed},
        "suite": context.suite,
        "samplers": list(context.samplers),
        "nfes": list(context.nfes),
    }
