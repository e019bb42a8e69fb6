"""What every masked-diffusion sampler shares: the network's checked logits, the
keep-probabilities along a trajectory, and categorical draws from explicit uniforms.

Samplers read the logits only at the masked positions they are about to fill, with the mask
token's logit removed: that is MDLM's carry-over parameterisation (:func:`carry_over`)
without ever building the full (B, L, V) distribution, which costs more than a small network
at text sizes.
"""

from __future__ import annotations

import torch

from diffkit.discrete.process import check_mask_id
from diffkit.errors import ConfigError, ShapeError

Tensor = torch.Tensor


def model_function(net, mask_id: int, cond: dict | None):
    """Wrap ``net(x_t, t, **cond)`` as ``model_fn(x, t) -> logits`` (B, L, V) for one time t.

    The logits are checked for type, shape and a vocabulary that holds ``mask_id``.
    ``model_fn.outputs_finite()`` is a 0-d bool tensor on the device, True while no logits so
    far held NaN or +inf (-inf forbids a token and is allowed), None before the first call:
    one sum per call, never read inside the loop; :func:`diffkit.discrete.sample` checks it
    once at the end (the draws themselves treat a NaN logit as 0 and go on).
    """
    cond, finite = cond or {}, None

    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        nonlocal finite
        t_batch = torch.full((x.shape[0],), float(t), device=x.device)  # (B,)
        logits = net(x, t_batch, **cond)
        if not isinstance(logits, Tensor) or not logits.is_floating_point():
            kind = f"{logits.dtype} tensor" if isinstance(logits, Tensor) else type(logits).__name__
            raise ShapeError(
                f"the model returned a {kind}; it must return one floating-point tensor of "
                "logits (B, L, V)."
            )
        total = logits.sum(dtype=torch.float32)  # NaN or +inf if any logit is
        ok = ~(torch.isnan(total) | torch.isposinf(total))
        finite = ok if finite is None else finite.logical_and_(ok)  # a few ops on one number
        if logits.ndim != 3 or logits.shape[:2] != x.shape:
            raise ShapeError(
                f"the model returned shape {tuple(logits.shape)} for tokens of shape "
                f"{tuple(x.shape)}; it must return logits (B, L, V)."
            )
        check_mask_id(mask_id, logits.shape[-1])
        return logits

    model_fn.outputs_finite = lambda: finite
    return model_fn


def mask_times(schedule, steps: int) -> Tensor:
    """``steps`` evaluation times uniform in t from 1 down to ``1 / steps`` (float64)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a whole number >= 1, got {steps!r}.")
    return torch.linspace(schedule.t_max, schedule.t_min, steps + 1, dtype=torch.float64)[:-1]


def trajectory(schedule, times: Tensor) -> list[float]:
    """``alpha`` at each time, plus a last entry 1 for clean data."""
    return [*schedule.alpha(times).tolist(), 1.0]


def draw(logits: Tensor, mask_id: int, temperature: float, u: Tensor) -> tuple[Tensor, Tensor]:
    """Tokens (...) drawn from ``softmax(logits / temperature)`` (..., V) by inverse CDF, and
    each token's log-probability under the untempered ``softmax(logits)`` (...).

    The mask is never drawn; temperature 0 takes the argmax. The uniforms ``u`` (...) are the
    caller's, so the random stream does not depend on the logits and two samplers given one
    seed make the same draws.
    """
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}.")
    z = logits.to(torch.float64 if logits.dtype == torch.float64 else torch.float32, copy=True)
    z.nan_to_num_(nan=0.0, posinf=0.0, neginf=-torch.inf)  # broken logits: see model_function
    z[..., mask_id] = -torch.inf
    z = z.sub_(z.amax(-1, keepdim=True))  # (..., V), max 0
    if temperature == 0:
        tokens, log_total = z.argmax(-1), torch.logsumexp(z, -1).double()
    else:
        weights = z.exp() if temperature == 1 else (z / temperature).exp_()  # unnormalised
        tokens, total = search_cdf(weights, u)
        log_total = total.log() if temperature == 1 else torch.logsumexp(z, -1).double()
    log_prob = z.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).double() - log_total
    return tokens, log_prob


def search_cdf(weights: Tensor, u: Tensor, block: int = 64) -> tuple[Tensor, Tensor]:
    """Inverse-CDF indices (...) for unnormalised ``weights`` (..., V) >= 0 and ``u`` in [0, 1).

    Returns the first index whose cumulative weight exceeds ``u * total``, and the total.
    Two levels, because a cumulative sum over V is many times slower than a plain sum on the
    CPU: block sums find the block, a float64 cumulative sum inside it finds the index.
    A zero weight is never chosen.
    """
    shape, v = weights.shape[:-1], weights.shape[-1]
    w = weights.reshape(shape.numel(), v)
    if v % block:
        w = torch.nn.functional.pad(w, (0, block - v % block))
    blocks = w.view(w.shape[0], w.shape[1] // block, block)  # (n, K, block)
    cdf = blocks.sum(-1).double().cumsum(-1)  # (n, K)
    total = cdf[:, -1]
    below_total = torch.nextafter(total, torch.zeros_like(total))  # u * total may round up
    target = torch.minimum(u.reshape(-1).to(cdf) * total, below_total)  # (n,)
    k = torch.searchsorted(cdf, target[:, None], right=True)  # (n, 1): the block holding it
    before = torch.where(k > 0, cdf.gather(-1, (k - 1).clamp(min=0)), 0.0)[:, 0]  # (n,)
    share = (target - before) / (cdf.gather(-1, k)[:, 0] - before)  # in [0, 1) within the block
    inner = blocks.gather(1, k[:, :, None].expand(-1, 1, block))[:, 0].double().cumsum(-1)
    share = share.clamp(max=1 - 2**-52) * inner[:, -1]
    j = torch.searchsorted(inner, share[:, None], right=True)[:, 0]  # (n,)
    return (k[:, 0] * block + j).reshape(shape), total.reshape(shape)


def report(callback, i: int, t: Tensor, x: Tensor, logits: Tensor) -> None:
    """Call ``callback`` with the step's state, k-diffusion style, if one is given."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "logits": logits})
