"""Where the model is evaluated: ``timesteps(schedule, steps, spacing) -> times`` (descending).

- ``leading``, ``linspace``, ``trailing``: diffusers' spacings for discrete schedules ("Common
  Diffusion Noise Schedules and Sample Steps are Flawed", Table 2); for continuous schedules
  each of them is uniform in t from ``t_max`` down to ``t_min``.
- ``logsnr``: uniform in log-SNR (DPM-Solver's "logSNR" skip type, Lu et al. 2022a).
- ``karras``: uniform in ``sigma^(1/rho)``, rho = 7, for the VE-equivalent noise level
  ``sigma / alpha`` (Karras et al. 2022, eq. 5).
- an explicit sequence of times (a fitted schedule, :func:`diffkit.sampling.fit_steps`):
  checked by :func:`explicit_times` and used as given.

The last two named ones place ``steps + 1`` points between ``t_max`` and ``t_min`` (0 for
discrete schedules) and evaluate the model at the first ``steps``: the final step to clean
data spans the last interval, as ``trailing`` does in t. Evaluating at ``t_min`` itself (as
diffusers' ``use_lu_lambdas`` and ``use_karras_sigmas`` do) spends a call where x0 is
already x and leaves one step to cross the whole log-SNR range at 2-3 steps: Heun and the
single-step DPM-Solvers then diverge (SW1 16-69 on the ring at 2 steps, against 0.2-0.4).
Log-SNR is mapped back to (fractional) times with ``t_of_log_snr``. On a zero-terminal-SNR
schedule the log-SNR at ``t_max`` is -inf, so they start at the last step whose log-SNR is
finite.

``sample()`` calls that name no spacing use the one set by :func:`using_spacing` (the CLI's
``--spacing``, including ``fitted``: the checkpoint's fitted steps), else ``trailing``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np
import torch

from diffkit.errors import ConfigError, check_choice
from diffkit.schedules import Schedule

SPACINGS = ("leading", "linspace", "trailing", "logsnr", "karras")
FITTED = "fitted"  # the CLI's --spacing for a checkpoint's fitted steps


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
    schedule: Schedule, steps: int | None, spacing="trailing", rho: float = 7.0
) -> torch.Tensor:
    """``steps`` evaluation times from noisiest to cleanest, float64.

    ``spacing`` is one of :data:`SPACINGS` or an explicit sequence of times (then ``steps``
    may be None; if given it must equal their number). ``steps=None`` with a named spacing
    means every step of a discrete schedule, 1000 for a continuous one.
    """
    if not isinstance(spacing, str):
        return explicit_times(schedule, spacing, steps)
    check_choice("spacing", spacing, SPACINGS)
    if steps is None:
        steps = schedule.T if schedule.discrete else 1000
    return _timesteps(schedule, check_steps(schedule, steps), spacing, float(rho)).clone()


def explicit_times(schedule: Schedule, times, steps: int | None = None) -> torch.Tensor:
    """``times`` as a descending float64 CPU tensor, or one ConfigError saying what is wrong.

    They must be one-dimensional, finite, strictly decreasing, inside the schedule's
    ``[t_min, t_max]``, and ``steps`` many when ``steps`` is given.
    """
    try:
        t = torch.as_tensor(np.asarray(times, dtype=np.float64)).cpu()
    except (TypeError, ValueError):
        raise ConfigError(
            f"spacing must be a spacing name or a sequence of times, got {type(times).__name__}."
        ) from None
    fix = "pass times from noisiest to cleanest, e.g. a fitted schedule"
    if t.ndim != 1 or len(t) == 0:
        raise ConfigError(f"explicit times must be a non-empty 1-D sequence; {fix}.")
    if not torch.isfinite(t).all():
        raise ConfigError(f"explicit times contain NaN or inf; {fix}.")
    if len(t) > 1 and not (t[1:] < t[:-1]).all():
        raise ConfigError(f"explicit times must strictly decrease; {fix}.")
    if t[0] > schedule.t_max + 1e-9 or t[-1] < schedule.t_min - 1e-9:
        raise ConfigError(
            f"explicit times run from {t[0].item():g} to {t[-1].item():g}, outside schedule "
            f"{schedule.name!r}'s range [{schedule.t_min:g}, {schedule.t_max:g}]; pass times "
            "inside it."
        )
    if steps is not None and len(t) != steps:
        raise ConfigError(
            f"{len(t)} explicit times were given for steps={steps}; pass as many times as "
            "steps, or leave steps out."
        )
    return t.clamp(schedule.t_min, schedule.t_max)


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
    ramp = torch.linspace(0, 1, n + 1, dtype=torch.float64)[:n]  # the last point is clean data's
    if spacing == "logsnr":
        lam = lam_min + ramp * (lam_max - lam_min)
    else:  # karras: sigma_ve = exp(-lambda / 2), uniform in sigma_ve^(1 / rho)
        s_max, s_min = np.exp(-lam_min / 2) ** (1 / rho), np.exp(-lam_max / 2) ** (1 / rho)
        lam = -2 * rho * torch.log(s_max + ramp * (s_min - s_max))
    t = schedule.t_of_log_snr(lam)
    t[0] = t_hi  # the end point exactly, not to bisection accuracy
    if n > 1 and not (t[1:] < t[:-1]).all():
        raise ConfigError(f"{spacing!r} spacing repeats a time for steps={n}; use fewer steps.")
    return t


# --- the spacing of sample() calls that name none (the CLI's --spacing) -------------------

_AMBIENT: ContextVar[tuple | None] = ContextVar("diffkit_spacing", default=None)


@contextlib.contextmanager
def using_spacing(spacing, fitted: dict | None = None, where: str = "") -> Iterator[None]:
    """Within the block, ``sample()`` calls that name no spacing use ``spacing``.

    ``spacing`` is a name of :data:`SPACINGS`, explicit times, or ``"fitted"``: then each call
    takes the times ``fitted[sampler][str(steps)]["times"]`` (steps read as model calls, as
    ``diffkit fit-steps --nfe`` stores them), and a missing entry is a ConfigError naming the
    ``diffkit fit-steps`` command for the checkpoint ``where``.
    """
    token = _AMBIENT.set((spacing, fitted or {}, where))
    try:
        yield
    finally:
        _AMBIENT.reset(token)


def resolve_times(schedule: Schedule, sampler: str, steps: int | None, spacing) -> torch.Tensor:
    """The evaluation times of one ``sample()`` call: its ``spacing``, or when that is None
    the one :func:`using_spacing` set (default ``trailing``)."""
    if spacing is not None:
        return timesteps(schedule, steps, spacing)
    spacing, fitted, where = _AMBIENT.get() or ("trailing", {}, "")
    if not isinstance(spacing, str):
        return explicit_times(schedule, spacing)
    if spacing != FITTED:
        return timesteps(schedule, steps, spacing)
    return explicit_times(schedule, fitted_entry(fitted, sampler, steps, where)["times"])


def fitted_entry(fitted: dict, sampler: str | None, nfe: int | None, where: str) -> dict:
    """``fitted[sampler][str(nfe)]``, or a ConfigError naming ``diffkit fit-steps``."""
    where = where or "RUN"
    if nfe is None and sampler is not None:
        raise ConfigError(
            "--spacing fitted needs --steps: the model calls the steps were fitted for "
            f"(`diffkit fit-steps --checkpoint {where} --sampler {sampler} --nfe N`)."
        )
    entry = (fitted.get(sampler) or {}).get(str(nfe)) if sampler is not None else None
    if entry is None:
        have = ", ".join(f"{s} at {n}" for s, by in sorted(fitted.items()) for n in by)
        what = f"sampler {sampler!r} at {nfe} model calls" if sampler else "any sampler"
        command = f"--sampler {sampler or 'NAME'} --nfe {nfe or 'N'}"
        raise ConfigError(
            f"checkpoint {where} has no fitted steps for {what} (it has {have or 'none'}); "
            f"run `diffkit fit-steps --checkpoint {where} {command}` first."
        )
    return entry
