"""Masking schedules: every schedule is nothing but ``t -> alpha_t``, the chance a token is kept.

At time ``t in [0, 1]`` each token of x_0 is kept with probability ``alpha(t)`` and replaced
by the mask token otherwise; ``alpha(0) = 1`` (clean data) and ``alpha(1) = 0`` (all masked,
or a small ``eps`` for MDLM's log-linear schedule). The continuous-time bound weighs the
cross-entropy at time t by ``-alpha'(t) / (1 - alpha(t))`` (Sahoo et al. 2024, eq. 10), so
each schedule gives ``alpha``, ``1 - alpha`` and ``alpha'`` in closed form: ``1 - alpha`` is
computed directly, not by cancellation, because the weight divides by it near ``t = 0``.

A schedule is an immutable value saved by name and parameters (:meth:`MaskSchedule.config`),
so :func:`from_config` rebuilds it exactly, like :class:`diffkit.schedules.Schedule`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffkit.errors import ConfigError, build_by_name

Tensor = torch.Tensor


@dataclass(frozen=True)
class MaskSchedule:
    """``t -> alpha_t`` on ``[0, 1]``; build one with :func:`get_schedule` or a constructor.

    Attributes
    ----------
    name, params
        What :func:`from_config` needs to rebuild it.
    t_min, t_max
        The valid times, always ``0`` and ``1``; samplers run from ``t_max`` to clean data.
    """

    name: str
    params: tuple[tuple[str, float], ...]
    t_min: float = 0.0
    t_max: float = 1.0

    def config(self) -> dict:
        """The schedule as JSON-ready data: ``{"name": ..., **params}``."""
        return {"name": self.name, **dict(self.params)}

    def check_t(self, t: Tensor) -> Tensor:
        """Return ``t`` as float64, raising a ConfigError when any value is outside [0, 1]."""
        t = torch.as_tensor(t, dtype=torch.float64)
        if torch.isnan(t).any() or (t < -1e-9).any() or (t > 1 + 1e-9).any():
            bad = t[torch.isnan(t) | (t < -1e-9) | (t > 1 + 1e-9)].flatten()[0].item()
            raise ConfigError(f"time t={bad:g} is outside the masking range [0, 1]; pass t in it.")
        return t.clamp(0.0, 1.0)

    def alpha(self, t: Tensor) -> Tensor:
        """``alpha_t``, the probability a token is still unmasked at time t (float64)."""
        return _SCHEDULES[self.name](self.check_t(t), **dict(self.params))[0]

    def masked(self, t: Tensor) -> Tensor:
        """``1 - alpha_t``, the chance a token is masked at time t (float64, no cancellation)."""
        return _SCHEDULES[self.name](self.check_t(t), **dict(self.params))[1]

    def dalpha(self, t: Tensor) -> Tensor:
        """``d alpha / dt`` in closed form (float64, <= 0)."""
        return _SCHEDULES[self.name](self.check_t(t), **dict(self.params))[2]

    def weight(self, t: Tensor) -> Tensor:
        """The bound's weight ``-alpha'(t) / (1 - alpha(t))`` (MDLM eq. 10); inf at ``t = 0``."""
        _, masked, dalpha = _SCHEDULES[self.name](self.check_t(t), **dict(self.params))
        return -dalpha / masked


def check_schedule(schedule) -> MaskSchedule:
    """``schedule`` if it is a :class:`MaskSchedule`, else a ConfigError."""
    if not isinstance(schedule, MaskSchedule):
        raise ConfigError(
            f"masked diffusion needs a masking schedule, got {type(schedule).__name__}; build "
            "one with diffkit.discrete.get_schedule('loglinear')."
        )
    return schedule


# Each returns (alpha, 1 - alpha, alpha') at t.


def _linear(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return 1 - t, t, torch.full_like(t, -1.0)


def _loglinear(t: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    # MDLM's log-linear noise: sigma(t) = -log(1 - (1 - eps) t), alpha = exp(-sigma(t))
    return 1 - (1 - eps) * t, (1 - eps) * t, torch.full_like(t, -(1 - eps))


def _cosine(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    # MaskGIT's cosine mask ratio: masked share cos(pi/2 (1 - t)) = sin(pi/2 t) (MD4's form)
    half_pi = math.pi / 2
    masked = torch.sin(half_pi * t)
    return 1 - masked, masked, -half_pi * torch.cos(half_pi * t)


_SCHEDULES: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor]]] = {
    "linear": _linear,
    "loglinear": _loglinear,
    "cosine": _cosine,
}


def linear() -> MaskSchedule:
    """``alpha(t) = 1 - t`` (Austin et al. 2021's absorbing state in continuous time)."""
    return MaskSchedule("linear", ())


def loglinear(eps: float = 1e-3) -> MaskSchedule:
    """MDLM's log-linear schedule (Sahoo et al. 2024): ``alpha(t) = 1 - (1 - eps) t``.

    ``alpha(1) = eps``, so the bound omits the last ``eps`` share of the path, as MDLM does.
    """
    if not 0 <= eps < 1:
        raise ConfigError(f"loglinear needs 0 <= eps < 1, got {eps}; the default is 1e-3.")
    return MaskSchedule("loglinear", (("eps", float(eps)),))


def cosine() -> MaskSchedule:
    """MaskGIT's cosine schedule (Chang et al. 2022): ``alpha(t) = 1 - sin(pi t / 2)``."""
    return MaskSchedule("cosine", ())


SCHEDULES: dict[str, Callable[..., MaskSchedule]] = {
    "linear": linear,
    "loglinear": loglinear,
    "cosine": cosine,
}


def get_schedule(name: str, **params) -> MaskSchedule:
    """Build a masking schedule by name, e.g. ``get_schedule("loglinear", eps=1e-4)``."""
    return build_by_name("masking schedule", SCHEDULES, name, params)


def from_config(config: dict) -> MaskSchedule:
    """Rebuild a schedule saved with :meth:`MaskSchedule.config`."""
    config = dict(config)
    return get_schedule(config.pop("name", "?"), **config)
