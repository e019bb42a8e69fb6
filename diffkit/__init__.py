"""diffkit: diffusion models for images, time series and text on one small core.

The public API, re-exported; nothing is defined here. Each name is imported on first use
(PEP 562), so ``import diffkit`` and ``diffkit --help`` do not pay for torch, and ``fit``
(Lightning, seconds to import) loads only when it is used.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it ("" for a module of the same name)
_EXPORTS = {
    "discrete": "",
    "guidance": "",
    "likelihood": "",
    "schedules": "",
    "toy": "",
    "CheckpointError": "diffkit.errors",
    "ConfigError": "diffkit.errors",
    "DataError": "diffkit.errors",
    "MissingFileError": "diffkit.errors",
    "ShapeError": "diffkit.errors",
    "UserError": "diffkit.errors",
    "cfg": "diffkit.guidance",
    "clamp": "diffkit.guidance",
    "dynamic_threshold": "diffkit.guidance",
    "with_known": "diffkit.guidance",
    "with_x0_transform": "diffkit.guidance",
    "bits_per_dim": "diffkit.likelihood",
    "ode_log_likelihood": "diffkit.likelihood",
    "variational_bound": "diffkit.likelihood",
    "diffusion_loss": "diffkit.losses",
    "Prediction": "diffkit.process",
    "convert": "diffkit.process",
    "from_x0_eps": "diffkit.process",
    "posterior": "diffkit.process",
    "posterior_at": "diffkit.process",
    "q_sample": "diffkit.process",
    "to_x0_eps": "diffkit.process",
    "SAMPLERS": "diffkit.sampling",
    "get_sampler": "diffkit.sampling",
    "register": "diffkit.sampling",
    "sample": "diffkit.sampling",
    "timesteps": "diffkit.sampling",
    "Schedule": "diffkit.schedules",
    "get_schedule": "diffkit.schedules",
    "__version__": "diffkit.version",
    "fit": "diffkit.runner",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffkit' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = (
        importlib.import_module(f"diffkit.{name}")
        if not module
        else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = sorted(_EXPORTS)
