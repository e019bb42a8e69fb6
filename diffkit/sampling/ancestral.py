"""Ancestral sampling: draw from the posterior q(x_s | x_t, x0_hat) at each step."""

from __future__ import annotations

import math

from diffkit.errors import check_choice
from diffkit.process import posterior_coefficients, transition
from diffkit.sampling.base import randn_like, report, scalars, trajectory
from diffkit.sampling.registry import register


@register("ddpm")
def ddpm(model_fn, x, times, schedule, *, generator=None, callback=None, variance="small"):
    """DDPM ancestral sampler (Ho et al. 2020, Algorithm 2), between any given times.

    ``variance="small"`` uses beta-tilde (the posterior variance), ``"large"`` beta.
    """
    check_choice("variance", variance, ("small", "large"))
    alphas, sigmas = trajectory(schedule, times)
    steps = []  # x_s = c_x x_t + c_0 x0 + std z
    for i in range(len(times)):
        a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        c_x, c_0, var = posterior_coefficients(a_s, s_s, a_t, s_t)
        if variance == "large":
            var = transition(a_s, s_s, a_t, s_t)[1]
        steps.append((c_x, c_0, math.sqrt(max(var, 1e-20)) if s_s > 0 else 0.0))
    scale = scalars([c_x for c_x, _, _ in steps], x)
    for i, t in enumerate(times.tolist()):
        _, c_0, std = steps[i]
        x0, _ = model_fn(x, t)
        x = (x * scale[i]).add_(x0, alpha=c_0)
        if std > 0:
            x.add_(randn_like(x, generator), alpha=std)
        report(callback, i, t, x, x0)
    return x
