"""RePaint: ancestral sampling that jumps back in time to harmonise inpainted regions."""

from __future__ import annotations

import itertools
import math

from diffkit.errors import ConfigError
from diffkit.process import posterior, transition
from diffkit.sampling.base import randn_like, report, trajectory
from diffkit.sampling.registry import register


def jump_schedule(n: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """RePaint's visiting order of levels ``0..n`` (0 = ``times[0]``, n = clean data).

    Lugmayr et al. 2022, ``get_schedule_jump``: every ``jump_length`` levels on the way down,
    go back up ``jump_length`` levels, ``jump_n_sample - 1`` times.
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise ConfigError("repaint needs jump_length >= 1 and jump_n_sample >= 1.")
    jumps = {j: jump_n_sample - 1 for j in range(0, n - jump_length, jump_length)}
    t, ts = n, []  # the paper's t counts down from n - 1 to -1 (clean)
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                ts.append(t)
    ts.append(-1)
    return [n - 1 - t for t in ts]


@register("repaint")
def repaint(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    jump_length=10,
    jump_n_sample=10,
):
    """RePaint resampling (Lugmayr et al. 2022, Algorithm 1): DDPM steps with jumps back.

    Use it with ``diffkit.sample(..., known=, mask=)``, which puts the forward-noised known
    entries in at every model call; ``jump_n_sample=1`` is plain DDPM.
    """
    alphas, sigmas = trajectory(schedule, times)
    levels = jump_schedule(len(times), jump_length, jump_n_sample)
    times = times.tolist()
    for k, k_next in itertools.pairwise(levels):
        if k_next > k:  # one ancestral step down, q(x_s | x_t, x0_hat)
            t = times[k]
            x0, _ = model_fn(x, t)
            a_s, s_s = alphas[k_next], sigmas[k_next]
            mean, var = posterior(x0, x, a_s, s_s, alphas[k], sigmas[k])
            x = mean + math.sqrt(max(var, 0.0)) * randn_like(x, generator) if s_s > 0 else mean
            report(callback, k, t, x, x0)
        else:  # one step back up, q(x_t | x_s)
            a, var = transition(alphas[k], sigmas[k], alphas[k_next], sigmas[k_next])
            x = a * x + math.sqrt(max(var, 0.0)) * randn_like(x, generator)
    return x
