"""Euler and Heun on the probability-flow ODE (Karras et al. 2022, Algorithms 1 and 2).

Karras et al. write the ODE for VE-like variables, ``dx/dsigma = (x - D(x)) / sigma``. Any
schedule maps to it with ``sigma_ve = sigma / alpha`` and ``x_ve = x / alpha``; then the
slope ``(x_ve - D) / sigma_ve`` is exactly the model's eps, and deterministic Euler is DDIM.
Churn (Algorithm 2, lines 4-6) raises the noise level to ``sigma_hat = (1 + gamma) sigma``
before each step by adding fresh noise; the step to ``sigma = 0`` is a plain Euler step,
which lands on the denoised x0.
"""

from __future__ import annotations

import math

import torch

from diffkit.sampling.base import (
    first_order_into_t_min,
    from_pure_noise,
    randn_like,
    report,
    scalars,
    trajectory,
)
from diffkit.sampling.registry import register


def churn_gamma(sigma_ve, n, s_churn, s_tmin, s_tmax):
    """Algorithm 2, line 4: ``min(S_churn / N, sqrt(2) - 1)`` inside ``[S_tmin, S_tmax]``."""
    return min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= sigma_ve <= s_tmax else 0.0


def churn_levels(schedule, times, alphas, ves, s_churn, s_tmin, s_tmax, s_noise):
    """Algorithm 2, lines 4-6, for every step at once: ``(t_hat, alpha_hat, sigma_ve_hat,
    noise)`` per step, with ``sigma_ve_hat = (1 + gamma) sigma_ve`` clipped at ``t_max`` and
    ``noise`` the scale of the fresh noise (None where gamma = 0: no churn, no draw)."""
    n = len(times)
    levels = [(t, alphas[i], ves[i], None) for i, t in enumerate(times)]
    gammas = [churn_gamma(ves[i], n, s_churn, s_tmin, s_tmax) for i in range(n)]
    raised = [i for i in range(n) if gammas[i] > 0]
    if not raised:
        return levels
    lam_hat = [-2 * math.log(ves[i] * (1 + gammas[i])) for i in raised]
    t_hat = schedule.t_of_log_snr(torch.tensor(lam_hat, dtype=torch.float64))
    a_hat, s_hat = (c.tolist() for c in schedule.alpha_sigma(t_hat))
    for i, t, a, s in zip(raised, t_hat.tolist(), a_hat, s_hat, strict=True):
        ve_hat = s / a
        levels[i] = (t, a, ve_hat, math.sqrt(max(ve_hat**2 - ves[i] ** 2, 0.0)) * s_noise)
    return levels


@register("euler")
@from_pure_noise
def euler(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=math.inf,
    s_noise=1.0,
):
    """Euler on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without Heun's step).

    With ``s_churn > 0``, Algorithm 2's churn adds fresh noise before each step.
    """
    alphas, sigmas = trajectory(schedule, times)
    ves = [s / a for a, s in zip(alphas, sigmas, strict=True)]
    times = times.tolist()
    levels = churn_levels(schedule, times, alphas, ves, s_churn, s_tmin, s_tmax, s_noise)
    # x_ve' = x_ve + (sigma_ve' - sigma_ve) eps, written in x = alpha x_ve (two ops fewer)
    scale = scalars([alphas[i + 1] / a_hat for i, (_, a_hat, _, _) in enumerate(levels)], x)
    for i, t in enumerate(times):
        t_hat, a_hat, ve_hat, noise = levels[i]
        if noise is not None:  # x_hat = a_hat (x / alpha + noise z)
            x = (x * (a_hat / alphas[i])).add_(randn_like(x, generator), alpha=a_hat * noise)
        x0, eps = model_fn(x, t_hat)
        step = alphas[i + 1] * (ves[i + 1] - ve_hat)
        x = x0 if ves[i + 1] == 0 else (x * scale[i]).add_(eps, alpha=step)
        report(callback, i, t, x, x0)
    return x


@register("heun")
@from_pure_noise
def heun(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=math.inf,
    s_noise=1.0,
):
    """Heun's method (Karras et al. 2022, Algorithm 1; with ``s_churn > 0``, Algorithm 2).

    Two model calls per step, one on the last step (to sigma = 0, which is Euler's).
    """
    alphas, sigmas = trajectory(schedule, times)
    ves = [s / a for a, s in zip(alphas, sigmas, strict=True)]
    times = times.tolist()
    levels = churn_levels(schedule, times, alphas, ves, s_churn, s_tmin, s_tmax, s_noise)
    for i, t in enumerate(times):
        t_hat, a_hat, ve_hat, noise = levels[i]
        if noise is not None:
            x = (x * (a_hat / alphas[i])).add_(randn_like(x, generator), alpha=a_hat * noise)
        x0, eps = model_fn(x, t_hat)
        if ves[i + 1] == 0:  # the last step is Euler's: x = x0
            x = x0
        elif first_order_into_t_min(schedule, times, i):  # Euler's into t_min
            x = (x * (alphas[i + 1] / a_hat)).add_(eps, alpha=alphas[i + 1] * (ves[i + 1] - ve_hat))
        else:
            a_next, step = alphas[i + 1], ves[i + 1] - ve_hat
            x = x * (a_next / a_hat)
            _, eps_next = model_fn(torch.add(x, eps, alpha=a_next * step), times[i + 1])  # Euler
            x.add_(eps, alpha=0.5 * a_next * step).add_(eps_next, alpha=0.5 * a_next * step)
        report(callback, i, t, x, x0)
    return x
