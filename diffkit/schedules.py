"""Noise schedules: every schedule is nothing but ``t -> (alpha_t, sigma_t)``.

Discrete schedules (DDPM-style, ``t = 0..T-1``) are a table of ``alphas_cumprod``;
``alpha = sqrt(alphas_cumprod)`` and ``sigma = sqrt(1 - alphas_cumprod)``. Between integer
steps ``log alpha`` is interpolated linearly (as DPM-Solver does for discrete models), so
fast samplers may evaluate fractional times.

Continuous schedules (score-SDE, ``t in [0, 1]``) are closed forms: ``vp``, ``subvp``, ``ve``.

A schedule is an immutable value built by a pure function and saved by name and
parameters (:meth:`Schedule.config`), so :func:`from_config` rebuilds it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import torch

from diffkit.errors import ConfigError, build_by_name

Tensor = torch.Tensor


@dataclass(frozen=True)
class Schedule:
    """``t -> (alpha_t, sigma_t)``; build one with :func:`get_schedule` or a constructor.

    Attributes
    ----------
    name, params
        What :func:`from_config` needs to rebuild it.
    t_min, t_max
        The range of valid times: ``0..T-1`` for discrete schedules, a sub-range of ``[0, 1]``
        for continuous ones. Samplers run from ``t_max`` down to ``t_min`` and then take
        their final step to clean data (``alpha = 1, sigma = 0``).
    """

    name: str
    params: tuple[tuple[str, float | int | bool], ...]
    t_min: float
    t_max: float
    alphas_cumprod: Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def discrete(self) -> bool:
        return self.alphas_cumprod is not None

    @property
    def T(self) -> int:
        if not self.discrete:
            raise ConfigError(f"schedule {self.name!r} is continuous and has no step count T.")
        return len(self.alphas_cumprod)

    @property
    def betas(self) -> Tensor:
        """Per-step betas of a discrete schedule (float64)."""
        abar = self.alphas_cumprod
        prev = torch.cat([abar.new_ones(1), abar[:-1]])
        return 1 - abar / prev

    @property
    def variance_preserving(self) -> bool:
        """Whether ``alpha^2 + sigma^2 = 1`` at every t: the discrete schedules and VP; not
        VE, nor sub-VP, whose ``sigma = 1 - alpha^2`` keeps the variance below 1."""
        return self.discrete or self.name == "vp"

    def config(self) -> dict:
        """The schedule as JSON-ready data: ``{"name": ..., **params}``."""
        return {"name": self.name, **dict(self.params)}

    def check_t(self, t: Tensor) -> Tensor:
        """Return ``t`` as float64 (float32 on MPS), raising a ConfigError when any value is
        out of range or NaN: one host synchronisation for a tensor on an accelerator."""
        t = torch.as_tensor(t, dtype=_wide(t))
        if (
            t.ndim == 0
            and t.device.type == "cpu"
            and self.t_min - 1e-9 <= t.item() <= self.t_max + 1e-9
        ):
            return t  # the common case of one time in range, without tensor reductions
        inside = (t >= self.t_min - 1e-9) & (t <= self.t_max + 1e-9)  # False for NaN
        if bool(inside.all()):
            return t
        if torch.isnan(t).any():
            raise ConfigError(f"time t contains NaN; pass times in [{self.t_min}, {self.t_max}].")
        lo, hi = t.min().item(), t.max().item()
        raise ConfigError(
            f"time t={lo if lo < self.t_min else hi:g} is outside schedule {self.name!r}'s "
            f"range [{self.t_min:g}, {self.t_max:g}]; pass times inside it."
        )

    def log_alpha_sigma(self, t: Tensor, *, check: bool = True) -> tuple[Tensor, Tensor]:
        """``(log alpha_t, log sigma_t)`` in float64 on t's device, for any real ``t`` in range.

        ``check=False`` skips the range check (and its host synchronisation) for times known
        to be valid, such as those drawn by :func:`diffkit.losses.sample_t`.
        """
        t = self.check_t(t) if check else torch.as_tensor(t, dtype=_wide(t))
        if self.discrete:
            log_alpha = _interp_log(t, self._log_alpha_table(t.device, t.dtype))
            log_sigma = 0.5 * torch.log(-torch.expm1(2 * log_alpha))
            return log_alpha, log_sigma
        return _CONTINUOUS[self.name](t, torch, **dict(self.params))

    def alpha_sigma(self, t: Tensor, *, check: bool = True) -> tuple[Tensor, Tensor]:
        """``(alpha_t, sigma_t)`` in float64 on t's device (see :meth:`log_alpha_sigma`)."""
        log_alpha, log_sigma = self.log_alpha_sigma(t, check=check)
        return log_alpha.exp(), log_sigma.exp()

    def alpha_sigma_at(self, t: float) -> tuple[float, float]:
        """``(alpha_t, sigma_t)`` at one time as Python floats, without a range check: the
        samplers' per-step path, for times that :meth:`check_t` or construction vouch for."""
        if self.discrete:
            log_alpha = _interp_log_alpha_scalar(float(t), self._log_alpha_list)
            return math.exp(log_alpha), math.sqrt(-math.expm1(2 * log_alpha))
        log_alpha, log_sigma = _CONTINUOUS[self.name](float(t), _MATH, **dict(self.params))
        return math.exp(log_alpha), math.exp(log_sigma)

    @cached_property
    def _log_alpha_list(self) -> list[float]:
        """``log alpha`` at every step of a discrete schedule, as floats (-inf where 0)."""
        return [0.5 * math.log(a) if a > 0 else -math.inf for a in self.alphas_cumprod.tolist()]

    def __getstate__(self) -> dict:
        # the per-device caches are rebuilt on use: a pickle (DDP, deepcopy) carries no
        # tensors on an accelerator
        return {k: v for k, v in self.__dict__.items() if k not in ("_tables", "_log_alpha_list")}

    @cached_property
    def _tables(self) -> dict:
        return {}  # (device, dtype) -> the log-alpha table there; filled by _log_alpha_table

    def _log_alpha_table(self, device, dtype) -> Tensor:
        """The ``log alpha`` table on ``device`` in ``dtype``, copied there once and cached."""
        key = (torch.device(device), dtype)
        if key not in self._tables:
            self._tables[key] = (0.5 * torch.log(self.alphas_cumprod)).to(device, dtype)
        return self._tables[key]

    def log_snr(self, t: Tensor, *, check: bool = True) -> Tensor:
        """``lambda_t = log(alpha_t^2 / sigma_t^2)``, decreasing in t."""
        log_alpha, log_sigma = self.log_alpha_sigma(t, check=check)
        return 2 * (log_alpha - log_sigma)

    def t_of_log_snr(self, lam: Tensor) -> Tensor:
        """Inverse of :meth:`log_snr`: the time at which the log-SNR equals ``lam``.

        Values beyond the schedule's range are clipped to ``[t_min, t_max]``.
        """
        lam = torch.as_tensor(lam, dtype=_wide(lam))
        lo = torch.full_like(lam, self.t_min)
        hi = torch.full_like(lam, self.t_max)
        for _ in range(64):  # bisection: log-SNR is monotone in t; 64 halvings reach float64
            mid = (lo + hi) / 2
            above = self.log_snr(mid, check=False) > lam
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return (lo + hi) / 2


