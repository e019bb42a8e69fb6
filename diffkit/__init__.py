"""diffkit: diffusion models for images, time series and text on one small core.

The public API, re-exported; nothing is defined here.
"""

from diffkit import discrete, guidance, likelihood, schedules, toy
from diffkit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    MissingFileError,
    ShapeError,
    UserError,
)
from diffkit.guidance import cfg, clamp, dynamic_threshold, with_known, with_x0_transform
from diffkit.likelihood import bits_per_dim, ode_log_likelihood, variational_bound
from diffkit.losses import diffusion_loss
from diffkit.process import (
    Prediction,
    convert,
    from_x0_eps,
    posterior,
    posterior_at,
    q_sample,
    to_x0_eps,
)
from diffkit.sampling import SAMPLERS, get_sampler, register, sample, timesteps
from diffkit.schedules import Schedule, get_schedule
from diffkit.version import __version__


def __getattr__(name: str):
    # fit pulls in Lightning, which costs seconds; import it only when it is used
    if name == "fit":
        from diffkit.runner import fit

        return fit
    raise AttributeError(f"module 'diffkit' has no attribute {name!r}")


__all__ = [
    "SAMPLERS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "MissingFileError",
    "Prediction",
    "Schedule",
    "ShapeError",
    "UserError",
    "__version__",
    "bits_per_dim",
    "cfg",
    "clamp",
    "convert",
    "diffusion_loss",
    "discrete",
    "dynamic_threshold",
    "fit",
    "from_x0_eps",
    "get_sampler",
    "get_schedule",
    "guidance",
    "likelihood",
    "ode_log_likelihood",
    "posterior",
    "posterior_at",
    "q_sample",
    "register",
    "sample",
    "schedules",
    "timesteps",
    "to_x0_eps",
    "toy",
    "variational_bound",
    "with_known",
    "with_x0_transform",
]
