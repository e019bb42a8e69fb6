"""Samplers: one family per file, one signature, a registry and the ``sample`` front door."""

from diffkit.sampling import (  # noqa: F401  (register the built-in samplers)
    ancestral,
    ddim,
    dpmpp,
    karras,
    langevin,
    predictor_corrector,
    repaint,
    sde,
    unipc,
)
from diffkit.sampling.base import model_function
from diffkit.sampling.fit import FitResult, fit_steps, fit_steps_report
from diffkit.sampling.front import sample
from diffkit.sampling.registry import SAMPLERS, get_sampler, register
from diffkit.sampling.timesteps import SPACINGS, explicit_times, timesteps, using_spacing

__all__ = [
    "SAMPLERS",
    "SPACINGS",
    "FitResult",
    "explicit_times",
    "fit_steps",
    "fit_steps_report",
    "get_sampler",
    "model_function",
    "register",
    "sample",
    "timesteps",
    "using_spacing",
]
