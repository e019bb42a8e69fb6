"""The registry of masked-diffusion samplers, kept apart from the Gaussian one.

Every sampler has one signature (after k-diffusion and :mod:`diffkit.sampling.registry`)::

    sampler(model_fn, x, times, schedule, *, mask_id, generator=None, callback=None,
            temperature=1.0, **options) -> x0

``model_fn(x, t) -> log_probs`` (B, L, V) is the network already turned into MDLM's
carry-over distribution over x_0 (:func:`diffkit.discrete.base.model_function`); ``times``
is a descending float64 tensor of the times at which the model is evaluated; after the last
one every sampler unmasks all remaining tokens (``alpha = 1``).
"""

from __future__ import annotations

from collections.abc import Callable

from diffkit.errors import check_choice

SAMPLERS: dict[str, Callable] = {}


def register(name: str):
    """Decorator adding a masked-diffusion sampler to :data:`SAMPLERS` under ``name``."""

    def add(fn: Callable) -> Callable:
        if name in SAMPLERS:
            raise ValueError(f"a masked-diffusion sampler named {name!r} is registered already.")
        SAMPLERS[name] = fn
        return fn

    return add


def get_sampler(name: str) -> Callable:
    """The sampler registered as ``name``; a ConfigError lists the valid names otherwise."""
    check_choice("masked-diffusion sampler", name, SAMPLERS)
    return SAMPLERS[name]
