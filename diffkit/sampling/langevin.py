"""Annealed Langevin dynamics over decreasing noise levels (SMLD / NCSN)."""

from __future__ import annotations

import math

from diffkit.errors import ConfigError
from diffkit.sampling.base import randn_like, report
from diffkit.sampling.registry import register


@register("langevin")
def langevin(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    n_steps_each=100,
    step_lr=2e-5,
):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) with a final denoising step.

    Runs in ``y = x / alpha``, where every schedule is variance exploding with noise level
    ``sigma / alpha``: at each time, ``n_steps_each`` steps of size
    ``step_lr * (level / last_level)^2``; the result is the denoised ``E[x0 | x]`` at the
    last time (Jolicoeur-Martineau et al. 2021). Defaults are the paper's (sigma_L = 0.01).
    """
    if n_steps_each < 1:
        raise ConfigError(f"n_steps_each must be at least 1, got {n_steps_each}.")
    alpha, sigma = schedule.alpha_sigma(times)
    if (alpha <= 0).any():
        raise ConfigError("langevin needs alpha > 0 at every time; leave out zero-SNR times.")
    alphas, levels = alpha.tolist(), (sigma / alpha).tolist()
    y = x / alphas[0]
    for i, t in enumerate(times):
        step = step_lr * (levels[i] / levels[-1]) ** 2
        for _ in range(n_steps_each):
            x0, eps = model_fn(alphas[i] * y, t)
            # the score in y is -eps / level:  y <- y + step/2 * score + sqrt(step) z
            y = y - (0.5 * step / levels[i]) * eps + math.sqrt(step) * randn_like(y, generator)
        if i == len(times) - 1:
            x0, _ = model_fn(alphas[i] * y, t)  # final denoising step, E[x0 | x]
            y = x0
        report(callback, i, t, alphas[i] * y if i < len(times) - 1 else y, x0)
    return y
