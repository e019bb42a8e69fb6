"""What every sampler shares: the network turned into ``(x0, eps)``, the coefficients
along a trajectory, noise drawn from an explicit generator, and the linear combination
of tensors that every step is.

The per-step path stays on the data's device and never asks the host for a value: times
and coefficients are Python floats computed once per call, and each step is a handful of
fused tensor ops (``torch.add(..., alpha=c)``) on x and the model's outputs.

Zero terminal SNR (``rescale=True``, spacings that start at ``t_max``): the first time may
have ``alpha = 0``, where x_T is pure noise, ``lambda = -inf`` and ``sigma / alpha = inf``.
There a v- or x0-prediction model gives ``x0 = E[x0]`` and ``eps = x / sigma``; an eps- or
score-prediction model cannot give x0 at all and is refused (:func:`_factors`). The step
from that time is DDIM's, ``x_s = alpha_s x0 + sigma_s eps``, the limit of every sampler's
update as ``h -> inf``: first order, since an evaluation at ``lambda = -inf`` carries no
slope. Samplers whose steps divide by ``alpha_t`` or difference ``lambda`` take it through
:func:`from_pure_noise`; DDPM's, DDIM's and RePaint's posterior steps are exact there.
"""

from __future__ import annotations

import functools
import math

import torch

from diffkit.errors import ConfigError
from diffkit.process import Prediction, check_prediction
from diffkit.schedules import Schedule

Tensor = torch.Tensor


# to_x0_eps (diffkit.process) in two fused ops, from the factors of :func:`_factors`.
def _from_eps(out, x, alpha, sigma, f):
    return torch.add(x, out, alpha=-sigma).mul_(f[0]), out


def _from_x0(out, x, alpha, sigma, f):
    return out, torch.add(x, out, alpha=-alpha).mul_(f[0])


def _from_score(out, x, alpha, sigma, f):
    eps = out * f[1]
    return torch.add(x, eps, alpha=-sigma).mul_(f[0]), eps


def _from_v(out, x, alpha, sigma, f):
    norm = alpha**2 + sigma**2
    return torch.add(x * f[0], out, alpha=-sigma / norm), torch.add(
        x * f[1], out, alpha=alpha / norm
    )


def _inv(v: float) -> float:
    return 1 / v if v != 0 else math.inf  # x0 at alpha = 0 is inf or NaN, as x / 0 would be


def _factors(p: Prediction, alpha: float, sigma: float) -> tuple[float, float]:
    """The multiplying factors each conversion needs (it adds with Python-float alphas)."""
    if alpha == 0 and p in (Prediction.EPS, Prediction.SCORE):
        raise ConfigError(
            f"a model that predicts {p.value} cannot give x0 at SNR 0 (the first time of a "
            "zero-terminal-SNR schedule); sample a v- or x0-prediction model, or use spacing "
            "'leading', 'logsnr' or 'karras', which start where the SNR is above 0."
        )
    if p is Prediction.V:
        norm = alpha**2 + sigma**2
        return alpha / norm, sigma / norm
    return (_inv(sigma), 0.0) if p is Prediction.X0 else (_inv(alpha), -sigma)


_TO_X0_EPS = {
    Prediction.EPS: _from_eps,
    Prediction.X0: _from_x0,
    Prediction.SCORE: _from_score,
    Prediction.V: _from_v,
}


