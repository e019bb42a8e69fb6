"""The reverse SDE: the forward SDE's drift and diffusion read off any schedule, and
Euler–Maruyama on ``dx = [f x - g^2 score] dt + g dw`` run backwards in time.

For ``x_t = alpha_t x_0 + sigma_t eps`` the forward SDE ``dx = f(t) x dt + g(t) dw`` has
(Kingma et al. 2021, appendix; Song et al. 2021, eq. 5)::

    f(t)   = d log alpha / dt
    g^2(t) = d sigma^2 / dt - 2 f(t) sigma^2 = -sigma^2 d lambda / dt

so one generic function serves every schedule, discrete (piecewise-linear log alpha) or
continuous, VP or VE.
"""

from __future__ import annotations

import math

import torch

from diffkit.sampling.base import from_pure_noise, randn_like, report, trajectory
from diffkit.sampling.registry import register
from diffkit.schedules import Schedule

Tensor = torch.Tensor


def sde_coefficients(schedule: Schedule, t: Tensor, step: float = 0.1):
    """Forward-SDE ``(f(t), g^2(t))`` at times ``t`` (float64).

    Continuous schedules are differentiated exactly by autograd through their closed forms;
    discrete ones (piecewise-linear log alpha) by central differences ``step`` steps wide,
    one-sided at the ends, which averages the two slopes at an integer step.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    if schedule.discrete:
        hi = (t + step).clamp(max=schedule.t_max)
        lo = (t - step).clamp(min=schedule.t_min)
        la_hi, ls_hi = schedule.log_alpha_sigma(hi)
        la_lo, ls_lo = schedule.log_alpha_sigma(lo)
        f, dlog_sigma = (la_hi - la_lo) / (hi - lo), (ls_hi - ls_lo) / (hi - lo)
    else:
        with torch.enable_grad():
            tt = t.detach().clone().requires_grad_(True)
            la, ls = schedule.log_alpha_sigma(tt)
            f, dlog_sigma = (_derivative(c, tt) for c in (la, ls))
    sigma2 = schedule.alpha_sigma(t)[1] ** 2
    g2 = 2 * sigma2 * (dlog_sigma - f)  # = d sigma^2/dt - 2 f sigma^2 = -sigma^2 d lambda/dt
    return f, g2


def _derivative(y: Tensor, t: Tensor) -> Tensor:
    if not y.requires_grad:  # constant in t, e.g. VE's log alpha = 0
        return torch.zeros_like(t.detach())
    return torch.autograd.grad(y.sum(), t, retain_graph=True)[0]


@register("sde_euler")
@from_pure_noise
def sde_euler(model_fn, x, times, schedule, *, generator=None, callback=None):
    """Reverse-SDE Euler–Maruyama (Song et al. 2021, eq. 6) with a final denoising step."""
    _, sigmas = trajectory(schedule, times)
    f, g2 = (c.tolist() for c in sde_coefficients(schedule, times))
    times = times.tolist()
    for i, t in enumerate(times):
        x0, eps = model_fn(x, t)
        if i == len(times) - 1:
            x = x0  # final denoising step: E[x0 | x_t] (Tweedie), i.e. the step to sigma = 0
        else:
            dt = times[i] - times[i + 1]  # > 0: time runs backwards
            # x_s = x_t - [f x_t - g^2 score] dt + g sqrt(dt) z,   score = -eps / sigma
            drift = f[i] * x + g2[i] * eps / sigmas[i]
            x = x - drift * dt + math.sqrt(max(g2[i], 0.0) * dt) * randn_like(x, generator)
        report(callback, i, t, x, x0)
    return x
