"""Honest NFE: how many steps each sampler may take for a budget of network calls.

The counts live in :mod:`diffkit.sampling.calls` (``diffkit.sample(..., nfe=)`` uses them
too): once per time for single-step and multistep solvers, about twice for Heun and the
2-stage DPM-Solvers, ``n_corrector + 1`` times per time for predictor-corrector. The bench
picks the most steps within the budget and records the calls it counted, so every row is
indexed by true network calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from diffkit.errors import ConfigError
from diffkit.sampling.calls import calls
from diffkit.sampling.calls import steps_for as sampling_steps_for

BENCHED = (
    "ddpm", "ddim", "euler", "heun", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "dpmpp_2s",
    "dpm_solver", "unipc", "sde_euler", "pc", "langevin",
)  # fmt: skip
# diffkit sampler -> model calls for `steps` evaluation times (default options)
CALLS: dict[str, Callable[[int], int]] = {name: partial(calls, name) for name in BENCHED}


def steps_for(sampler: str, nfe: int, max_steps: int | None = None) -> int:
    """The most steps of a benched ``sampler`` whose network calls stay within ``nfe``.

    :func:`diffkit.sampling.calls.steps_for` for the samplers the bench runs (RePaint needs
    known entries and is not one of them).
    """
    if sampler not in CALLS:
        known = ", ".join(sorted(CALLS))
        raise ConfigError(
            f"the bench has no call count for sampler {sampler!r}; use one of {known}."
        )
    return sampling_steps_for(sampler, nfe, max_steps)


class Counted:
    """A network wrapper that counts its calls: ``Counted(net)(x, t, **cond)``."""

    def __init__(self, net: Callable):
        self.net, self.calls = net, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)


@contextmanager
def counting(module) -> Iterator[Callable[[], int]]:
    """Count the forward calls of ``module`` (a torch module a network calls inside itself).

    ``with counting(net.denoiser) as calls: ...; calls()`` gives the count so far.
    """
    calls = [0]

    def hook(*_):
        calls[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        yield lambda: calls[0]
    finally:
        handle.remove()
