"""Guidance and conditioning as wrappers: classifier-free guidance around a network,
known entries (inpainting / imputation) and x0 hooks (thresholding, clamping) around a
``model_fn``, so each works with every sampler unchanged.

A ``model_fn`` wrapper that changes x0 recomputes eps from it at the same ``x_t``:
``eps = (x_t - alpha x0) / sigma``, so the pair stays consistent whatever the sampler uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffkit.errors import ConfigError, ShapeError, check_choice
from diffkit.sampling.base import randn_like
from diffkit.schedules import Schedule

Tensor = torch.Tensor


def cfg(model, scale: float, null_cond: dict):
    """Classifier-free guidance (Ho & Salimans 2022) as a network ``guided(x, t, **cond)``.

    Returns ``uncond + scale * (cond - uncond)``: ``scale=0`` is the unconditional model,
    1 the conditional one, above 1 guidance (diffusers' ``guidance_scale``; Ho & Salimans'
    ``w`` is ``scale - 1``). Both run in one call on the doubled batch: each key of
    ``null_cond`` replaces that keyword in the second half (a tensor broadcast to the
    conditioning's shape, or a number filled in); other batched tensors are repeated.

    Examples
    --------
    >>> guided = cfg(net, 3.0, {"label": 10})   # 10 = the null class
    >>> x0 = diffkit.sample(guided, (16, 3, 32, 32), s, cond={"label": labels})
    """
    if not isinstance(null_cond, dict) or not null_cond:
        raise ConfigError("cfg needs null_cond, a dict like {'label': null_label}.")

    nulls = {}  # (key, device, dtype) -> the null conditioning there, copied once

    def null_like(key: str, value: Tensor) -> Tensor:
        where = (key, value.device, value.dtype)
        if where not in nulls:  # a copy to an accelerator per step would synchronise
            nulls[where] = torch.as_tensor(null_cond[key], device=value.device, dtype=value.dtype)
        return nulls[where].expand_as(value)

    def guided(x: Tensor, t: Tensor, **cond) -> Tensor:
        missing = sorted(set(null_cond) - set(cond))
        if missing:
            raise ConfigError(f"cfg's null_cond names {missing[0]!r}, which cond does not pass.")
        b = x.shape[0]
        both = {}
        for key, value in cond.items():
            if key in null_cond:
                both[key] = torch.cat([value, null_like(key, value)])
            elif isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == b:
                both[key] = torch.cat([value, value])
            else:
                both[key] = value
        out = model(torch.cat([x, x]), torch.cat([t, t]), **both)  # (2B, ...)
        conditional, unconditional = out[:b], out[b:]
        return unconditional + scale * (conditional - unconditional)

    return guided


def with_x0_transform(model_fn, schedule: Schedule, transform: Callable[[Tensor], Tensor]):
    """``model_fn`` with ``transform`` applied to every x0 prediction, eps recomputed."""

    def fn(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        x0, _ = model_fn(x, t)
        alpha, sigma = schedule.alpha_sigma_at(t)
        x0 = transform(x0)
        return x0, torch.add(x, x0, alpha=-alpha).div_(sigma)

    return fn


def with_known(model_fn, schedule: Schedule, known: Tensor, mask: Tensor, generator=None):
    """Inpainting / imputation: known entries (``mask == 1``) are given, the rest sampled.

    Before each call the known entries of x_t are replaced by freshly forward-noised
    ``alpha_t known + sigma_t z`` (RePaint, Lugmayr et al. 2022, eq. 8); the returned x0 is
    ``known`` there, so every sampler ends on the known values.
    """
    mask = mask.to(known.dtype)

    def fn(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        alpha, sigma = schedule.alpha_sigma_at(t)
        noised = torch.add(known * alpha, randn_like(x, generator), alpha=sigma)
        x0, _ = model_fn(mask * noised + (1 - mask) * x, t)
        x0 = mask * known + (1 - mask) * x0
        return x0, torch.add(x, x0, alpha=-alpha).div_(sigma)  # unknown: the model's own eps

    return fn


def broadcast_known(known: Tensor, mask: Tensor, shape) -> tuple[Tensor, Tensor]:
    """``known`` and ``mask`` broadcast to the sample shape, or a ShapeError."""
    try:
        return known.expand(shape), mask.expand(shape)
    except RuntimeError:
        raise ShapeError(
            f"known {tuple(known.shape)} and mask {tuple(mask.shape)} must broadcast to the "
            f"sample shape {tuple(shape)}."
        ) from None


def dynamic_threshold(x0: Tensor, percentile: float = 0.995, floor: float = 1.0) -> Tensor:
    """Imagen's dynamic thresholding (Saharia et al. 2022, sec. 2.3), per example.

    ``s = max(quantile(|x0|, percentile), floor)``; returns ``clamp(x0, -s, s) / s``.
    """
    flat = x0.abs().flatten(1)  # (B, N)
    s = torch.quantile(flat.double(), percentile, dim=1).clamp(min=floor).to(x0.dtype)
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))  # (B, 1, ..., 1)
    return torch.maximum(torch.minimum(x0, s), -s) / s


def clamp(x0: Tensor, low: float = -1.0, high: float = 1.0) -> Tensor:
    """Static thresholding: x0 clipped to ``[low, high]`` (DDPM's ``clip_denoised``)."""
    return x0.clamp(low, high)


X0_CLIPS = ("static", "dynamic", "off")


def data_range(kind: str, low: float = -1.0, high: float = 1.0):
    """The x0 transform that keeps predictions in data known to lie in ``[low, high]``.

    ``"static"`` clips (:func:`clamp`, diffusers' ``clip_sample``), ``"dynamic"`` applies
    :func:`dynamic_threshold` on the range mapped to [-1, 1], ``"off"`` returns None (no
    transform). Why it matters: at high noise ``x0 = (x_t - sigma eps) / alpha`` multiplies
    the network's eps error by ``sigma / alpha`` (about 156 at the last step of DDPM's
    linear schedule), and a deterministic sampler (DDIM, DPM-Solver) carries that x0 into
    the next ``x_s`` until the trajectory leaves the data and ends as salt-and-pepper noise.
    """
    check_choice("x0 clip", kind, X0_CLIPS)
    if not low < high:
        raise ConfigError(f"the data range needs low < high, got [{low}, {high}].")
    if kind == "off":
        return None
    if kind == "static":
        return lambda x0: x0.clamp(low, high)
    mid, half = (high + low) / 2, (high - low) / 2
    return lambda x0: dynamic_threshold((x0 - mid) / half) * half + mid
