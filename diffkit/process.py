"""The forward process ``x_t = alpha_t x_0 + sigma_t eps``, its posterior, and the pure
conversions between what a network predicts (eps, x0, v, score).

Everything here takes ``alpha`` and ``sigma`` already broadcast to ``x``'s shape (see
:func:`expand`) or a schedule and times, never a network.
"""

from __future__ import annotations

from enum import Enum

import torch

from diffkit.errors import ConfigError, ShapeError
from diffkit.schedules import Schedule

Tensor = torch.Tensor


class Prediction(str, Enum):
    """What a network returns."""

    EPS = "eps"
    X0 = "x0"
    V = "v"
    SCORE = "score"

    @classmethod
    def parse(cls, value: str | Prediction) -> Prediction:
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(p.value for p in cls)
            raise ConfigError(f"unknown prediction {value!r}; choose one of: {valid}.") from None


def expand(a: Tensor, x: Tensor) -> Tensor:
    """Per-example coefficients ``a`` (B,) or scalar, as ``x``'s dtype, shaped to broadcast."""
    a = torch.as_tensor(a, device=x.device).to(x.dtype)
    if a.ndim == 0:
        return a
    return a.reshape(a.shape[0], *([1] * (x.ndim - 1)))  # (B, 1, ..., 1)


def coefficients(
    schedule: Schedule, t: Tensor, x: Tensor, *, check: bool = True
) -> tuple[Tensor, Tensor]:
    """``(alpha_t, sigma_t)`` broadcast against ``x``; ``check=False`` skips the range check
    (one host synchronisation on an accelerator) for times known to be valid."""
    alpha, sigma = schedule.alpha_sigma(t, check=check)
    return expand(alpha, x), expand(sigma, x)


def check_prediction(out, x: Tensor, who: str = "the model") -> Tensor:
    """``out`` if it is a floating-point tensor shaped like ``x``, else one ShapeError saying
    what came back instead (a tuple, a numpy array, another shape) and what must."""
    if not isinstance(out, Tensor):
        kind = type(out).__module__.split(".")[0] + "." + type(out).__name__
        kind = type(out).__name__ if kind.startswith("builtins.") else kind
        hint = " (e.g. out[0])" if isinstance(out, (tuple, list)) else ""
        raise ShapeError(
            f"{who} returned a {kind}; it must return one torch.Tensor{hint} with x's shape "
            f"{tuple(x.shape)}."
        )
    if not out.is_floating_point():
        raise ShapeError(f"{who} returned a {out.dtype} tensor; return floating-point predictions.")
    if out.shape != x.shape:
        raise ShapeError(
            f"{who} returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)}; "
            "it must return its prediction with x's shape."
        )
    return out


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, schedule: Schedule) -> Tensor:
    """Draw from q(x_t | x_0): ``alpha_t x_0 + sigma_t noise``."""
    if noise.shape != x0.shape:
        raise ShapeError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}.")
    alpha, sigma = coefficients(schedule, t, x0)
    return alpha * x0 + sigma * noise


def transition(alpha_s: Tensor, sigma_s: Tensor, alpha_t: Tensor, sigma_t: Tensor):
    """``(alpha_{t|s}, sigma_{t|s}^2)`` of q(x_t | x_s) for s < t (Kingma et al. 2021, eq. 3)."""
    alpha_ts = alpha_t / alpha_s
    return alpha_ts, sigma_t**2 - alpha_ts**2 * sigma_s**2


def posterior_variance(alpha_s, sigma_s, alpha_t, sigma_t):
    """Variance of q(x_s | x_t, x_0): ``sigma_{t|s}^2 sigma_s^2 / sigma_t^2`` (beta-tilde)."""
    return transition(alpha_s, sigma_s, alpha_t, sigma_t)[1] * sigma_s**2 / sigma_t**2


def posterior_coefficients(alpha_s, sigma_s, alpha_t, sigma_t):
    """``(c_t, c_0, var)`` of q(x_s | x_t, x_0) = N(c_t x_t + c_0 x_0, var) for s < t."""
    alpha_ts, var_ts = transition(alpha_s, sigma_s, alpha_t, sigma_t)
    c_t, c_0 = alpha_ts * sigma_s**2 / sigma_t**2, alpha_s * var_ts / sigma_t**2
    return c_t, c_0, posterior_variance(alpha_s, sigma_s, alpha_t, sigma_t)


def posterior(x0: Tensor, x_t: Tensor, alpha_s, sigma_s, alpha_t, sigma_t):
    """Mean and variance of q(x_s | x_t, x_0) for s < t; ``sigma_s = 0`` gives ``(x0, 0)``.

    With one DDPM step this is Ho et al. 2020, eq. (7): the variance is beta-tilde.
    """
    c_t, c_0, var = posterior_coefficients(alpha_s, sigma_s, alpha_t, sigma_t)
    return c_t * x_t + c_0 * x0, var


def posterior_at(x0: Tensor, x_t: Tensor, t: Tensor, schedule: Schedule, s: Tensor | None = None):
    """q(x_s | x_t, x_0) at times ``t`` and ``s`` (default ``t - 1``; ``s < 0``: clean data)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    s = t - 1 if s is None else torch.as_tensor(s, dtype=torch.float64)
    alpha_t, sigma_t = coefficients(schedule, t, x_t)
    clean = s < schedule.t_min
    alpha_s, sigma_s = schedule.alpha_sigma(torch.where(clean, t, s))
    alpha_s = expand(torch.where(clean, 1.0, alpha_s), x_t)
    sigma_s = expand(torch.where(clean, 0.0, sigma_s), x_t)
    return posterior(x0, x_t, alpha_s, sigma_s, alpha_t, sigma_t)


# --- conversions -------------------------------------------------------------------------
# With x_t = alpha x0 + sigma eps and v = alpha eps - sigma x0 (Salimans & Ho 2022), solving
# the 2x2 system gives x0 = (alpha x_t - sigma v) / (alpha^2 + sigma^2) for any schedule.


def to_x0_eps(pred: Tensor, x_t: Tensor, alpha, sigma, prediction) -> tuple[Tensor, Tensor]:
    """Turn a network output into ``(x0, eps)``, each computed the numerically safe way."""
    p = Prediction.parse(prediction)
    if p is Prediction.EPS:
        return (x_t - sigma * pred) / alpha, pred
    if p is Prediction.X0:
        return pred, (x_t - alpha * pred) / sigma
    if p is Prediction.SCORE:
        eps = -sigma * pred
        return (x_t - sigma * eps) / alpha, eps
    norm = alpha**2 + sigma**2  # Prediction.V
    return (alpha * x_t - sigma * pred) / norm, (sigma * x_t + alpha * pred) / norm


def from_x0_eps(x0: Tensor, eps: Tensor, alpha, sigma, prediction) -> Tensor:
    """The inverse of :func:`to_x0_eps`: what a ``prediction``-type network would return."""
    p = Prediction.parse(prediction)
    if p is Prediction.EPS:
        return eps
    if p is Prediction.X0:
        return x0
    if p is Prediction.SCORE:
        return -eps / sigma
    return alpha * eps - sigma * x0


def convert(pred: Tensor, x_t: Tensor, alpha, sigma, source, target) -> Tensor:
    """Convert a prediction of type ``source`` into type ``target`` (e.g. eps -> score)."""
    x0, eps = to_x0_eps(pred, x_t, alpha, sigma, source)
    return from_x0_eps(x0, eps, alpha, sigma, target)