def model_function(
    net, schedule: Schedule, prediction: str | Prediction, cond: dict | None, *, at=None, like=None
):
    """Wrap ``net(x_t, t, **cond)`` as ``model_fn(x, t) -> (x0, eps)`` for one time ``t``.

    ``t`` is a float (or a 0-d CPU tensor) that the caller has range-checked; the network
    gets it as a (B,) tensor of x's dtype on x's device. Given the times ``at`` which it will
    mostly be called and a tensor ``like`` the samples, the conversion factors for those
    times are made once as 0-d tensors on like's device (see :func:`scalars`).

    The first call checks what the network returned (:func:`check_prediction`), later ones
    its shape. ``model_fn.outputs_finite()`` is a 0-d bool tensor on the data's device, True
    while every output so far was finite (None before the first call): the finiteness of a
    running sum of the outputs, kept on the device and never read inside the loop, which
    :func:`diffkit.sample` checks once at the end, so a NaN that
    a later step washes out (a final ``x = x0`` from a model blind to its input) is seen too.
    """
    p = Prediction.parse(prediction)
    to_x0_eps, cond, prepared, checked, running = _TO_X0_EPS[p], cond or {}, {}, False, None
    if at is not None and like is not None:
        at = at.tolist() if isinstance(at, Tensor) else list(at)
        pairs = [schedule.alpha_sigma_at(t) for t in at]
        flat = scalars([f for a, s in pairs for f in _factors(p, a, s)], like)
        prepared = {t: (*pairs[k], flat[2 * k : 2 * k + 2]) for k, t in enumerate(at)}

    def model_fn(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        nonlocal checked, running
        t = float(t)
        if t in prepared:
            alpha, sigma, factors = prepared[t]
        else:
            alpha, sigma = schedule.alpha_sigma_at(t)
            factors = _factors(p, alpha, sigma)
        out = net(x, x.new_full((x.shape[0],), t), **cond)  # t as (B,)
        if not checked or getattr(out, "shape", None) != x.shape:  # type: first call only
            check_prediction(out, x)
            checked = True
        # a running sum on the device (no synchronisation), NaN or inf once any output is:
        # one reduction, a third of an isfinite().all(); float32 so that half precision
        # outputs do not overflow it
        total = out.sum(dtype=torch.float32)
        running = total if running is None else running.add_(total)
        return to_x0_eps(out, x, alpha, sigma, factors)

    model_fn.outputs_finite = lambda: None if running is None else torch.isfinite(running)
    return model_fn


def ddim_step(x0: Tensor, eps: Tensor, alpha_s, sigma_s: float) -> Tensor:
    """``alpha_s x0 + sigma_s eps``: deterministic DDIM (Song et al. 2021, eq. 12), which is
    also Euler's step on the probability-flow ODE and every first-order solver's step."""
    return torch.add(x0 * alpha_s, eps, alpha=sigma_s)


def from_pure_noise(sampler):
    """Run ``sampler`` from a first time at SNR 0 (``alpha = 0``) by DDIM's step to the
    second time, then the sampler itself from there (see the module docstring).

    For samplers whose updates divide by ``alpha_t`` or use differences of ``lambda``,
    undefined at ``lambda = -inf``; any other first time goes to the sampler untouched.
    The step's callback has ``i = 0`` and the sampler's own steps count on from 1.
    """

    @functools.wraps(sampler)
    def run(model_fn, x, times, schedule, *, generator=None, callback=None, **options):
        t = float(times[0])
        if schedule.alpha_sigma_at(t)[0] > 0:
            return sampler(
                model_fn, x, times, schedule, generator=generator, callback=callback, **options
            )
        x0, eps = model_fn(x, t)
        a_s, s_s = schedule.alpha_sigma_at(float(times[1])) if len(times) > 1 else (1.0, 0.0)
        x = ddim_step(x0, eps, a_s, s_s)
        report(callback, 0, t, x, x0)
        if len(times) == 1:
            return x
        later = None if callback is None else (lambda s: callback({**s, "i": s["i"] + 1}))
        return sampler(
            model_fn, x, times[1:], schedule, generator=generator, callback=later, **options
        )

    return run


def alphas_sigmas(schedule: Schedule, times) -> tuple[list[float], list[float]]:
    """``alpha`` and ``sigma`` at each of ``times`` (a tensor or a list), as floats: the very
    values the model function converts with (:meth:`Schedule.alpha_sigma_at`)."""
    times = times.tolist() if isinstance(times, Tensor) else times
    pairs = [schedule.alpha_sigma_at(t) for t in times]
    return [a for a, _ in pairs], [s for _, s in pairs]


LOWER_ORDER_FINAL = 15  # fewer times than this: the step into t_min is first order


def first_order_into_t_min(schedule: Schedule, times: list[float], i: int) -> bool:
    """Whether step ``i`` (from ``times[i]``) is taken first order (DDIM's / Euler's).

    It is when it is the step into a last time at the schedule's clean end ``t_min`` (as
    ``leading`` and ``linspace`` place it) and there are fewer than
    :data:`LOWER_ORDER_FINAL` times, as diffusers' ``lower_order_final`` does. The
    higher-order stages of that step read eps where sigma is near 0, so an error of the
    predicted point is amplified by 1 / sigma: Heun and DPM-Solver-2/3 scored SW1 2.4-5.5 on
    the ring at 3 ``linspace`` steps, against 0.4-0.5 taken first order.
    """
    n = len(times)
    return i == n - 2 and n < LOWER_ORDER_FINAL and times[-1] <= schedule.t_min


def trajectory(schedule: Schedule, times: Tensor) -> tuple[list[float], list[float]]:
    """``alpha`` and ``sigma`` at each time, plus a last entry (1, 0) for clean data."""
    alphas, sigmas = alphas_sigmas(schedule, times)
    return [*alphas, 1.0], [*sigmas, 0.0]


def half_log_snr(alphas: list[float], sigmas: list[float]) -> list[float]:
    """``lambda = log(alpha / sigma)`` (DPM-Solver's lambda, half the log-SNR) at each point.

    Clean data (sigma = 0) has ``lambda = +inf``, pure noise (alpha = 0) ``-inf``; a step
    to clean data then has ``h = inf`` and ``exp(-h) = 0``, which the solvers' first-order
    update turns into "return the denoised x0".
    """
    out = []
    for a, s in zip(alphas, sigmas, strict=True):
        if s == 0:
            out.append(math.inf)
        elif a == 0:
            out.append(-math.inf)
        else:
            out.append(math.log(a) - math.log(s))
    return out


def times_at_half_log_snr(schedule: Schedule, lams: list[float]) -> list[float]:
    """The times at which ``log(alpha / sigma)`` equals each of ``lams`` (for intermediate
    stages of single-step solvers), found at once before the loop."""
    if not lams:
        return []
    return schedule.t_of_log_snr(torch.tensor(lams, dtype=torch.float64) * 2).tolist()


def scalars(values: list[float], x: Tensor) -> list:
    """``values`` as 0-d tensors of x's dtype on x's device, made in one copy: multiplying by
    one costs half of multiplying by a Python float, which torch wraps in a tensor each time.
    Other dtypes than float32/64 keep the floats (a bfloat16 coefficient would round)."""
    if x.dtype not in (torch.float32, torch.float64):
        return list(values)
    return list(torch.tensor(values, dtype=x.dtype).to(x.device).unbind())


def combine(x: Tensor, a, terms: list[Tensor], weights: list[float]) -> Tensor:
    """``a x + sum_k weights[k] terms[k]``: one multiply and one fused add per term."""
    out = x * a
    for w, term in zip(weights, terms, strict=False):  # terms may hold more than are used
        out.add_(term, alpha=w)
    return out


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """``matrix^-1 rhs`` for the solvers' 2x2 and 3x3 systems, by Gaussian elimination with
    partial pivoting in floats (a tensor solve per step costs more than the step)."""
    n = len(rhs)
    m = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(c + 1, n):
            f = m[r][c] / m[c][c]
            m[r] = [a - f * b for a, b in zip(m[r], m[c], strict=True)]
    out = [0.0] * n
    for r in reversed(range(n)):
        out[r] = (m[r][n] - sum(m[r][k] * out[k] for k in range(r + 1, n))) / m[r][r]
    return out


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, on x's device when the generator is there.

    A generator on another device (a CPU generator for CUDA data, for results that agree
    across devices) draws there and the noise is copied over.
    """
    device = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return z if device == x.device else z.to(x.device)


def report(callback, i: int, t: float, x: Tensor, x0: Tensor) -> None:
    """Call ``callback`` with the step's state, k-diffusion style, if one is given."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": x0})
