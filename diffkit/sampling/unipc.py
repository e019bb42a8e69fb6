"""UniPC (Zhao et al. 2023): a multistep predictor (UniP) and a corrector (UniC) that reuses
the next model call, in data prediction with ``B(h) = e^{h} - 1`` ("bh2").

Both are linear in x and the last x0 predictions, so each step is computed before the loop
as ``x_s = a x + sum_k w_k x0_k`` (Zhao et al., UniP-p and UniC-p with the bh2
coefficients, as in their code) and the loop itself is multiplies and fused adds.
"""

from __future__ import annotations

import math

from diffkit.errors import ConfigError
from diffkit.sampling.base import (
    combine,
    from_pure_noise,
    half_log_snr,
    report,
    scalars,
    solve,
    trajectory,
)
from diffkit.sampling.dpmpp import multistep_order
from diffkit.sampling.registry import register


def _bh2(lams, alphas, sigmas, i, order):
    """What UniP-``order`` and UniC-``order`` share for the step from times[i] to times[i+1].

    Returns ``a`` and ``w`` of the first-order part ``a x + w m0``, ``c = alpha_s B(h)``,
    the ``r_k = (lambda_{i-k} - lambda_i) / h`` of the older points, and the system
    ``R rho = b`` with ``R[j] = r^j`` (r = 1 appended) and ``b[j] = h phi_{j+1}(h) j! / B(h)``.
    """
    h = lams[i + 1] - lams[i]
    hh = -h  # data prediction
    h_phi_1 = math.expm1(hh)
    b_h = h_phi_1  # bh2
    a, w, c = sigmas[i + 1] / sigmas[i], -alphas[i + 1] * h_phi_1, alphas[i + 1] * b_h
    rks = [(lams[i - k] - lams[i]) / h for k in range(1, order)]
    h_phi_k, factorial, b = h_phi_1 / hh - 1, 1, []
    for j in range(1, order + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= j + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    R = [[r ** (j - 1) for r in [*rks, 1.0]] for j in range(1, order + 1)]
    return a, w, c, rks, R, b


def unip_step(lams, alphas, sigmas, i, order):
    """UniP-``order`` from times[i] to times[i+1] as ``(a, weights)`` over the x0 history,
    newest first: ``x_s = a x + w m0 - c sum_k rho_k (m_k - m0) / r_k``."""
    if order == 1:
        h = lams[i + 1] - lams[i]
        return sigmas[i + 1] / sigmas[i], [-alphas[i + 1] * math.expm1(-h)]
    a, w, c, rks, R, b = _bh2(lams, alphas, sigmas, i, order)
    rhos = [0.5] if order == 2 else solve([row[:-1] for row in R[:-1]], b[:-1])
    older = [-c * rho / r for rho, r in zip(rhos, rks, strict=True)]
    return a, [w - sum(older), *older]


def unic_step(lams, alphas, sigmas, i, order):
    """UniC-``order`` of the step from times[i] to times[i+1], given the model's x0 at its
    end, as ``(a, weights, w_new)``: ``x_s = a x + w m0 - c (sum_k rho_k (m_k - m0) / r_k
    + rho_new (x0_new - m0))``, with ``x`` and the history those before the step."""
    a, w, c, rks, R, b = _bh2(lams, alphas, sigmas, i, order)
    rhos = [0.5] if order == 1 else solve(R, b)
    older = [-c * rho / r for rho, r in zip(rhos[:-1], rks, strict=True)]
    w_new = -c * rhos[-1]
    return a, [w - sum(older) - w_new, *older], w_new


@register("unipc")
@from_pure_noise
def unipc(
    model_fn, x, times, schedule, *, generator=None, callback=None, order=2, lower_order_final=True
):
    """UniPC-bh2 (Zhao et al. 2023): multistep UniP-``order`` with the UniC corrector, no
    extra model calls; ``order`` 1-3 (2 and 3 as recommended)."""
    if order not in (1, 2, 3):
        raise ConfigError(f"unipc order must be 1, 2 or 3, got {order!r}.")
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    n = len(times)
    orders = [multistep_order(order, i, n, lower_order_final) for i in range(n)]
    predictors = [unip_step(lams, alphas, sigmas, i, orders[i]) for i in range(n)]
    correctors = [unic_step(lams, alphas, sigmas, i, orders[i]) for i in range(n - 1)]
    scale = scalars([a for a, _ in predictors], x)  # UniC's is the same: sigma_s / sigma_t
    history, x_last = [], x  # x0 of the last `order` evaluations, newest first; x before a step
    for i, t in enumerate(times.tolist()):
        x0, _ = model_fn(x, t)
        if i > 0:  # UniC: correct x_i with its own model call, at the last step's order
            _, weights, w_new = correctors[i - 1]
            x = combine(x_last, scale[i - 1], history, weights).add_(x0, alpha=w_new)
        history = [x0, *history[: order - 1]]
        x_last = x
        _, weights = predictors[i]  # UniP: from x_i to the next time
        x = combine(x, scale[i], history, weights)
        report(callback, i, t, x, x0)
    return x
