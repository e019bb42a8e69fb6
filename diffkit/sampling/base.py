"""What every sampler shares: the network turned into ``(x0, eps)``, the coefficients
along a trajectory, and noise drawn from an explicit generator."""

from __future__ import annotations

import math

import torch

from diffkit.errors import ShapeError
from diffkit.process import Prediction, to_x0_eps
from diffkit.schedules import Schedule

Tensor = torch.Tensor


def model_function(net, schedule: Schedule, prediction: str | Prediction, cond: dict | None):
    """Wrap ``net(x_t, t, **cond)`` as ``model_fn(x, t) -> (x0, eps)`` for a scalar time t."""
    prediction = Prediction.parse(prediction)
    cond = cond or {}

    def model_fn(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        alpha, sigma = (c.item() for c in schedule.alpha_sigma(t))
        t_batch = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)  # (B,)
        out = net(x, t_batch, **cond)
        if out.shape != x.shape:
            raise ShapeError(
                f"the model returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)}; "
                "it must return its prediction with x's shape."
            )
        return to_x0_eps(out, x, alpha, sigma, prediction)

    return model_fn


def trajectory(schedule: Schedule, times: Tensor) -> tuple[list[float], list[float]]:
    """``alpha`` and ``sigma`` at each time, plus a last entry (1, 0) for clean data."""
    alpha, sigma = schedule.alpha_sigma(times)
    return [*alpha.tolist(), 1.0], [*sigma.tolist(), 0.0]


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


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn on the generator's device."""
    device = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return z.to(x.device)


def report(callback, i: int, t: Tensor, x: Tensor, x0: Tensor) -> None:
    """Call ``callback`` with the step's state, k-diffusion style, if one is given."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": x0})