def _interp_log_alpha_scalar(t: float, log_alphas: list[float]) -> float:
    """:func:`_interp_log` of ``log alpha`` at one time, in floats (ten times fewer ops)."""
    last = len(log_alphas) - 1
    i0 = min(max(math.floor(t), 0), last)
    w = t - i0
    log_a = log_alphas[i0]
    if w == 0:
        return log_a
    log_b = log_alphas[min(i0 + 1, last)]
    return log_a + math.log1p(-w) if log_b == -math.inf else log_a + w * (log_b - log_a)


def _wide(t) -> torch.dtype:
    """float64 for times, except on MPS, which has no float64."""
    return torch.float32 if isinstance(t, Tensor) and t.device.type == "mps" else torch.float64


def _interp_log(t: Tensor, table: Tensor) -> Tensor:
    """Piecewise-linear interpolation of a log-table at real indices ``t`` (exact at integers).

    A segment ending in ``log 0 = -inf`` (zero terminal SNR) is interpolated in linear space
    instead, so fractional times just before the end keep a finite value.
    """
    i0 = t.floor().clamp(0, len(table) - 1).long()
    i1 = (i0 + 1).clamp(max=len(table) - 1)
    w = t - i0
    a, b = table[i0], table[i1]
    mixed = torch.where(torch.isinf(b), a + torch.log1p(-w), a + w * (b - a))
    return torch.where(w == 0, a, mixed)  # at integers take a as is: 0 * inf would be NaN


