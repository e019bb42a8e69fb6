"""Predictor–corrector sampling of the reverse SDE, with a Langevin corrector."""

from __future__ import annotations

import math

import torch

from diffkit.errors import check_choice
from diffkit.sampling.base import from_pure_noise, randn_like, report, trajectory
from diffkit.sampling.registry import register
from diffkit.sampling.sde import sde_coefficients


def _norm(x: torch.Tensor) -> torch.Tensor:
    """The L2 norm per example, averaged over the batch (as in the score-SDE code), as a
    0-d tensor on x's device: the corrector's step size never visits the host."""
    return x.flatten(1).norm(dim=1).mean()


@register("pc")
@from_pure_noise
def pc(
    model_fn,
    x,
    times,
    schedule,
    *,
    generator=None,
    callback=None,
    predictor="reverse_diffusion",
    snr=None,
    n_corrector=1,
):
    """Predictor–corrector sampler (Song et al. 2021, Algorithms 2-5), final denoising step.

    At each time ``n_corrector`` Langevin steps with signal-to-noise ratio ``snr`` (default
    the paper's 0.16 for VE, 0.01 for VP schedules), then one ``"reverse_diffusion"`` or
    ``"euler_maruyama"`` predictor step. As in the paper's code the corrector's norms are
    batch averages (per-example norms are too noisy in low dimension).
    """
    check_choice("predictor", predictor, ("euler_maruyama", "reverse_diffusion"))
    if snr is None:
        snr = 0.01 if schedule.variance_preserving else 0.16
    alphas, sigmas = trajectory(schedule, times)
    f, g2 = (c.tolist() for c in sde_coefficients(schedule, times))
    last = len(times) - 1
    times = times.tolist()
    for i, t in enumerate(times):
        a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        # Langevin corrector, Alg. 4/5: eps_i = 2 a_i (r |z| / |score|)^2, a_i = 1 - beta_i
        a_step = (a_t / a_s) ** 2 if i < last else 1.0
        for _ in range(n_corrector):
            _, eps = model_fn(x, t)
            score = -eps / s_t
            z = randn_like(x, generator)
            step = 2 * a_step * (snr * _norm(z) / _norm(score).clamp(min=1e-12)) ** 2
            x = x + step * score + (2 * step).sqrt() * z
        x0, eps = model_fn(x, t)
        if i == last:
            x = x0  # final denoising step, E[x0 | x_t]
        elif predictor == "reverse_diffusion":
            # Song et al. eq. (46) on the discretised forward step x_t = a x_s + sqrt(v) z
            a, v = a_t / a_s, s_t**2 - (a_t / a_s) ** 2 * s_s**2
            x = (2 - a) * x - v * eps / s_t + math.sqrt(max(v, 0.0)) * randn_like(x, generator)
        else:  # Euler–Maruyama on the reverse SDE, as sde_euler
            dt = times[i] - times[i + 1]
            drift = f[i] * x + g2[i] * eps / s_t
            x = x - drift * dt + math.sqrt(max(g2[i], 0.0) * dt) * randn_like(x, generator)
        report(callback, i, t, x, x0)
    return x
