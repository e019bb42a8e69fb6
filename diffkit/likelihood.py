"""Likelihood: the discrete variational bound (Ho et al. 2020; improved-diffusion) and the
probability-flow ODE log-likelihood (Song et al. 2021, appendix D.2), in nats and bits/dim.

Both take a network the way :func:`diffkit.sample` does (``model(x_t, t, **cond)`` with its
``prediction`` type) and speak only in (alpha, sigma). Both run the network on the data's
device; the bound keeps everything there, while the ODE's solver (scipy) runs on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffkit.errors import ConfigError, check_choice
from diffkit.process import posterior, posterior_variance
from diffkit.sampling.base import model_function, randn_like
from diffkit.sampling.sde import sde_coefficients
from diffkit.schedules import Schedule

Tensor = torch.Tensor
LOG2 = math.log(2.0)


def bits_per_dim(nll_nats: Tensor, dims: int, *, bins: int | None = None, width: float = 2.0):
    """Nats per example to bits per dimension.

    With ``bins``, a continuous density of data spanning ``width`` (e.g. 8-bit pixels
    scaled to [-1, 1]: ``bins=256, width=2``) is put on the discrete scale by adding
    ``log2(bins / width)`` per dimension. A discretized decoder needs no ``bins``.
    """
    bpd = nll_nats / (dims * LOG2)
    return bpd + math.log2(bins / width) if bins else bpd


def gaussian_kl(mean1, var1, mean2, var2) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise, in nats."""
    var1 = torch.as_tensor(var1, dtype=mean1.dtype, device=mean1.device)
    var2 = torch.as_tensor(var2, dtype=mean1.dtype, device=mean1.device)
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, std, bins: int = 256):
    """log P(x) of ``bins``-level data in [-1, 1] under N(mean, std^2), elementwise.

    Each value owns a bin of width ``2 / (bins - 1)``; the end bins reach to +-infinity
    (Ho et al. 2020, eq. 13; improved-diffusion's ``discretized_gaussian_log_likelihood``).
    """
    half = 1.0 / (bins - 1)
    upper = torch.special.ndtr((x - mean + half) / std)
    lower = torch.special.ndtr((x - mean - half) / std)
    log_upper = torch.special.log_ndtr((x - mean + half) / std)  # left end bin: P(X < x + h)
    log_lower_tail = torch.special.log_ndtr(-(x - mean - half) / std)  # right end: P(X > x - h)
    mid = torch.log((upper - lower).clamp(min=1e-12))
    return torch.where(x < -0.999, log_upper, torch.where(x > 0.999, log_lower_tail, mid))


@dataclass(frozen=True)
class Bound:
    """The variational bound per example: ``total = prior + diffusion + decoder`` (nats)."""

    prior: Tensor  # (B,)  KL(q(x_T | x0) || N(0, alpha_T^2 + sigma_T^2))
    diffusion: Tensor  # (B,)  sum of KL(q(x_s | x_t, x0) || p(x_s | x_t))
    decoder: Tensor  # (B,)  -log p(x0 | x_{t_0})
    dims: int

    @property
    def total(self) -> Tensor:
        return self.prior + self.diffusion + self.decoder

    @property
    def bits_per_dim(self) -> Tensor:
        return bits_per_dim(self.total, self.dims)