# --- discrete schedules ------------------------------------------------------------------


def _discrete(name: str, alphas_cumprod: Tensor, **params) -> Schedule:
    return Schedule(
        name=name,
        params=tuple(params.items()),
        t_min=0.0,
        t_max=float(len(alphas_cumprod) - 1),
        alphas_cumprod=alphas_cumprod,
    )


def _from_betas(betas: Tensor) -> Tensor:
    return torch.cumprod(1 - betas, dim=0)


def _betas_for_alpha_bar(T: int, alpha_bar: Callable[[Tensor], Tensor], max_beta: float):
    """Betas with ``prod(1 - beta) = alpha_bar(t / T)``, each capped at ``max_beta``."""
    s = torch.arange(T + 1, dtype=torch.float64) / T
    ab = alpha_bar(s)
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)


def _check_T(T: int) -> int:
    if not isinstance(T, int) or T < 2:
        raise ConfigError(f"a discrete schedule needs an integer T >= 2 steps, got {T!r}.")
    return T


def linear(
    T: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    rescale: bool = False,
) -> Schedule:
    """DDPM's linear betas (Ho et al. 2020). ``rescale`` gives zero terminal SNR."""
    betas = torch.linspace(beta_start, beta_end, _check_T(T), dtype=torch.float64)
    abar = _maybe_rescale(_from_betas(betas), rescale)
    return _discrete("linear", abar, T=T, beta_start=beta_start, beta_end=beta_end, rescale=rescale)


def cosine(T: int = 1000, s: float = 0.008, max_beta: float = 0.999, rescale: bool = False):
    """Improved DDPM's cosine schedule (Nichol & Dhariwal 2021, eq. 17), betas capped."""

    def alpha_bar(u):
        return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    abar = _from_betas(_betas_for_alpha_bar(_check_T(T), alpha_bar, max_beta))
    return _discrete(
        "cosine", _maybe_rescale(abar, rescale), T=T, s=s, max_beta=max_beta, rescale=rescale
    )


def sqrt(T: int = 2000, s: float = 1e-4, max_beta: float = 0.999) -> Schedule:
    """Diffusion-LM's sqrt schedule: ``alpha_bar(t) = 1 - sqrt(t/T + s)`` (Li et al. 2022)."""

    def alpha_bar(u):
        return 1 - torch.sqrt(u + s)

    abar = _from_betas(_betas_for_alpha_bar(_check_T(T), alpha_bar, max_beta))
    return _discrete("sqrt", abar, T=T, s=s, max_beta=max_beta)


def sigmoid(
    T: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    rescale: bool = False,
) -> Schedule:
    """Sigmoid-shaped betas from ``beta_start`` to ``beta_end`` (GeoDiff; diffusers' "sigmoid")."""
    x = torch.linspace(-6, 6, _check_T(T), dtype=torch.float64)
    betas = torch.sigmoid(x) * (beta_end - beta_start) + beta_start
    abar = _maybe_rescale(_from_betas(betas), rescale)
    return _discrete(
        "sigmoid", abar, T=T, beta_start=beta_start, beta_end=beta_end, rescale=rescale
    )


