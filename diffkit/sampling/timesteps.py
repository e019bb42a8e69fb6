"""Where the model is evaluated: ``timesteps(schedule, steps, spacing) -> times`` (descending).

- ``leading``, ``linspace``, ``trailing``: diffusers' spacings for discrete schedules ("Common
  Diffusion Noise Schedules and Sample Steps are Flawed", Table 2); for continuous schedules
  each of them is uniform in t from ``t_max`` down to ``t_min``.
- ``logsnr``: uniform in log-SNR (DPM-Solver's "logSNR" skip type, Lu et al. 2022a).
- ``karras``: uniform in ``sigma^(1/rho)``, rho = 7, for the VE-equivalent noise level
  ``sigma / alpha`` (Karras et al. 2022, eq. 5).

The last two run between the same end points as the others (``t_max`` down to ``t_min``, 0 for
discrete schedules) and map log-SNR back to (fractional) times with ``t_of_log_snr``. On a
zero-terminal-SNR schedule the log-SNR at ``t_max`` is -inf, so they start at the last step
whose log-SNR is finite.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from diffkit.errors import ConfigError, check_choice
from diffkit.schedules import Schedule

SPACINGS = ("leading", "linspace", "trailing", "logsnr", "karras")


def check_steps(schedule: Schedule, steps: int) -> int:
    """``steps`` if it is a whole number in range for ``schedule``, else a ConfigError."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be a positive whole number, got {steps!r}.")
    if schedule.discrete and steps > schedule.T:
        raise ConfigError(
            f"steps={steps} exceeds the schedule's T={schedule.T} training steps; "
            f"pass steps <= {schedule.T}."
        )
    return int(steps)


def timesteps(
    schedule: Schedule, steps: int, spacing: str = "trailing", rho: float = 7.0
) -> torch.Tensor:
    """``steps`` evaluation times from noisiest to cleanest, float64."""
    check_choice("spacing", spacing, SPACINGS)
    return _timesteps(schedule, check_steps(schedule, steps), spacing, float(rho)).clone()


@functools.lru_cache(maxsize=64)  # a pure function of values; sampling calls repeat it
def _timesteps(schedule: Schedule, n: int, spacing: str, rho: float) -> torch.Tensor:
    if spacing in ("logsnr", "karras"):
        return _snr_spaced(schedule, n, spacing, rho)
    if not schedule.discrete:
        return torch.linspace(schedule.t_max, schedule.t_min, n, dtype=torch.float64)
    T = schedule.T
    if spacing == "leading":
        t = np.arange(0, n) * (T // n)
    elif spacing == "linspace":
        t = np.linspace(0, T - 1, n).round()
    else:  # trailing
        t = np.round(np.arange(T, 0, -T / n)) - 1
    t = np.sort(t)[::-1].copy()
    if len(np.unique(t)) != n:
        raise ConfigError(f"{spacing!r} spacing repeats a step for steps={n}; use 'trailing'.")
    return torch.from_numpy(t).to(torch.float64)


def finite_log_snr_range(schedule: Schedule) -> tuple[float, float]:
    """``(t_lo, t_hi)``: the schedule's end points, ``t_hi`` pulled in to a finite log-SNR."""
    t_lo, t_hi = schedule.t_min, schedule.t_max
    if schedule.discrete and not schedule.alphas_cumprod[-1] > 0:  # zero terminal SNR
        t_hi = float(torch.nonzero(schedule.alphas_cumprod > 0).max())
    lam_lo, lam_hi = schedule.log_snr(torch.tensor([t_lo, t_hi])).tolist()
    if not np.isfinite(lam_hi) or not np.isfinite(lam_lo) or t_hi <= t_lo:
        raise ConfigError(
            f"schedule {schedule.name!r} has no finite log-SNR at t={t_lo:g} or t={t_hi:g}; "
            "use a 't_min' > 0 or a uniform-in-t spacing ('trailing')."
        )
    return t_lo, t_hi


def _snr_spaced(schedule: Schedule, n: int, spacing: str, rho: float) -> torch.Tensor:
    t_lo, t_hi = finite_log_snr_range(schedule)
    lam_max, lam_min = schedule.log_snr(torch.tensor([t_lo, t_hi])).tolist()
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    if spacing == "logsnr":
        lam = lam_min + ramp * (lam_max - lam_min)
    else:  # karras: sigma_ve = exp(-lambda / 2), uniform in sigma_ve^(1 / rho)
        s_max, s_min = np.exp(-lam_min / 2) ** (1 / rho), np.exp(-lam_max / 2) ** (1 / rho)
        lam = -2 * rho * torch.log(s_max + ramp * (s_min - s_max))
    t = schedule.t_of_log_snr(lam)
    t[0], t[-1] = t_hi, t_lo  # the end points exactly, not to bisection accuracy
    if n > 1 and not (t[1:] < t[:-1]).all():
        raise ConfigError(f"{spacing!r} spacing repeats a time for steps={n}; use fewer steps.")
    return t
