"""The built-in data set: a seasonal vector autoregression whose forecast law is known.

The process, for D series and time positions t = 0, 1, ...::

    m_t = level + amplitude * sin(2 pi t / period + phase)          (D,) seasonal mean
    x_t = m_t + A (x_{t-1} - m_{t-1}) + e_t,   e_t ~ N(0, Sigma)     (D,)

with A a stable transition matrix and Sigma an equicorrelated covariance
``noise_std**2 * ((1 - rho) I + rho 1 1^T)``. Given x at position T - 1, the value h steps
later is Gaussian with mean ``m_{T-1+h} + A^h (x_{T-1} - m_{T-1})`` and covariance
``sum_{j<h} A^j Sigma A^j^T``, so an evaluation can score the true law itself: its CRPS is
the floor a perfect forecaster reaches on the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from diffkit.errors import ConfigError, DataError

from .series import Series


@dataclass(frozen=True, eq=False)
class SeasonalVAR:
    """Parameters of the seasonal VAR(1) above (arrays of D or D x D entries)."""

    transition: np.ndarray
    noise_cov: np.ndarray
    level: np.ndarray
    amplitude: np.ndarray
    phase: np.ndarray
    period: int

    @property
    def dim(self) -> int:
        """Number of series D."""
        return self.level.shape[0]

    def mean(self, positions: np.ndarray) -> np.ndarray:
        """Seasonal mean m_t at integer positions: (N,) -> (N, D)."""
        angle = 2.0 * np.pi * np.asarray(positions)[:, None] / self.period + self.phase
        return self.level + self.amplitude * np.sin(angle)


def seasonal_var(
    dim: int = 8,
    *,
    period: int = 7,
    radius: float = 0.8,
    noise_std: float = 0.5,
    correlation: float = 0.6,
    seed: int = 0,
) -> SeasonalVAR:
    """Draw a seasonal VAR(1) with D series.

    Parameters
    ----------
    dim
        Number of series D.
    period
        Season length in steps (7: a weekly cycle of daily data).
    radius
        Spectral radius of the random transition matrix A (< 1 for stationarity).
    noise_std, correlation
        Innovation standard deviation and the correlation between any two series' noises.
    seed
        Seed of the random parameters (levels 5..15, amplitudes 0.5..2, random phases).
    """
    if not 0 <= radius < 1 or not -1 / max(dim - 1, 1) < correlation < 1:
        raise ConfigError(
            f"radius {radius} must lie in [0, 1) and correlation {correlation} in "
            f"(-1/(D-1), 1) for a stationary process with a valid covariance; adjust them."
        )
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim))
    A *= radius / np.abs(np.linalg.eigvals(A)).max()
    cov = noise_std**2 * ((1 - correlation) * np.eye(dim) + correlation * np.ones((dim, dim)))
    return SeasonalVAR(
        transition=A,
        noise_cov=cov,
        level=rng.uniform(5.0, 15.0, dim),
        amplitude=rng.uniform(0.5, 2.0, dim),
        phase=rng.uniform(0.0, 2 * np.pi, dim),
        period=period,
    )


def _run(process: SeasonalVAR, last: np.ndarray, first: int, steps: int, rng) -> np.ndarray:
    """Continue deviations ``last`` (S, D) at position first - 1 for ``steps`` steps."""
    chol = np.linalg.cholesky(process.noise_cov)
    out = np.empty((last.shape[0], steps, process.dim))  # (S, steps, D)
    dev = last
    for h in range(steps):
        dev = dev @ process.transition.T + rng.standard_normal(dev.shape) @ chol.T
        out[:, h] = dev
    return out + process.mean(np.arange(first, first + steps))[None]


def synthetic(
    length: int = 1000,
    process: SeasonalVAR | None = None,
    *,
    freq: str = "D",
    start: str = "2000-01-03",
    seed: int = 0,
) -> Series:
    """Simulate the seasonal VAR: the built-in default data set.

    Parameters
    ----------
    length
        Number of time steps T.
    process
        The parameters; ``seasonal_var()`` (8 series, weekly season) by default.
    freq, start
        Timestamp grid of the returned series.
    seed
        Seed of the simulated noise. The start is drawn from the stationary law by running
        the process for 200 steps before position 0.

    Returns
    -------
    Series
        T x D values named ``s0 .. s{D-1}``.
    """
    process = process or seasonal_var()
    rng = np.random.default_rng(seed)
    burn = 200
    path = _run(process, np.zeros((1, process.dim)), -burn, burn + length, rng)[0, burn:]
    index = pd.date_range(start, periods=length, freq=freq)
    return Series(path, index, tuple(f"s{d}" for d in range(process.dim)), freq)


def _last_deviation(process: SeasonalVAR, history: np.ndarray) -> np.ndarray:
    history = np.asarray(history, dtype=np.float64)
    if history.ndim != 2 or history.shape[1] != process.dim or not len(history):
        raise DataError(
            f"history must be a (T, {process.dim}) array from position 0 of the simulated "
            "series; pass series.values[:T]."
        )
    last = history[-1]
    if not np.isfinite(last).all():
        raise DataError("the last history step has missing values; the true law needs all D.")
    return last - process.mean(np.array([len(history) - 1]))[0]  # (D,)


def true_predictive_moments(
    process: SeasonalVAR, history: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of each future step under the true law.

    Parameters
    ----------
    process
        The parameters that generated the series.
    history
        The series' values from position 0 up to the forecast start, shape (T, D).
    horizon
        Number of future steps H.

    Returns
    -------
    mean, cov
        Arrays of shape (H, D) and (H, D, D): the marginal law of x_{T-1+h}, h = 1..H.
    """
    dev = _last_deviation(process, history)
    A, T = process.transition, len(history)
    mean, cov = np.empty((horizon, process.dim)), np.empty((horizon, process.dim, process.dim))
    power, acc = np.eye(process.dim), np.zeros((process.dim, process.dim))
    for h in range(horizon):
        acc = acc + power @ process.noise_cov @ power.T  # sum_{j<=h} A^j Sigma A^j^T
        power = A @ power
        mean[h], cov[h] = power @ dev, acc
    return mean + process.mean(np.arange(T, T + horizon)), cov


def true_predictive_samples(
    process: SeasonalVAR, history: np.ndarray, horizon: int, num_samples: int, *, seed: int = 0
) -> np.ndarray:
    """Sample paths from the true joint law of the next ``horizon`` steps: (S, H, D)."""
    dev = np.tile(_last_deviation(process, history), (num_samples, 1))  # (S, D)
    return _run(process, dev, len(history), horizon, np.random.default_rng(seed))
