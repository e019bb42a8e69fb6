"""What every sampler shares: the network turned into ``(x0, eps)``, the coefficients
along a trajectory, noise drawn from an explicit generator, and the linear combination
of tensors that every step is.

The per-step path stays on the data's device and never asks the host for a value: times
and coefficients are Python floats computed once per call, and each step is a handful of
fused tensor ops (``torch.add(..., alpha=c)``) on x and the model's outputs.
"""

from __future__ import annotations

import math

import torch

from diffkit.errors import ShapeError
from diffkit.process import Prediction
from diffkit.schedules import Schedule

Tensor = torch.Tensor


# to_x0_eps (diffkit.process) for Python-float alpha and sigma, in two fused ops each.
def _from_eps(out, x, alpha, sigma):
    return torch.add(x, out, alpha=-sigma).div_(alpha), out


def _from_x0(out, x, alpha, sigma):
    return out, torch.add(x, out, alpha=-alpha).div_(sigma)


def _from_score(out, x, alpha, sigma):
    eps = out * -sigma
    return torch.add(x, eps, alpha=-sigma).div_(alpha), eps


def _from_v(out, x, alpha, sigma):
    norm = alpha**2 + sigma**2
    x0 = torch.add(x * (alpha / norm), out, alpha=-sigma / norm)
    return x0, torch.add(x * (sigma / norm), out, alpha=alpha / norm)


_TO_X0_EPS = {
    Prediction.EPS: _from_eps,
    Prediction.X0: _from_x0,
    Prediction.SCORE: _from_score,
    Prediction.V: _from_v,
}


def model_function(net, schedule: Schedule, prediction: str | Prediction, cond: dict | None):
    """Wrap ``net(x_t, t, **cond)`` as ``model_fn(x, t) -> (x0, eps)`` for one time ``t``.

    ``t`` is a float (or a 0-d CPU tensor) that the caller has range-checked; the network
    gets it as a (B,) tensor of x's dtype on x's device.
    """
    to_x0_eps = _TO_X0_EPS[Prediction.parse(prediction)]
    cond = cond or {}

    def model_fn(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        t = float(t)
        alpha, sigma = schedule.alpha_sigma_at(t)
        out = net(x, x.new_full((x.shape[0],), t), **cond)  # t as (B,)
        if out.shape != x.shape:
            raise ShapeError(
                f"the model returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)}; "
                "it must return its prediction with x's shape."
            )
        return to_x0_eps(out, x, alpha, sigma)

    return model_fn


def alphas_sigmas(schedule: Schedule, times) -> tuple[list[float], list[float]]:
    """``alpha`` and ``sigma`` at each of ``times`` (a tensor or a list), as floats."""
    if len(times) == 0:
        return [], []
    alpha, sigma = schedule.alpha_sigma(torch.as_tensor(times, dtype=torch.float64))
    return alpha.tolist(), sigma.tolist()


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


def combine(x: Tensor, a: float, terms: list[Tensor], weights: list[float]) -> Tensor:
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
