"""Network calls per sample: how many a sampler makes for ``steps`` times, and the inverse.

``steps`` is the number of evaluation times a sampler is given (``timesteps(schedule,
steps)``). Single-step and multistep solvers (DDPM, DDIM, Euler, DPM-Solver++ 2M/3M,
UniPC, the reverse SDE) call the network once per time. Heun and DPM-Solver++ 2S add one
call between consecutive times (none after the last); DPM-Solver of order k adds k - 1;
the predictor-corrector makes ``n_corrector + 1`` calls per time; annealed Langevin
``n_steps_each`` per time plus the final denoising call; RePaint one per step down,
jumps back included. :func:`steps_for` inverts this, so a budget of model calls (``nfe``)
buys each sampler the same compute: ``diffkit.sample(..., nfe=10)`` gives DDIM 10 times
and Heun 5 (9 calls). From a first time at SNR 0 (zero terminal SNR) the samplers taken
through :func:`diffkit.sampling.base.from_pure_noise` spend one call on their first step,
``1 + calls(steps - 1)``, which the counts here bound from above: a budget is never exceeded.
So do Heun and DPM-Solver when their last time is ``t_min`` (``leading``, ``linspace``) and
there are under 15 times: that step is first order, one call (see
:func:`diffkit.sampling.base.first_order_into_t_min`).
"""

from __future__ import annotations

from itertools import pairwise

from diffkit.errors import ConfigError
from diffkit.sampling.repaint import jump_schedule


def _repaint(n: int, jump_length: int = 10, jump_n_sample: int = 10) -> int:
    levels = jump_schedule(n, jump_length, jump_n_sample)
    return sum(1 for k, k_next in pairwise(levels) if k_next > k)


def _dpm_solver(n: int, order: int = 2) -> int:
    return order * (n - 1) + 1


def _pc(n: int, n_corrector: int = 1) -> int:
    return (n_corrector + 1) * n


def _langevin(n: int, n_steps_each: int = 5) -> int:
    return n_steps_each * n + 1


def _two_stage(n: int) -> int:
    return 2 * n - 1


# samplers whose calls differ from one per time; each takes (steps, **the options it reads)
_COUNTS = {
    "heun": _two_stage,
    "dpmpp_2s": _two_stage,
    "dpm_solver": _dpm_solver,
    "pc": _pc,
    "langevin": _langevin,
    "repaint": _repaint,
}
_READS = {"dpm_solver": ("order",), "pc": ("n_corrector",), "langevin": ("n_steps_each",)}
_READS["repaint"] = ("jump_length", "jump_n_sample")


def calls(sampler: str, steps: int, **options) -> int:
    """Network calls ``sampler`` makes for ``steps`` evaluation times with ``options``."""
    count = _COUNTS.get(sampler)
    if count is None:
        return steps
    read = {k: v for k, v in options.items() if k in _READS.get(sampler, ())}
    return count(steps, **read)


def steps_for(sampler: str, nfe: int, max_steps: int | None = None, **options) -> int:
    """The most evaluation times of ``sampler`` whose network calls stay within ``nfe``.

    ``max_steps`` caps the answer (a discrete schedule's T). A budget too small for one
    step raises a ConfigError naming the smallest budget that works.
    """
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ConfigError(f"nfe must be a positive number of network calls, got {nfe!r}.")
    least = calls(sampler, 1, **options)
    if least > nfe:
        raise ConfigError(f"sampler {sampler!r} needs at least {least} network calls; raise nfe.")
    lo, hi = 1, nfe  # calls grow with steps: the largest n with calls(n) <= nfe
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if calls(sampler, mid, **options) <= nfe else (lo, mid - 1)
    return min(lo, max_steps) if max_steps else lo
