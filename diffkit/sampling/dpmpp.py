"""DPM-Solver++ (Lu et al. 2022b): exponential integrators of the probability-flow ODE in
data prediction, ``x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) x0 + ...`` with
``h = lambda_s - lambda_t`` and ``lambda = log(alpha / sigma)``.

The step to clean data (``sigma = 0``, ``h = inf``) is always first order, which makes it
exactly "return the last x0": the final denoising step, at no extra model call.
"""

from __future__ import annotations

import math
from itertools import pairwise

from diffkit.errors import ConfigError
from diffkit.sampling.base import (
    alphas_sigmas,
    combine,
    first_order_into_t_min,
    from_pure_noise,
    half_log_snr,
    randn_like,
    report,
    scalars,
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


def dpmpp_step(lams, alphas, sigmas, i, order, sde=False):
    """Step ``i`` of multistep DPM-Solver++ as ``(a, weights, noise)``: the update is
    ``x_s = a x_t + sum_k weights[k] x0_k + noise z`` over the x0 of the last evaluations,
    newest first, so the loop is one multiply and a fused add per term.

    Lu et al. 2022b, Algorithm 2 (order 2), the official code's order 3 (as in diffusers),
    and with ``sde`` the SDE-DPM-Solver++ midpoint form (Sec. 5): ``x_s = (sigma_s /
    sigma_t) e^{-h} x_t + alpha_s (1 - e^{-2h}) (x0 + D1 / 2) + sigma_s sqrt(1 - e^{-2h}) z``,
    whose noise keeps the reverse SDE's marginals, so model errors are partly forgotten.
    """
    lam_t, lam_s = lams[i], lams[i + 1]
    h = lam_s - lam_t
    a_s, s_s, s_t = alphas[i + 1], sigmas[i + 1], sigmas[i]
    if sde:
        phi = -math.expm1(-2.0 * h)  # 1 - e^{-2h}
        a, noise = s_s / s_t * math.exp(-h), s_s * math.sqrt(phi)
    else:
        phi = -math.expm1(-h)  # 1 - e^{-h}
        a, noise = s_s / s_t, 0.0
    w0 = a_s * phi
    if order == 1:
        return a, [w0], noise
    r0 = (lam_t - lams[i - 1]) / h
    if order == 2:  # + alpha_s phi / 2 * D1, D1 = (x0_0 - x0_1) / r0
        c = 0.5 * a_s * phi / r0
        return a, [w0 + c, -c], noise
    # order 3: + c1 (D1_0 + q (D1_0 - D1_1)) - c2 (D1_0 - D1_1) / (r0 + r1), with
    # D1_0 = (x0_0 - x0_1) / r0, D1_1 = (x0_1 - x0_2) / r1, q = r0 / (r0 + r1)
    r1 = (lams[i - 1] - lams[i - 2]) / h
    c1, c2 = a_s * (1 - phi / h), a_s * ((h - phi) / h**2 - 0.5)
    q = r0 / (r0 + r1)
    u = c1 * (1 + q) - c2 / (r0 + r1)  # the weight of D1_0
    v = c2 / (r0 + r1) - c1 * q  # the weight of D1_1
    return a, [w0 + u / r0, v / r1 - u / r0, -v / r1], noise


def multistep(model_fn, x, times, schedule, *, order, lower_order_final, sde, generator, callback):
    """The multistep DPM-Solver++ loop: one model call per time, then step ``i``'s update
    from the last ``order`` x0 predictions (:func:`dpmpp_step`, all computed before)."""
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    n = len(times)
    steps = [
        dpmpp_step(lams, alphas, sigmas, i, multistep_order(order, i, n, lower_order_final), sde)
        for i in range(n)
    ]
    scale = scalars([a for a, _, _ in steps], x)
    history = []  # x0 of the last `order` evaluations, newest first
    for i, t in enumerate(times.tolist()):
        x0, _ = model_fn(x, t)
        history = [x0, *history[: order - 1]]
        _, weights, noise = steps[i]
        x = combine(x, scale[i], history, weights)
        if noise > 0:  # SDE-DPM-Solver++ only; none on the step to clean data
            x.add_(randn_like(x, generator), alpha=noise)
        report(callback, i, t, x, x0)
    return x


@register("dpmpp_2m")
@from_pure_noise
def dpmpp_2m(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """DPM-Solver++(2M), multistep second order (Lu et al. 2022b, Algorithm 2)."""
    return multistep(
        model_fn, x, times, schedule, order=2, lower_order_final=lower_order_final, sde=False,
        generator=generator, callback=callback,
    )  # fmt: skip


@register("dpmpp_3m")
@from_pure_noise
def dpmpp_3m(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """DPM-Solver++(3M), multistep third order (Lu et al. 2022b; the official code's form)."""
    return multistep(
        model_fn, x, times, schedule, order=3, lower_order_final=lower_order_final, sde=False,
        generator=generator, callback=callback,
    )  # fmt: skip


@register("dpmpp_2m_sde")
@from_pure_noise
def dpmpp_2m_sde(
    model_fn, x, times, schedule, *, generator=None, callback=None, lower_order_final=True
):
    """SDE-DPM-Solver++(2M), multistep second order with fresh noise (Lu et al. 2022b)."""
    return multistep(
        model_fn, x, times, schedule, order=2, lower_order_final=lower_order_final, sde=True,
        generator=generator, callback=callback,
    )  # fmt: skip


@register("dpmpp_2s")
@from_pure_noise
def dpmpp_2s(model_fn, x, times, schedule, *, generator=None, callback=None):
    """DPM-Solver++(2S), singlestep second order with r = 1/2 (Lu et al. 2022b, Algorithm 1).

    Two model calls per step between ``times`` (the midpoint in lambda), one on the last.
    """
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    mids = times_at_half_log_snr(schedule, [(a + b) / 2 for a, b in pairwise(lams[:-1])])
    mid_alphas, mid_sigmas = alphas_sigmas(schedule, mids)
    steps = []  # (t_u, x_u = c_x x + c_0 x0, x_s = k_x x + k_u x0_u)
    for i, (t_u, a_u, s_u) in enumerate(zip(mids, mid_alphas, mid_sigmas, strict=True)):
        a_s, s_s, s_t = alphas[i + 1], sigmas[i + 1], sigmas[i]
        h_u = math.log(a_u / s_u) - lams[i]  # the midpoint u with lambda_u = lambda_t + h / 2
        to_u = (s_u / s_t, -a_u * math.expm1(-h_u))  # first order from t to u
        to_s = (s_s / s_t, -a_s * math.expm1(lams[i] - lams[i + 1]))  # from t to s with x0_u
        steps.append((t_u, *to_u, *to_s))
    for i, t in enumerate(times.tolist()):
        x0, _ = model_fn(x, t)
        if i < len(steps):
            t_u, c_x, c_0, k_x, k_u = steps[i]
            x0_u, _ = model_fn((x * c_x).add_(x0, alpha=c_0), t_u)
            x = (x * k_x).add_(x0_u, alpha=k_u)
        else:  # the step to clean data, first order: x = x0
            x = combine(x, sigmas[i + 1] / sigmas[i], [x0], [alphas[i + 1]])
        report(callback, i, t, x, x0)
    return x


@register("dpm_solver")
@from_pure_noise
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
    stage_alphas, stage_sigmas = alphas_sigmas(schedule, stages)
    times = times.tolist()
    for i, t in enumerate(times):
        x0, eps = model_fn(x, t)
        if i == len(times) - 1:  # the step to clean data: DDIM's, x = x0
            x = x0
            report(callback, i, t, x, x0)
            break
        a_t, h = alphas[i], lams[i + 1] - lams[i]
        a_s, s_s = alphas[i + 1], sigmas[i + 1]
        # DDIM: x_s = (a_s / a_t) x - s_s (e^h - 1) eps
        if order == 1 or first_order_into_t_min(schedule, times, i):
            x = (x * (a_s / a_t)).add_(eps, alpha=-s_s * math.expm1(h))
        elif order == 2:
            t_u, a_u, s_u = stages[i], stage_alphas[i], stage_sigmas[i]
            x_u = (x * (a_u / a_t)).add_(eps, alpha=-s_u * math.expm1(h / 2))
            _, eps_u = model_fn(x_u, t_u)
            x = (x * (a_s / a_t)).add_(eps_u, alpha=-s_s * math.expm1(h))
        else:
            j = 2 * i
            (t_1, t_2), (a_1, a_2), (s_1, s_2) = (
                c[j : j + 2] for c in (stages, stage_alphas, stage_sigmas)
            )
            r1, r2 = r
            x_1 = (x * (a_1 / a_t)).add_(eps, alpha=-s_1 * math.expm1(r1 * h))
            d1 = model_fn(x_1, t_1)[1] - eps
            e2 = math.expm1(r2 * h)
            x_2 = (x * (a_2 / a_t)).add_(eps, alpha=-s_2 * e2)
            x_2.add_(d1, alpha=-s_2 * r2 / r1 * (e2 / (r2 * h) - 1))
            d2 = model_fn(x_2, t_2)[1] - eps
            e = math.expm1(h)
            x = (x * (a_s / a_t)).add_(eps, alpha=-s_s * e).add_(d2, alpha=-s_s / r2 * (e / h - 1))
        report(callback, i, t, x, x0)
    return x