def variational_bound(
    model,
    x0: Tensor,
    schedule: Schedule,
    *,
    prediction: str = "eps",
    cond: dict | None = None,
    times: Tensor | None = None,
    variance: str = "small",
    decoder: str = "discretized",
    generator: torch.Generator | None = None,
) -> Bound:
    """The variational bound on -log p(x0) (Ho et al. 2020, eq. 5), one noise draw per term.

    ``times`` (ascending; default every step of a discrete schedule, 1000 uniform for a
    continuous one) are the latent steps. ``variance`` is the reverse step's: ``"small"``
    the posterior's, ``"large"`` the forward step's. The decoder at ``times[0]`` is a
    ``"discretized"`` Gaussian for 8-bit data in [-1, 1] or a ``"gaussian"`` density for
    continuous data, with mean x0_hat and the variance of the first reverse step.
    """
    check_choice("variance", variance, ("small", "large"))
    check_choice("decoder", decoder, ("discretized", "gaussian"))
    if times is None:
        n = schedule.T if schedule.discrete else 1000
        times = torch.linspace(schedule.t_min, schedule.t_max, n, dtype=torch.float64)
    times = schedule.check_t(times)
    if len(times) < 2 or (times.diff() <= 0).any():
        raise ConfigError("variational_bound needs at least two ascending times.")
    times = times.cpu()
    model_fn = model_function(model, schedule, prediction, cond)
    alphas, sigmas = (c.tolist() for c in schedule.alpha_sigma(times))
    x0 = x0.double()  # on x0's device, as every accumulator below
    dims = x0[0].numel()

    def total(v: Tensor) -> Tensor:
        return v.flatten(1).sum(1)  # (B,)

    a_T, s_T = alphas[-1], sigmas[-1]
    prior = total(gaussian_kl(a_T * x0, s_T**2, 0.0, a_T**2 + s_T**2))
    diffusion = torch.zeros(len(x0), dtype=torch.float64, device=x0.device)
    times = times.tolist()
    with torch.no_grad():
        for i in range(1, len(times)):
            a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i - 1], sigmas[i - 1]
            x_t = a_t * x0 + s_t * randn_like(x0, generator)
            x0_hat, _ = model_fn(x_t, times[i])
            mean_q, var_q = posterior(x0, x_t, a_s, s_s, a_t, s_t)
            mean_p, _ = posterior(x0_hat, x_t, a_s, s_s, a_t, s_t)
            var_p = var_q if variance == "small" else s_t**2 - (a_t / a_s) ** 2 * s_s**2
            diffusion += total(gaussian_kl(mean_q, var_q, mean_p, var_p))
        a_0, s_0 = alphas[0], sigmas[0]
        x_0 = a_0 * x0 + s_0 * randn_like(x0, generator)
        x0_hat, _ = model_fn(x_0, times[0])
    # improved-diffusion: the decoder's variance is the next step's posterior variance
    std = math.sqrt(posterior_variance(a_0, s_0, alphas[1], sigmas[1]))
    if decoder == "discretized":
        log_p = discretized_gaussian_log_likelihood(x0, x0_hat, std)
    else:
        log_p = -0.5 * ((x0 - x0_hat) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return Bound(prior=prior, diffusion=diffusion, decoder=-total(log_p), dims=dims)


def ode_log_likelihood(
    model,
    x0: Tensor,
    schedule: Schedule,
    *,
    prediction: str = "eps",
    cond: dict | None = None,
    trace: str = "exact",
    probe: str = "rademacher",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "RK45",
    generator: torch.Generator | None = None,
) -> Tensor:
    """log p(x0) in nats per example from the probability-flow ODE (Song et al. 2021, D.2).

    Integrates ``dx/dt = f x - g^2 score / 2`` and ``d log p / dt = -div`` from ``t_min`` to
    ``t_max`` with ``scipy.integrate.solve_ivp`` and adds the prior ``N(0, alpha_T^2 +
    sigma_T^2)``. The divergence is ``"exact"`` (one backward pass per dimension: small
    data) or ``"hutchinson"`` (one probe per example, ``"rademacher"`` or ``"gaussian"``,
    fixed along the path; Grathwohl et al. 2019). The data is taken as x at ``t_min``, and
    the prior ignores the data's trace at ``t_max``: exact enough for VP schedules, while VE
    needs ``sigma_max`` far above the data's scale (at 40x, errors of a few hundredths).

    The solver runs on the CPU in float64: at each evaluation the state moves to x0's
    device for the network and back (one synchronisation per evaluation, which an adaptive
    scipy solver needs anyway); the result is on x0's device.
    """
    from scipy.integrate import solve_ivp  # scipy costs 0.3 s to import: only when used

    check_choice("trace", trace, ("exact", "hutchinson"))
    check_choice("probe", probe, ("rademacher", "gaussian"))
    model_fn = model_function(model, schedule, prediction, cond)
    x0 = x0.double()
    device = x0.device
    shape, b, dims = x0.shape, x0.shape[0], x0[0].numel()
    z = randn_like(x0, generator)
    if probe == "rademacher":
        z = z.sign()

    def velocity_and_divergence(t: float, x: Tensor) -> tuple[Tensor, Tensor]:
        tt = torch.tensor(t, dtype=torch.float64)
        f, g2 = (c.item() for c in sde_coefficients(schedule, tt))
        sigma = schedule.alpha_sigma_at(t)[1]
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            _, eps = model_fn(x, t)
            v = f * x + 0.5 * g2 / sigma * eps  # f x - g^2 score / 2, score = -eps / sigma
            if trace == "hutchinson":
                (vjp,) = torch.autograd.grad((v * z).sum(), x)
                div = (vjp * z).flatten(1).sum(1)
            else:
                flat = v.flatten(1)  # (B, D)
                div = sum(
                    torch.autograd.grad(flat[:, j].sum(), x, retain_graph=True)[0].flatten(1)[:, j]
                    for j in range(dims)
                )
        return v.detach(), div.detach()

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(y[: b * dims]).reshape(shape).to(device)
        v, div = velocity_and_divergence(t, x)
        return np.concatenate([v.flatten().cpu().numpy(), div.cpu().numpy()])

    y0 = np.concatenate([x0.flatten().cpu().numpy(), np.zeros(b)])
    sol = solve_ivp(rhs, (schedule.t_min, schedule.t_max), y0, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise ConfigError(f"the ODE solver failed ({sol.message}); loosen rtol/atol.")
    x_T = torch.from_numpy(sol.y[: b * dims, -1]).reshape(b, dims).to(device)
    delta = torch.from_numpy(sol.y[b * dims :, -1]).to(device)  # integral of div, t_min to t_max
    a_T, s_T = schedule.alpha_sigma_at(schedule.t_max)
    var = a_T**2 + s_T**2
    prior = -0.5 * (x_T**2).sum(1) / var - 0.5 * dims * math.log(2 * math.pi * var)
    return prior + delta
