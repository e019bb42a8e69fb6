"""Step schedules fitted to the model at hand: ``fit_steps(model, schedule, ...) -> times``.

The method is a direct search over where the steps sit in log-SNR, minimising the final
sample's distance to a many-step reference from the same starting noise, in the spirit of
the optimized time steps of Xue et al. 2024 (which also minimise a solver's global error
over the step locations) and Align Your Steps (Sabour et al. 2024), with the objective
measured rather than bounded:

1. A calibration batch x_T is solved once with many steps (DPM-Solver++(3M),
   ``reference_steps``, :func:`reference_times`): the reference ``x_ref``, close to the
   model's exact ODE map.
2. The first time is the schedule's noisiest (where x_T lives); the others are placed by
   ``n`` gaps of log-SNR between it and ``t_min`` (a softmax of ``n - 1`` free logits; the
   last gap is the final step to clean data), so every candidate is strictly decreasing.
   On a discrete schedule each candidate is snapped to the integer steps
   (:func:`on_grid`): its model was trained at those times only, and off them it can be
   arbitrarily wrong (a sinusoidal step embedding of a fractional step is a point it never
   saw), which a fit would otherwise exploit or suffer from.
3. Starting from the best fixed spacing for this sampler, Nelder-Mead (Nelder & Mead 1965;
   scipy's adaptive variant, one restart) minimises ``mean_b ||x_b - x_ref,b||``, the mean
   distance of the short trajectory's samples to the reference's: an upper bound on the
   Wasserstein-1 distance between what the sampler draws and what the ODE maps x_T to.

A sampler making several model calls per step gets the most steps whose calls, counted by
running it, stay within ``nfe``. Only deterministic samplers can be fitted (a fresh-noise
sampler's trajectories from one x_T do not converge to one point). Everything is
deterministic for a fixed generator seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from diffkit.errors import ConfigError, DataError
from diffkit.sampling.registry import get_sampler
from diffkit.sampling.timesteps import SPACINGS, explicit_times, finite_log_snr_range, timesteps
from diffkit.schedules import Schedule

Tensor = torch.Tensor
REFERENCE_SAMPLER = "dpmpp_3m"


def reference_times(schedule: Schedule, steps: int) -> Tensor:
    """The times of the fit's reference solve (DPM-Solver++(3M)), noisiest first.

    ``steps`` uniform log-SNR times on a continuous schedule; on a discrete one at most its
    T integer steps, evenly spaced (``trailing``): the times its model was trained at. (A
    TimeGrad model of T=100 solved on 100 fractional log-SNR times scored CRPS-sum 0.199
    on the bench's VAR, against 0.028 for 10 integer steps: the model is wrong off its grid.)
    """
    n = min(int(steps), schedule.T) if schedule.discrete else steps
    return timesteps(schedule, n, reference_spacing(schedule))


def reference_spacing(schedule: Schedule) -> str:
    """The spacing of :func:`reference_times`: ``trailing`` integer steps on a discrete
    schedule, ``logsnr`` on a continuous one."""
    return "trailing" if schedule.discrete else "logsnr"


def on_grid(schedule: Schedule, times: Tensor) -> Tensor:
    """``times`` (descending) on a discrete schedule's integer steps, still strictly
    decreasing (a step that rounds onto the one before moves one step cleaner); unchanged
    on a continuous schedule. The result may fall below ``t_min``: the caller checks."""
    if not schedule.discrete:
        return times
    t = times.round()
    for i in range(1, len(t)):
        t[i] = torch.minimum(t[i], t[i - 1] - 1)
    return t


@dataclass(frozen=True)
class FitResult:
    """A fitted schedule and how it was found (what ``diffkit fit-steps`` stores)."""

    times: list[float]  # descending, one per evaluation time
    sampler: str
    nfe: int  # model calls of one sampling run, counted
    error: float  # mean distance to the reference on the calibration batch
    start: str  # the fixed spacing the search started from
    fixed: dict[str, float] = field(default_factory=dict)  # each fixed spacing's error
    evaluations: int = 0
    seconds: float = 0.0
    method: str = "nelder-mead over log-SNR gaps, final-sample distance to a reference"

    def to_json(self) -> dict:
        return asdict(self)

    def times_tensor(self) -> Tensor:
        return torch.tensor(self.times, dtype=torch.float64)


def steps_within(sampler: str, nfe: int, schedule: Schedule, options: dict | None = None) -> int:
    """The most evaluation times of ``sampler`` whose model calls stay within ``nfe``.

    The calls are counted by running the sampler on a zero model, so samplers with several
    calls per step (Heun, the single-step DPM-Solvers) and their options are counted right.
    A sampler that draws fresh noise is a ConfigError: it cannot be fitted.
    """
    fn = get_sampler(sampler)
    if isinstance(nfe, bool) or not isinstance(nfe, (int, np.integer)) or nfe < 1:
        raise ConfigError(f"nfe must be a positive whole number of model calls, got {nfe!r}.")
    steps = None
    for n in range(min(int(nfe), schedule.T if schedule.discrete else nfe), 0, -1):
        calls, drew = _count_calls(fn, n, schedule, options or {})
        if drew:
            raise ConfigError(
                f"sampler {sampler!r} draws fresh noise, so its steps cannot be fitted to a "
                "reference trajectory; fit a deterministic one (ddim, euler, heun, dpmpp_2m, "
                "dpmpp_3m, dpmpp_2s, dpm_solver, unipc)."
            )
        if calls <= nfe:
            steps = n
            break
    if steps is None or steps < 2:
        raise ConfigError(
            f"sampler {sampler!r} gets {steps or 0} step(s) within {nfe} model calls, too few "
            "to place; raise nfe."
        )
    return steps


def _count_calls(fn, n: int, schedule: Schedule, options: dict) -> tuple[int, bool]:
    calls = [0]

    def zero_model(x, t):
        calls[0] += 1
        return torch.zeros_like(x), torch.zeros_like(x)

    g = torch.Generator().manual_seed(0)
    before = g.get_state()
    x = torch.zeros(1, 1, dtype=torch.float64)
    fn(zero_model, x, timesteps(schedule, n, "trailing"), schedule, generator=g, **options)
    return calls[0], not torch.equal(before, g.get_state())


def fit_steps(
    model,
    schedule: Schedule,
    *,
    sampler: str,
    nfe: int,
    x_T: Tensor | None = None,
    shape: tuple | None = None,
    cond: dict | None = None,
    prediction: str = "eps",
    reference_steps: int = 500,
    generator: torch.Generator | None = None,
    options: dict | None = None,
    max_evals: int | None = None,
    device=None,
) -> Tensor:
    """The ``nfe``-call evaluation times of ``sampler`` fitted to ``model`` (float64, descending).

    Places the steps where the final samples of a calibration batch come closest to a
    many-step reference trajectory from the same x_T (see the module docstring: a
    Nelder-Mead search over log-SNR positions from the best fixed spacing, minimising the
    mean distance to the reference, which bounds the Wasserstein-1 error). Pass the result
    as ``diffkit.sample(..., spacing=times)``.

    Parameters
    ----------
    model
        ``model(x_t, t, **cond)`` returning ``prediction``, as :func:`diffkit.sample` takes it.
    sampler, nfe, options
        The deterministic sampler, its budget of model calls, and its options.
    x_T, shape
        The calibration noise, or the shape of a batch to draw with ``generator`` (a few
        thousand rows is plenty: a schedule has at most ``nfe - 1`` free positions).
    reference_steps
        Steps of the reference solve (DPM-Solver++(3M) on :func:`reference_times`).
    max_evals
        Sampling runs the search may spend (default ``80 * steps``).

    Examples
    --------
    >>> times = diffkit.sampling.fit_steps(net, s, sampler="dpmpp_2m", nfe=5, shape=(2048, 2))
    >>> x0 = diffkit.sample(net, (16, 2), s, sampler="dpmpp_2m", spacing=times)
    """
    return fit_steps_report(
        model, schedule, sampler=sampler, nfe=nfe, x_T=x_T, shape=shape, cond=cond,
        prediction=prediction, reference_steps=reference_steps, generator=generator,
        options=options, max_evals=max_evals, device=device,
    ).times_tensor()  # fmt: skip


def fit_steps_report(model, schedule, *, sampler, nfe, x_T=None, shape=None, cond=None,
                     prediction="eps", reference_steps=500, generator=None, options=None,
                     max_evals=None, device=None) -> FitResult:  # fmt: skip
    """:func:`fit_steps` with what it found on the way (a :class:`FitResult`)."""
    from diffkit.sampling.front import initial_noise, sample

    if (x_T is None) == (shape is None):
        raise ConfigError("fit_steps needs the calibration noise x_T or a shape; pass one.")
    x = (
        x_T
        if x_T is not None
        else initial_noise(shape, schedule, generator=generator, device=device)
    )
    options = options or {}

    def run(times, name=sampler, opts=options):
        return sample(model, x, schedule, sampler=name, spacing=times, prediction=prediction,
                      cond=cond, generator=generator, device=device, **opts)  # fmt: skip

    reference = run(reference_times(schedule, reference_steps), REFERENCE_SAMPLER, {})
    return fit_times(run, reference, schedule, sampler, nfe, options=options, max_evals=max_evals)


def distance(x: Tensor, reference: Tensor) -> float:
    """Mean Euclidean distance between matching rows (inf when x is not finite)."""
    d = (x.double() - reference.double()).flatten(1).norm(dim=1).mean().item()
    return d if np.isfinite(d) else float("inf")


def fit_times(
    run: Callable[[Tensor], Tensor],
    reference: Tensor,
    schedule: Schedule,
    sampler: str,
    nfe: int,
    *,
    options: dict | None = None,
    max_evals: int | None = None,
) -> FitResult:
    """The search behind :func:`fit_steps` for any ``run(times) -> samples`` (the same x_T
    and noise every call) against ``reference``; the CLI fits a domain's whole ``generate``."""
    from scipy.optimize import minimize

    started = time.perf_counter()
    n = steps_within(sampler, nfe, schedule, options)
    t_lo, t_hi = finite_log_snr_range(schedule)
    lam_hi, lam_lo = schedule.log_snr(torch.tensor([t_hi, t_lo], dtype=torch.float64)).tolist()
    t_first = (
        schedule.t_max
        if math.isfinite(schedule.log_snr(torch.tensor(schedule.t_max)).item())
        else t_hi
    )
    cache: dict[tuple, float] = {}

    def error(times: Tensor) -> float:
        key = tuple(times.tolist())
        if key not in cache:
            try:
                cache[key] = distance(run(times), reference)
            except (ConfigError, DataError):  # refused times or a diverged run: no candidate
                cache[key] = float("inf")
        return cache[key]

    def times_of(u) -> Tensor:
        frac = torch.softmax(torch.tensor([0.0, *u], dtype=torch.float64), 0)  # (n,) gaps
        lam = lam_hi + (lam_lo - lam_hi) * frac.cumsum(0)[:-1]  # (n - 1,) after the first
        t = torch.cat([torch.tensor([t_first], dtype=torch.float64), schedule.t_of_log_snr(lam)])
        return on_grid(schedule, t)

    fixed = {}
    for spacing in SPACINGS:
        try:
            fixed[spacing] = (timesteps(schedule, n, spacing), None)
        except ConfigError:
            continue
        fixed[spacing] = (fixed[spacing][0], error(fixed[spacing][0]))
    starts = {k: v for k, (t, v) in fixed.items() if t[0] == t_first and np.isfinite(v)}
    start = min(starts, key=starts.get) if starts else "logsnr"
    u0 = _logits(
        schedule, fixed[start][0] if start in fixed else times_of(np.zeros(n - 1)), lam_hi, lam_lo
    )
    budget = max_evals or 80 * n

    def objective(u):
        try:
            times = explicit_times(schedule, times_of(u))
        except ConfigError:
            return 1e30
        e = error(times)
        return e if np.isfinite(e) else 1e30

    best = u0
    for scale in (0.7, 0.2):  # a restart from the best point, with a smaller simplex
        simplex = np.vstack([best, best + scale * np.eye(n - 1)])
        res = minimize(objective, best, method="Nelder-Mead", options={
            "maxfev": budget // 2, "initial_simplex": simplex, "adaptive": n > 4,
            "xatol": 1e-3, "fatol": 1e-9})  # fmt: skip
        if res.fun <= objective(best):
            best = res.x
    times = explicit_times(schedule, times_of(best))
    found = error(times)
    if start in fixed and not found <= fixed[start][1]:  # never worse than where it started
        times, found = fixed[start]
    calls, _ = _count_calls(get_sampler(sampler), n, schedule, options or {})
    return FitResult(
        times=times.tolist(),
        sampler=sampler,
        nfe=calls,
        error=found,
        start=start,
        fixed={k: v for k, (_, v) in fixed.items()},
        evaluations=len(cache),
        seconds=time.perf_counter() - started,
    )


def _logits(schedule: Schedule, times: Tensor, lam_hi: float, lam_lo: float) -> np.ndarray:
    """The free logits of :func:`fit_times`'s parametrisation that give ``times`` (gaps of
    log-SNR, each kept at least 1e-3 of the range so a zero one stays reachable)."""
    lam = schedule.log_snr(times[1:]).clamp(lam_hi, lam_lo).tolist()
    gaps = np.diff([lam_hi, *lam, lam_lo])
    gaps = np.maximum(gaps, 1e-3 * (lam_lo - lam_hi))
    logits = np.log(gaps)
    return logits[1:] - logits[0]
