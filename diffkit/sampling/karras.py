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

from diffkit.sampling.base import randn_like, report, trajectory
from diffkit.sampling.registry import register


def churn(x, t, alpha, sigma_ve, gamma, s_noise, schedule, generator):
    """Algorithm 2, lines 5-6: move ``x`` (at ``alpha``, ``sigma_ve``) up to the noise level
    ``(1 + gamma) sigma_ve``, clipped at ``t_max``; returns ``(x, t, alpha, sigma_ve)``."""
    if gamma <= 0:
        return x, t, alpha, sigma_ve
    lam_hat = torch.tensor(-2 * math.log(sigma_ve * (1 + gamma)), dtype=torch.float64)
    t_hat = schedule.t_of_log_snr(lam_hat)
    a_hat, s_hat = (c.item() for c in schedule.alpha_sigma(t_hat))
    ve_hat = s_hat / a_hat
    noise = math.sqrt(max(ve_hat**2 - sigma_ve**2, 0.0)) * s_noise
    x_hat = a_hat * (x / alpha + noise * randn_like(x, generator))
    return x_hat, t_hat, a_hat, ve_hat


def churn_gamma(sigma_ve, n, s_churn, s_tmin, s_tmax):
    """Algorithm 2, line 4: ``min(S_churn / N, sqrt(2) - 1)`` inside ``[S_tmin, S_tmax]``."""
    return min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= sigma_ve <= s_tmax else 0.0


@register("euler")
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
    for i, t in enumerate(times):
        gamma = churn_gamma(ves[i], len(times), s_churn, s_tmin, s_tmax)
        x, t_hat, a_hat, ve_hat = churn(
            x, t, alphas[i], ves[i], gamma, s_noise, schedule, generator
        )
        x0, eps = model_fn(x, t_hat)
        # x_ve' = x_ve + (sigma_ve' - sigma_ve) eps, written in x = alpha x_ve (two ops fewer)
        a_next, step = alphas[i + 1], ves[i + 1] - ve_hat
        x = x0 if ves[i + 1] == 0 else (a_next / a_hat) * x + (a_next * step) * eps
        report(callback, i, t, x, x0)
    return x


@register("heun")
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
    for i, t in enumerate(times):
        gamma = churn_gamma(ves[i], len(times), s_churn, s_tmin, s_tmax)
        x, t_hat, a_hat, ve_hat = churn(
            x, t, alphas[i], ves[i], gamma, s_noise, schedule, generator
        )
        x0, eps = model_fn(x, t_hat)
        if ves[i + 1] == 0:  # the last step is Euler's: x = x0
            x = x0
        else:
            a_next, step = alphas[i + 1], ves[i + 1] - ve_hat
            x = (a_next / a_hat) * x
            _, eps_next = model_fn(x + (a_next * step) * eps, times[i + 1])  # Euler's x'
            x = x + (0.5 * a_next * step) * (eps + eps_next)
        report(callback, i, t, x, x0)
    return x
