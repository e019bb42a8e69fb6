"""DPM-Solver++ (Lu et al. 2022b): exponential integrators of the probability-flow ODE in
data prediction, ``x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) x0 + ...`` with
``h = lambda_s - lambda_t`` and ``lambda = log(alpha / sigma)``.

The step to clean data (``sigma = 0``, ``h = inf``) is always first order, which makes it
exactly "return the last x0": the final denoising step, at no extra model call.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from diffkit.errors import ConfigError
from diffkit.sampling.base import (
    half_log_snr,
    randn_like,
    report,
    times_at_half_log_snr,
    trajectory,
)
from diffkit.sampling.registry import register


def multistep_order(order: int, i: int, n: int, lower_order_final: bool) -> int:
    """The order of step ``i`` of ``n``: warm up from first order, end first order.

    ``lower_order_final`` also lowers the last steps to ``n - i`` (diffusers' UniPC rule),
    which keeps few-step sampling stable; the step to clean data is first order regardless.
    """
    k = min(order, i + 1)
    if lower_order_final:
        k = min(k, n - i)
    return 1 if i == n - 1 else k


def dpmpp_update(x, history, lam_s, alpha_s, sigma_s, sigma_t, order):
    """One multistep DPM-Solver++ step of ``order`` 1-3 from the newest point in ``history``.

    ``history`` holds ``(lambda, x0)`` of the last evaluations, newest last (Lu et al. 2022b,
    Algorithm 2 for order 2; the order-3 form is the official code's, as in diffusers).
    """
    lam_t, d0 = history[-1]
    h = lam_s - lam_t
    phi = -math.expm1(-h)  # 1 - e^{-h}
    x = (sigma_s / sigma_t) * x + (alpha_s * phi) * d0
    if order == 1:
        return x
    lam_1, d1 = history[-2]
    r0 = (lam_t - lam_1) / h
    d1_0 = (d0 - d1) / r0
    if order == 2:
        return x + (0.5 * alpha_s * phi) * d1_0
    lam_2, d2 = history[-3]
    r1 = (lam_1 - lam_2) / h
    d1_1 = (d1 - d2) / r1
    first = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    second = (d1_0 - d1_1) / (r0 + r1)
    return x + (alpha_s * (1 - phi / h)) * first - (alpha_s * ((h - phi) / h**2 - 0.5)) * second


def multistep(model_fn, x, times, schedule, order, update, callback, lower_order_final):
    """The multistep loop: one model call per time, then ``update`` from the last ``order``
    (lambda, x0) pairs with arguments ``(x, history, lam_s, alpha_s, sigma_s, sigma_t, k)``."""
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    history = []  # (lambda, x0) of the last `order` evaluations
    for i, t in enumerate(times):
        x0, _ = model_fn(x, t)
        history = [*history[1 - order :], (lams[i], x0)]
        k = multistep_order(order, i, len(times), lower_order_final)
        x = update(x, history, lams[i + 1], alphas[i + 1], sigmas[i + 1], sigmas[i], k)
        report(callback, i, t, x, x0)
    return x


@register("dpmpp_2m")
def dpmpp_2m(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """DPM-Solver++(2M), multistep second order (Lu et al. 2022b, Algorithm 2)."""
    return multistep(model_fn, x, times, schedule, 2, dpmpp_update, callback, lower_order_final)


@register("dpmpp_3m")
def dpmpp_3m(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """DPM-Solver++(3M), multistep third order (Lu et al. 2022b; the official code's form)."""
    return multistep(model_fn, x, times, schedule, 3, dpmpp_update, callback, lower_order_final)


def sde_dpmpp_update(x, history, lam_s, alpha_s, sigma_s, sigma_t, order, noise):
    """One SDE-DPM-Solver++ step of ``order`` 1 or 2 (Lu et al. 2022b, Sec. 5; midpoint form).

    ``x_s = (sigma_s / sigma_t) e^{-h} x_t + alpha_s (1 - e^{-2h}) (x0 + D1 / 2)
    + sigma_s sqrt(1 - e^{-2h}) z``: the noise it adds back keeps the marginals of the
    reverse SDE, so errors of the model are partly forgotten instead of carried along.
    """
    lam_t, d0 = history[-1]
    h = lam_s - lam_t
    phi = -math.expm1(-2.0 * h)  # 1 - e^{-2h}
    x = (sigma_s / sigma_t * math.exp(-h)) * x + (alpha_s * phi) * d0
    if order == 2:
        lam_1, d1 = history[-2]
        r0 = (lam_t - lam_1) / h
        x = x + (0.5 * alpha_s * phi / r0) * (d0 - d1)
    return x + (sigma_s * math.sqrt(phi)) * noise


@register("dpmpp_2m_sde")
def dpmpp_2m_sde(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """SDE-DPM-Solver++(2M), multistep second order with fresh noise (Lu et al. 2022b)."""

    def update(x, history, lam_s, alpha_s, sigma_s, sigma_t, k):
        noise = randn_like(x, generator) if sigma_s > 0 else torch.zeros_like(x)
        return sde_dpmpp_update(x, history, lam_s, alpha_s, sigma_s, sigma_t, k, noise)

    return multistep(model_fn, x, times, schedule, 2, update, callback, lower_order_final)


@register("dpmpp_2s")
def dpmpp_2s(model_fn, x, times, schedule, *, generator=None, callback=None):
    """DPM-Solver++(2S), singlestep second order with r = 1/2 (Lu et al. 2022b, Algorithm 1).

    Two model calls per step between ``times`` (the midpoint in lambda), one on the last.
    """
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    mids = times_at_half_log_snr(schedule, [(a + b) / 2 for a, b in pairwise(lams[:-1])])
    for i, t in enumerate(times):
        x0, _ = model_fn(x, t)
        if i < len(mids):  # midpoint u with lambda_u = lambda_t + h / 2
            a_u, s_u = (c.item() for c in schedule.alpha_sigma(torch.tensor(mids[i])))
            x_u = dpmpp_update(x, [(lams[i], x0)], math.log(a_u / s_u), a_u, s_u, sigmas[i], 1)
            x0_u, _ = model_fn(x_u, torch.tensor(mids[i], dtype=torch.float64))
            x = (sigmas[i + 1] / sigmas[i]) * x - (
                alphas[i + 1] * math.expm1(lams[i] - lams[i + 1])
            ) * x0_u
        else:  # the step to clean data
            x = dpmpp_update(
                x, [(lams[i], x0)], lams[i + 1], alphas[i + 1], sigmas[i + 1], sigmas[i], 1
            )
        report(callback, i, t, x, x0)
    return x


@register("dpm_solver")
def dpm_solver(model_fn, x, times, schedule, *, generator=None, callback=None, order=2):
    """DPM-Solver-1/2/3, singlestep in noise prediction (Lu et al. 2022a; r = 1/2 and 1/3, 2/3).

    ``order`` model calls per step between ``times``, one on the last, whose x0 is the result.
    """
    if order not in (1, 2, 3):
        raise ConfigError(f"dpm_solver order must be 1, 2 or 3, got {order!r}.")
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    r = {1: [], 2: [0.5], 3: [1 / 3, 2 / 3]}[order]  # intermediate points, fractions of h
    stages = times_at_half_log_snr(
        schedule, [a + f * (b - a) for a, b in pairwise(lams[:-1]) for f in r]
    )
    for i, t in enumerate(times):
        x0, eps = model_fn(x, t)
        if i == len(times) - 1:  # the step to clean data: DDIM's, x = x0
            x = x0
            report(callback, i, t, x, x0)
            break
        a_t, h = alphas[i], lams[i + 1] - lams[i]
        a_s, s_s = alphas[i + 1], sigmas[i + 1]
        if order == 1:  # DDIM: x_s = (a_s / a_t) x - s_s (e^h - 1) eps
            x = (a_s / a_t) * x - (s_s * math.expm1(h)) * eps
        elif order == 2:
            t_u = torch.tensor(stages[i], dtype=torch.float64)
            a_u, s_u = (c.item() for c in schedule.alpha_sigma(t_u))
            x_u = (a_u / a_t) * x - (s_u * math.expm1(h / 2)) * eps
            _, eps_u = model_fn(x_u, t_u)
            x = (a_s / a_t) * x - (s_s * math.expm1(h)) * eps_u
        else:
            t_1, t_2 = (torch.tensor(u, dtype=torch.float64) for u in stages[2 * i : 2 * i + 2])
            (a_1, a_2), (s_1, s_2) = (
                c.tolist() for c in schedule.alpha_sigma(torch.stack([t_1, t_2]))
            )
            r1, r2 = r
            x_1 = (a_1 / a_t) * x - (s_1 * math.expm1(r1 * h)) * eps
            d1 = model_fn(x_1, t_1)[1] - eps
            e2 = math.expm1(r2 * h)
            x_2 = (a_2 / a_t) * x - (s_2 * e2) * eps - (s_2 * r2 / r1 * (e2 / (r2 * h) - 1)) * d1
            d2 = model_fn(x_2, t_2)[1] - eps
            e = math.expm1(h)
            x = (a_s / a_t) * x - (s_s * e) * eps - (s_s / r2 * (e / h - 1)) * d2
        report(callback, i, t, x, x0)
    return x
