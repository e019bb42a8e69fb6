"""Honest NFE: how many steps each sampler may take for a budget of network calls.

A sampler given ``steps`` evaluation times calls the network ``calls(steps)`` times: once per
time for single-step and multistep solvers, about twice for Heun and the 2-stage DPM-Solvers
(no correction after the last time), ``n_corrector + 1`` times per time for
predictor-corrector. The bench picks the most steps within the budget and records the calls
it counted, so every row is indexed by true network calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from diffkit.errors import ConfigError

# diffkit sampler -> model calls for `steps` evaluation times (default options)
CALLS: dict[str, Callable[[int], int]] = {
    "ddpm": lambda n: n,
    "ddim": lambda n: n,
    "euler": lambda n: n,
    "heun": lambda n: 2 * n - 1,
    "dpmpp_2m": lambda n: n,
    "dpmpp_3m": lambda n: n,
    "dpmpp_2m_sde": lambda n: n,
    "dpmpp_2s": lambda n: 2 * n - 1,
    "dpm_solver": lambda n: 2 * n - 1,  # order 2
    "unipc": lambda n: n,
    "sde_euler": lambda n: n,
    "pc": lambda n: 2 * n,  # one predictor and one corrector call per time
    "langevin": lambda n: 5 * n + 1,  # 5 steps per noise level, then the final denoising
}


def steps_for(sampler: str, nfe: int, max_steps: int | None = None) -> int:
    """The most steps of ``sampler`` whose network calls stay within ``nfe``.

    ``max_steps`` caps the answer (a discrete schedule's T). A budget too small for one
    step raises a ConfigError naming the smallest budget that works.
    """
    if sampler not in CALLS:
        known = ", ".join(sorted(CALLS))
        raise ConfigError(
            f"the bench has no call count for sampler {sampler!r}; use one of {known}."
        )
    calls = CALLS[sampler]
    if calls(1) > nfe:
        raise ConfigError(f"sampler {sampler!r} needs at least {calls(1)} calls; raise --nfe.")
    steps = max(n for n in range(1, nfe + 1) if calls(n) <= nfe)
    return min(steps, max_steps) if max_steps else steps


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