def _maybe_rescale(abar: Tensor, rescale: bool) -> Tensor:
    return rescale_zero_terminal_snr(abar) if rescale else abar


def rescale_zero_terminal_snr(alphas_cumprod: Tensor) -> Tensor:
    """Shift and scale ``sqrt(alphas_cumprod)`` so the last step has SNR 0 and the first is kept.

    Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Alg. 1.
    """
    a = alphas_cumprod.sqrt()
    a0, aT = a[0].clone(), a[-1].clone()
    a = (a - aT) * a0 / (a0 - aT)
    return a**2


# --- continuous schedules ----------------------------------------------------------------


# Each closed form takes ``lib``: torch for tensors, _MATH for one float (the per-step path).
_MATH = SimpleNamespace(
    log=lambda v: math.log(v) if v > 0 else -math.inf, expm1=math.expm1, zeros_like=lambda t: 0.0
)


def _vp_log_alpha(t, beta_min: float, beta_max: float):
    # score-SDE VP: log alpha(t) = -1/4 t^2 (b_max - b_min) - 1/2 t b_min
    return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min


def _vp(t, lib, beta_min: float, beta_max: float, t_min: float):
    log_alpha = _vp_log_alpha(t, beta_min, beta_max)
    return log_alpha, 0.5 * lib.log(-lib.expm1(2 * log_alpha))


def _subvp(t, lib, beta_min: float, beta_max: float, t_min: float):
    log_alpha = _vp_log_alpha(t, beta_min, beta_max)
    return log_alpha, lib.log(-lib.expm1(2 * log_alpha))  # sigma = 1 - alpha^2


def _ve(t, lib, sigma_min: float, sigma_max: float, t_min: float):
    log_sigma = math.log(sigma_min) + t * (math.log(sigma_max) - math.log(sigma_min))
    return lib.zeros_like(t), log_sigma


_CONTINUOUS = {"vp": _vp, "subvp": _subvp, "ve": _ve}


def _continuous(name: str, t_min: float, **params) -> Schedule:
    if not 0 <= t_min < 1:
        raise ConfigError(f"t_min must lie in [0, 1), got {t_min}; the default is 1e-3.")
    return Schedule(name=name, params=(*params.items(), ("t_min", t_min)), t_min=t_min, t_max=1.0)


def vp(beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> Schedule:
    """Score-SDE variance-preserving SDE (Song et al. 2021), DDPM's continuous limit."""
    return _continuous("vp", t_min, beta_min=beta_min, beta_max=beta_max)


def subvp(beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> Schedule:
    """Score-SDE sub-VP SDE: VP's alpha with ``sigma = 1 - alpha^2``."""
    return _continuous("subvp", t_min, beta_min=beta_min, beta_max=beta_max)


def ve(sigma_min: float = 0.01, sigma_max: float = 50.0, t_min: float = 0.0) -> Schedule:
    """Score-SDE variance-exploding SDE; SMLD/NCSN's geometric sigmas with ``alpha = 1``."""
    if not 0 < sigma_min < sigma_max:
        raise ConfigError(f"ve needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    return _continuous("ve", t_min, sigma_min=sigma_min, sigma_max=sigma_max)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "linear": linear,
    "cosine": cosine,
    "sqrt": sqrt,
    "sigmoid": sigmoid,
    "vp": vp,
    "subvp": subvp,
    "ve": ve,
}


def get_schedule(name: str, **params) -> Schedule:
    """Build a schedule by name, e.g. ``get_schedule("linear", T=100, beta_end=0.1)``."""
    return build_by_name("schedule", SCHEDULES, name, params)


def from_config(config: dict) -> Schedule:
    """Rebuild a schedule saved with :meth:`Schedule.config`."""
    config = dict(config)
    return get_schedule(config.pop("name", "?"), **config)
