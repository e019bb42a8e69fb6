"""A Gaussian mixture with its exact optimal denoiser: the test bed every sampler is graded on.

For a mixture ``sum_k w_k N(mu_k, s_k^2 I)`` the noised marginal at time t is again a mixture,
``sum_k w_k N(alpha mu_k, (alpha^2 s_k^2 + sigma^2) I)``, so its score, and with it the
optimal eps prediction ``eps = -sigma * score``, is known in closed form. Sampling with it
removes training error from the picture: what remains is the sampler's own error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from diffkit.errors import ConfigError, ShapeError
from diffkit.process import Prediction, coefficients, from_x0_eps
from diffkit.schedules import Schedule

Tensor = torch.Tensor


@dataclass(frozen=True)
class GaussianMixture:
    """``sum_k weights[k] * N(means[k], stds[k]^2 I)`` in ``dim`` dimensions (float64)."""

    means: Tensor = field(repr=False)  # (K, D)
    stds: Tensor = field(repr=False)  # (K,)
    weights: Tensor = field(repr=False)  # (K,)

    def __post_init__(self):
        k, _ = self.means.shape
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise ShapeError(f"a {k}-component mixture needs {k} stds and {k} weights.")
        if (self.stds <= 0).any() or (self.weights < 0).any():
            raise ConfigError("mixture stds must be positive and weights non-negative.")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator=None, *, return_labels: bool = False):
        """``n`` exact samples (float32), optionally with their component labels."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = (self.means[k] + self.stds[k, None] * z).float()  # (n, D)
        return (x, k) if return_labels else x

    def _component_log_probs(self, x: Tensor, alpha, sigma) -> tuple[Tensor, Tensor]:
        """Per-component log w_k N(x; alpha mu_k, var_k I) (n, K) and the variances (n, K)."""
        x = x.double()
        means, stds, weights = (v.to(x.device) for v in (self.means, self.stds, self.weights))
        var = alpha**2 * stds**2 + sigma**2  # (n, K) or (K,)
        sq = ((x[:, None, :] - alpha[..., None] * means) ** 2).sum(-1)  # (n, K)
        log_n = -0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return log_n + weights.log(), var

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log density of clean data, shape (n,)."""
        one = torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)
        return self._component_log_probs(x, one, 0 * one)[0].logsumexp(-1)

    def x0_eps(self, x_t: Tensor, t: Tensor, schedule: Schedule) -> tuple[Tensor, Tensor]:
        """The exact optimal ``(E[x0 | x_t], E[eps | x_t])`` at time(s) t, in x_t's dtype.

        Both in closed form, so each is exact where the other's conversion divides by 0:
        x0 at SNR 0 (alpha = 0, where it is the data mean) and eps at sigma = 0.
        """
        if x_t.ndim != 2 or x_t.shape[1] != self.dim:
            raise ShapeError(f"x_t must have shape (n, {self.dim}), got {tuple(x_t.shape)}.")
        t = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(x_t.shape[0])
        alpha, sigma = (c[:, None] for c in schedule.alpha_sigma(t))  # (n, 1)
        logp, var = self._component_log_probs(x_t, alpha, sigma)
        r = torch.softmax(logp, dim=-1)[..., None]  # (n, K, 1) responsibilities
        means, stds = self.means.to(x_t.device), self.stds.to(x_t.device)
        resid = (x_t.double()[:, None, :] - alpha[..., None] * means) / var[..., None]  # (n, K, D)
        # per component E[x0 | x_t, k] = mu_k + alpha s_k^2 (x_t - alpha mu_k) / var_k, and
        # eps = -sigma * score = sigma * sum_k r_k (x_t - alpha mu_k) / var_k
        x0 = (r * (means + (alpha * stds**2)[..., None] * resid)).sum(1)
        eps = sigma * (r * resid).sum(1)
        return x0.to(x_t.dtype), eps.to(x_t.dtype)

    def eps(self, x_t: Tensor, t: Tensor, schedule: Schedule) -> Tensor:
        """The exact optimal eps prediction E[eps | x_t] at time(s) t."""
        return self.x0_eps(x_t, t, schedule)[1]

    def denoiser(self, schedule: Schedule, prediction: str = "eps"):
        """A network-like ``net(x_t, t)`` returning the exact ``prediction``."""
        prediction = Prediction.parse(prediction)

        def net(x_t: Tensor, t: Tensor) -> Tensor:
            x0, eps = self.x0_eps(x_t, t, schedule)
            alpha, sigma = coefficients(schedule, t, x_t)
            return from_x0_eps(x0, eps, alpha, sigma, prediction)

        return net

    def assign(self, x: Tensor) -> Tensor:
        """The most likely component of each clean sample, shape (n,)."""
        one = torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)
        return self._component_log_probs(x, one, 0 * one)[0].argmax(-1)

    def mode_weights(self, x: Tensor) -> Tensor:
        """Fraction of samples assigned to each component, shape (K,)."""
        counts = torch.bincount(self.assign(x).cpu(), minlength=len(self.weights))
        return counts.double() / len(x)

    def mode_tv(self, x: Tensor) -> float:
        """Total variation between the samples' mode weights and the true weights."""
        return 0.5 * (self.mode_weights(x) - self.weights).abs().sum().item()


def mixture(means, stds, weights=None) -> GaussianMixture:
    """A mixture from array-likes; ``stds`` may be one number, ``weights`` default uniform."""
    means = torch.as_tensor(means, dtype=torch.float64)
    if means.ndim != 2:
        raise ShapeError(f"means must have shape (K, D), got {tuple(means.shape)}.")
    k = means.shape[0]
    stds = torch.as_tensor(stds, dtype=torch.float64).expand(k).clone()
    w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
    return GaussianMixture(means, stds, w.double() / w.sum())


def ring(modes: int = 8, radius: float = 1.0, std: float = 0.15, weights=None) -> GaussianMixture:
    """``modes`` Gaussians evenly spaced on a circle: the classic 2-D test."""
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)  # (K, 2)
    return mixture(means, std, weights)


def random_mixture(dim: int = 16, modes: int = 8, std: float = 0.15, seed: int = 0):
    """``modes`` Gaussians with means drawn uniformly on the unit sphere in ``dim`` dimensions."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(modes, dim, generator=g, dtype=torch.float64)
    means = means / means.norm(dim=1, keepdim=True)
    w = torch.rand(modes, generator=g, dtype=torch.float64) + 0.5
    return mixture(means, std, w)


def sliced_wasserstein(a: Tensor, b: Tensor, projections: int = 256, generator=None) -> float:
    """Sliced Wasserstein-1 distance between two equal-size sample sets (n, D).

    The average over random unit directions of the 1-D Wasserstein-1 distance of the
    projections, which for equal sizes is the mean absolute gap of the sorted values.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ShapeError(
            f"sliced_wasserstein needs two (n, D) sets of equal shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )
    d = torch.randn(a.shape[1], projections, generator=generator, dtype=torch.float64)
    d = d / d.norm(dim=0, keepdim=True)  # (D, P)
    pa = (a.double() @ d).sort(dim=0).values  # (n, P)
    pb = (b.double() @ d).sort(dim=0).values
    return (pa - pb).abs().mean().item()
