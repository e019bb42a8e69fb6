"""UniPC (Zhao et al. 2023): a multistep predictor (UniP) and a corrector (UniC) that reuses
the next model call, in data prediction with ``B(h) = e^{h} - 1`` ("bh2")."""

from __future__ import annotations

import math

import torch

from diffkit.errors import ConfigError
from diffkit.sampling.base import half_log_snr, report, trajectory
from diffkit.sampling.dpmpp import multistep_order
from diffkit.sampling.registry import register


def unipc_update(x, history, lam_s, alpha_s, sigma_s, sigma_t, order, x0_new=None):
    """UniP-``order`` step from the newest point of ``history`` (``(lambda, x0)`` pairs, newest
    last) to ``lam_s``; given ``x0_new`` (the model at the step's end) it is UniC-``order``.

    Zhao et al. 2023, UniP-p and UniC-p with the bh2 coefficients, as in their code.
    """
    lam_t, m0 = history[-1]
    h = lam_s - lam_t
    hh = -h  # data prediction
    h_phi_1 = math.expm1(hh)
    x_new = (sigma_s / sigma_t) * x - (alpha_s * h_phi_1) * m0
    rks = [(lam_j - lam_t) / h for lam_j, _ in history[-2 : -order - 1 : -1]] if order > 1 else []
    d1s = [(m_j - m0) / r for (_, m_j), r in zip(history[-2 : -order - 1 : -1], rks, strict=True)]
    if x0_new is None and not d1s:
        return x_new
    # R[j] = rks^j and b[j] = h phi_{j+1}(h) j! / B(h), j = 0..order-1
    rks = [*rks, 1.0]
    b_h = math.expm1(hh)
    h_phi_k, factorial, b = h_phi_1 / hh - 1, 1, []
    for j in range(1, order + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= j + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    R = torch.tensor(
        [[r ** (j - 1) for r in rks] for j in range(1, order + 1)], dtype=torch.float64
    )
    b = torch.tensor(b, dtype=torch.float64)
    if x0_new is None:  # predictor
        rhos = [0.5] if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1]).tolist()
        return x_new - (alpha_s * b_h) * sum(rho * d for rho, d in zip(rhos, d1s, strict=True))
    rhos = [0.5] if order == 1 else torch.linalg.solve(R, b).tolist()  # corrector
    res = sum(rho * d for rho, d in zip(rhos[:-1], d1s, strict=True)) + rhos[-1] * (x0_new - m0)
    return x_new - (alpha_s * b_h) * res


@register("unipc")
def unipc(
    model_fn, x, times, schedule, *, generator=None, callback=None, order=2, lower_order_final=True
):
    """UniPC-bh2 (Zhao et al. 2023): multistep UniP-``order`` with the UniC corrector, no
    extra model calls; ``order`` 1-3 (2 and 3 as recommended)."""
    if order not in (1, 2, 3):
        raise ConfigError(f"unipc order must be 1, 2 or 3, got {order!r}.")
    alphas, sigmas = trajectory(schedule, times)
    lams = half_log_snr(alphas, sigmas)
    history, x_last, k = [], None, 1  # (lambda, x0) of the last evaluations; last x and order
    for i, t in enumerate(times):
        x0, _ = model_fn(x, t)
        if i > 0:  # UniC: correct x_i with its own model call, at the last step's order
            x = unipc_update(x_last, history, lams[i], alphas[i], sigmas[i], sigmas[i - 1], k, x0)
        history = [*history[-(order - 1) :], (lams[i], x0)] if order > 1 else [(lams[i], x0)]
        k = multistep_order(order, i, len(times), lower_order_final)
        x_last = x
        x = unipc_update(x, history, lams[i + 1], alphas[i + 1], sigmas[i + 1], sigmas[i], k)
        report(callback, i, t, x, x0)
    return x
