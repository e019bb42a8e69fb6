"""The training objective: regress the network onto its eps, x0 or v target.

``diffusion_loss`` returns one value per example so callers can log, weight or mask them.
"""

from __future__ import annotations

import torch

from diffkit.errors import ConfigError, ShapeError, check_choice
from diffkit.process import Prediction, check_prediction, coefficients, from_x0_eps
from diffkit.sampling.base import randn_like
from diffkit.schedules import Schedule

Tensor = torch.Tensor

WEIGHTINGS = ("none", "min_snr")  # None means "none"


def sample_t(schedule: Schedule, n: int, *, generator=None, device=None) -> Tensor:
    """Training times: uniform integers in ``0..T-1``, or uniform reals in ``[t_min, 1]``.

    Drawn on the generator's device (default ``device``) and returned on ``device``.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    where = generator.device if generator is not None else device
    if schedule.discrete:
        t = torch.randint(0, schedule.T, (n,), generator=generator, device=where).double()
    else:
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=where)
        t = schedule.t_min + (schedule.t_max - schedule.t_min) * u
    return t if where == device else t.to(device)


def snr_weight(snr: Tensor, prediction, gamma: float) -> Tensor:
    """Min-SNR-gamma weights (Hang et al. 2023), expressed for each target type."""
    clipped = snr.clamp(max=gamma)
    p = Prediction.parse(prediction)
    if p is Prediction.EPS:  # min(snr, gamma) / snr, whose limit at SNR 0 is 1 (not 0/0)
        return torch.where(snr < gamma, torch.ones_like(snr), gamma / snr)
    if p is Prediction.V:
        return clipped / (snr + 1)
    return clipped  # x0


def masked_mean(err: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``err`` over all but the batch axis, counting only entries where mask is 1."""
    dims = tuple(range(1, err.ndim))
    if mask is None:
        return err.mean(dim=dims)
    mask = mask.to(err.dtype)
    return (err * mask).sum(dim=dims) / mask.sum(dim=dims).clamp(min=1)


def diffusion_loss(
    net,
    x0: Tensor,
    schedule: Schedule,
    *,
    prediction: str | Prediction = "eps",
    cond: dict | None = None,
    mask: Tensor | None = None,
    weighting: str | None = None,
    gamma: float = 5.0,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-example diffusion loss, shape ``(B,)``.

    Parameters
    ----------
    net
        Called as ``net(x_t, t, **cond)``; returns a ``prediction``-type tensor shaped like x0.
    mask
        Optional, shaped like ``x0``: 1 where a value is observed. Entries with 0 do not count
        and their NaN values are ignored (missing data, padding).
    weighting
        ``None`` or ``"none"`` (L_simple), or ``"min_snr"`` (min-SNR-gamma with ``gamma``).
    t, noise
        Fixed times ``(B,)`` and noise; drawn with ``generator`` when omitted.
    """
    prediction = Prediction.parse(prediction)
    if prediction is Prediction.SCORE:
        raise ConfigError("train score models with prediction='eps' (score = -eps / sigma).")
    check_choice("weighting", weighting or "none", WEIGHTINGS)
    if mask is not None:
        if mask.shape != x0.shape:
            raise ShapeError(f"mask has shape {tuple(mask.shape)} but x0 has {tuple(x0.shape)}.")
        x0 = torch.where(mask.bool(), x0, torch.zeros_like(x0))  # drop NaN in unobserved slots
    check = t is not None  # times drawn here are in range: no host synchronisation per batch
    if t is None:
        t = sample_t(schedule, x0.shape[0], generator=generator, device=x0.device)
    if noise is None:
        noise = randn_like(x0, generator)
    alpha, sigma = coefficients(schedule, t, x0, check=check)
    x_t = alpha * x0 + sigma * noise
    out = check_prediction(net(x_t, t.to(x0.dtype), **(cond or {})), x_t, "the network")
    target = from_x0_eps(x0, noise, alpha, sigma, prediction)
    loss = masked_mean((out - target) ** 2, mask)
    if weighting == "min_snr":
        snr = schedule.log_snr(t, check=check).exp().to(loss)
        loss = loss * snr_weight(snr, prediction, gamma)
    return loss
