"""Annealed Langevin dynamics over decreasing noise levels (SMLD / NCSN)."""

from __future__ import annotations

import math

from diffkit.errors import ConfigError
from diffkit.sampling.base import from_pure_noise, randn_like, report
from diffkit.sampling.registry import register


@register("langevin")
@from_pure_noise
def langevin(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    n_steps_each=5,
    step_lr=2e-5,
):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) with a final denoising step.

    Runs in ``y = x / alpha``, where every schedule is variance exploding with noise level
    ``sigma / alpha``: at each time, ``n_steps_each`` steps of size
    ``step_lr * (level / last_level)^2``; the result is the denoised ``E[x0 | x]`` at the
    last time (Jolicoeur-Martineau et al. 2021). ``step_lr`` is the paper's (for sigma_L =
    0.01); 5 steps per level is NCSNv2's choice for many levels (the paper's 100 is for 10).
    """
    if n_steps_each < 1:
        raise ConfigError(f"n_steps_each must be at least 1, got {n_steps_each}.")
    alpha, sigma = schedule.alpha_sigma(times)  # alpha > 0: from_pure_noise leaves SNR 0
    alphas, levels = alpha.tolist(), (sigma / alpha).tolist()
    last = len(times) - 1
    y = x / alphas[0]
    for i, t in enumerate(times.tolist()):
        step = step_lr * (levels[i] / levels[-1]) ** 2
        for _ in range(n_steps_each):
            x0, eps = model_fn(alphas[i] * y, t)
            # the score in y is -eps / level:  y <- y + step/2 * score + sqrt(step) z
            y = y - (0.5 * step / levels[i]) * eps + math.sqrt(step) * randn_like(y, generator)
        if i == last:
            x0, _ = model_fn(alphas[i] * y, t)  # final denoising step, E[x0 | x]
        report(callback, i, t, x0 if i == last else alphas[i] * y, x0)
    return x0
