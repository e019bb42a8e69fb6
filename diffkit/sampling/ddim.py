"""DDIM: the non-Markovian sampler with a tunable amount of fresh noise."""

from __future__ import annotations

import math

from diffkit.process import posterior_variance
from diffkit.sampling.base import randn_like, report, scalars, trajectory
from diffkit.sampling.registry import register


@register("ddim")
def ddim(model_fn, x, times, schedule, *, generator=None, callback=None, eta=0.0):
    """DDIM (Song, Meng & Ermon 2021, eq. 12); ``eta=0`` is deterministic, 1 ancestral."""
    alphas, sigmas = trajectory(schedule, times)
    steps = []  # x_s = a_s x0 + c eps + std z, eq. (12)
    for i in range(len(times)):
        a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        std = eta * math.sqrt(max(posterior_variance(a_s, s_s, a_t, s_t), 0.0))
        steps.append((a_s, math.sqrt(max(s_s**2 - std**2, 0.0)), std))
    scale = scalars([a_s for a_s, _, _ in steps], x)
    for i, t in enumerate(times.tolist()):
        _, c, std = steps[i]
        x0, eps = model_fn(x, t)
        x = (x0 * scale[i]).add_(eps, alpha=c)
        if std > 0:
            x.add_(randn_like(x, generator), alpha=std)
        report(callback, i, t, x, x0)
    return x
