"""The sampler registry: every sampler is a pure function registered under a name.

Every sampler has one signature (after k-diffusion)::

    sampler(model_fn, x, times, schedule, *, generator=None, callback=None, **options) -> x0

``model_fn(x, t) -> (x0, eps)`` is the network already turned into both predictions
(:func:`diffkit.sampling.base.model_function`), for one time ``t`` (a float); ``times`` is a
descending float64 CPU tensor of the times at which the model is evaluated; after the last
one every sampler takes its final step to clean data (``alpha = 1, sigma = 0``). A sampler
computes its coefficients from ``times`` before its loop and never reads a value of a tensor
on x's device inside it (tested on the meta device), so a GPU is never made to wait.
"""

from __future__ import annotations

from collections.abc import Callable

from diffkit.errors import check_choice

SAMPLERS: dict[str, Callable] = {}


def register(name: str):
    """Decorator adding a sampler to :data:`SAMPLERS` under ``name``."""

    def add(fn: Callable) -> Callable:
        if name in SAMPLERS:
            raise ValueError(f"a sampler named {name!r} is registered already.")
        SAMPLERS[name] = fn
        return fn

    return add


def get_sampler(name: str) -> Callable:
    """The sampler registered as ``name``; a ConfigError lists the valid names otherwise."""
    check_choice("sampler", name, SAMPLERS)
    return SAMPLERS[name]
