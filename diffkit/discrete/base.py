"""What every masked-diffusion sampler shares: the network turned into log-probabilities of
x_0, the keep-probabilities along a trajectory, categorical draws from explicit uniforms."""

from __future__ import annotations

import torch

from diffkit.discrete.process import carry_over, check_mask_id
from diffkit.errors import ConfigError, ShapeError

Tensor = torch.Tensor


def model_function(net, mask_id: int, cond: dict | None):
    """Wrap ``net(x_t, t, **cond) -> logits`` as ``model_fn(x, t) -> log_probs`` (B, L, V).

    ``t`` is one time; the log-probabilities are :func:`carry_over`'s (mask never predicted,
    unmasked tokens copied).
    """
    cond = cond or {}

    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        t_batch = torch.full((x.shape[0],), float(t), device=x.device)  # (B,)
        logits = net(x, t_batch, **cond)
        if logits.ndim != 3 or logits.shape[:2] != x.shape:
            raise ShapeError(
                f"the model returned shape {tuple(logits.shape)} for tokens of shape "
                f"{tuple(x.shape)}; it must return logits (B, L, V)."
            )
        check_mask_id(mask_id, logits.shape[-1])
        return carry_over(logits, x, mask_id)

    return model_fn


def mask_times(schedule, steps: int) -> Tensor:
    """``steps`` evaluation times uniform in t from 1 down to ``1 / steps`` (float64)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a whole number >= 1, got {steps!r}.")
    return torch.linspace(schedule.t_max, schedule.t_min, steps + 1, dtype=torch.float64)[:-1]


def trajectory(schedule, times: Tensor) -> list[float]:
    """``alpha`` at each time, plus a last entry 1 for clean data."""
    return [*schedule.alpha(times).tolist(), 1.0]


def tempered(log_probs: Tensor, temperature: float) -> Tensor:
    """Probabilities ``softmax(log_probs / temperature)`` in float64; 0 gives the argmax."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}.")
    if temperature == 0:
        top = log_probs.argmax(-1, keepdim=True)
        return torch.zeros_like(log_probs, dtype=torch.float64).scatter_(-1, top, 1.0)
    if temperature == 1:  # carry_over's log-probabilities are normalised already
        return log_probs.double().exp()
    return torch.softmax(log_probs.double() / temperature, dim=-1)


def categorical(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draws from ``probs`` (..., V) with uniforms ``u`` (...): indices (...).

    Uniforms drawn by the caller keep the random stream the same whatever the probabilities,
    so two samplers given one seed make the same draws.
    """
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]  # guards the rounding of the total
    idx = (cdf <= u.unsqueeze(-1)).sum(-1)  # the first index whose cdf exceeds u
    return idx.clamp(max=probs.shape[-1] - 1)


def report(callback, i: int, t: Tensor, x: Tensor, log_probs: Tensor) -> None:
    """Call ``callback`` with the step's state, k-diffusion style, if one is given."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "log_probs": log_probs})
