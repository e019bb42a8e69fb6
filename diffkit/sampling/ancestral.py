"""Ancestral sampling: draw from the posterior q(x_s | x_t, x0_hat) at each step."""

from __future__ import annotations

import math

from diffkit.errors import check_choice
from diffkit.process import posterior, transition
from diffkit.sampling.base import randn_like, report, trajectory
from diffkit.sampling.registry import register


@register("ddpm")
def ddpm(model_fn, x, times, schedule, *, generator=None, callback=None, variance="small"):
    """DDPM ancestral sampler (Ho et al. 2020, Algorithm 2), between any given times.

    ``variance="small"`` uses beta-tilde (the posterior variance), ``"large"`` beta.
    """
    check_choice("variance", variance, ("small", "large"))
    alphas, sigmas = trajectory(schedule, times)
    for i, t in enumerate(times):
        a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        x0, _ = model_fn(x, t)
        mean, var = posterior(x0, x, a_s, s_s, a_t, s_t)
        if s_s > 0:
            if variance == "large":
                var = transition(a_s, s_s, a_t, s_t)[1]
            x = mean + math.sqrt(max(var, 1e-20)) * randn_like(x, generator)
        else:
            x = mean
        report(callback, i, t, x, x0)
    return x
