"""Metrics of sample forecasts, computed exactly as GluonTS's ``MultivariateEvaluator`` does.

For a list of windows, each with samples (S, T, D) and a target (T, D):

- quantiles of samples are order statistics: the ``round((S - 1) q)``-th smallest sample
  (numpy's round half to even), as ``SampleForecast.quantile``;
- a window and series contributes ``QL_q = 2 sum_t |(y - F_q) (1[y <= F_q] - q)|`` and
  ``sum_t |y|``; CRPS is ``mean_q sum QL_q / sum |y|`` over all windows and series
  (GluonTS's ``mean_wQuantileLoss``, the TimeGrad paper's CRPS); CRPS-sum is the same on
  the sum over series of targets and samples (``m_sum_mean_wQuantileLoss``);
- ND is ``sum |y - median| / sum |y|``; MSE the mean over (window, series) of the
  squared error of the sample mean; NRMSE ``sqrt(MSE) / mean over (window, series) of
  mean |y|``.

Missing targets (NaN) are left out of every sum and mean, as GluonTS masks them; a
(window, series) with no observed target is left out of the means. The sum over series of
a target with some NaN entries adds the observed ones (pandas' ``DataFrame.agg(np.sum,
axis=1)``, which GluonTS uses, skips NaN).

The energy score (not in GluonTS) is ``mean_s ||X_s - y|| - 1/(2 S^2) sum_{s,s'} ||X_s -
X_s'||`` per time step over the observed series, averaged over steps and windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from diffkit.errors import ShapeError

# (np.arange(20) / 20.0)[1:]: 0.05, 0.10, ..., 0.95, as the TimeGrad paper and its evaluator.
QUANTILES = tuple(float(q) for q in (np.arange(20) / 20.0)[1:])


@dataclass(frozen=True)
class Metrics:
    """Metrics of a list of sample forecasts; see the module docstring for the formulas."""

    crps: float
    crps_sum: float
    energy_score: float
    nd: float
    nrmse: float
    mse: float

    def as_dict(self) -> dict[str, float]:
        """The metrics as a plain dict (for JSON)."""
        return asdict(self)


def sample_quantiles(samples: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Order-statistic quantiles of samples along axis 0: (S, ...) -> (Q, ...)."""
    ordered = np.sort(samples, axis=0)
    rows = [int(np.round((samples.shape[0] - 1) * q)) for q in quantiles]
    return ordered[rows]


def _scores(samples: np.ndarray, target: np.ndarray, quantiles: Sequence[float]) -> dict:
    """Per-series sums of one window: samples (S, T, D), target (T, D) -> arrays of (D,)."""
    observed = np.isfinite(target)  # (T, D)
    y = np.where(observed, target, 0.0)
    q = np.asarray(quantiles)[:, None, None]  # (Q, 1, 1)
    fq = sample_quantiles(samples, quantiles)  # (Q, T, D)
    ql = 2 * np.abs((fq - y) * ((y <= fq) - q)) * observed  # (Q, T, D)
    median = sample_quantiles(samples, [0.5])[0]  # (T, D)
    count = observed.sum(axis=0)  # (D,)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = (((samples.mean(axis=0) - y) ** 2) * observed).sum(axis=0) / count
        abs_mean = np.abs(y).sum(axis=0) / count
    return {
        "quantile_loss": ql.sum(axis=1),  # (Q, D)
        "abs_target": np.abs(y).sum(axis=0),
        "abs_error": (np.abs(y - median) * observed).sum(axis=0),
        "mse": mse,  # NaN where the series has no observed target
        "abs_target_mean": abs_mean,
    }


def _aggregate(parts: list[dict]) -> tuple[float, float, float, float]:
    """CRPS, ND, MSE, NRMSE from per-(window, series) sums, GluonTS's aggregation."""
    stack = {k: np.concatenate([np.atleast_1d(p[k].T) for p in parts]) for k in parts[0]}
    abs_target = stack["abs_target"].sum()
    crps = float(np.mean(stack["quantile_loss"].sum(axis=0) / abs_target))
    nd = float(stack["abs_error"].sum() / abs_target)
    mse = float(np.nanmean(stack["mse"]))
    nrmse = float(np.sqrt(mse) / np.nanmean(stack["abs_target_mean"]))
    return crps, nd, mse, nrmse


def energy_score(samples: np.ndarray, target: np.ndarray) -> float:
    """Energy score of one window, averaged over time steps: samples (S, T, D), target (T, D).

    Uses the observed series of each step; steps with none observed are left out.
    """
    observed = np.isfinite(target)  # (T, D)
    x = np.where(observed, samples, 0.0)  # (S, T, D)
    y = np.where(observed, target, 0.0)
    to_target = np.linalg.norm(x - y, axis=-1).mean(axis=0)  # (T,)
    diff = x[:, None] - x[None, :]  # (S, S, T, D)
    spread = np.linalg.norm(diff, axis=-1).mean(axis=(0, 1))  # (T,)
    keep = observed.any(axis=1)
    return float((to_target - 0.5 * spread)[keep].mean())


def evaluate(
    forecasts: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    quantiles: Sequence[float] = QUANTILES,
) -> Metrics:
    """Score sample forecasts of several windows against their targets.

    Parameters
    ----------
    forecasts
        One array of samples per window, shape (S, T, D), in the original scale.
    targets
        The true values per window, shape (T, D); NaN marks a missing value.
    quantiles
        Quantile levels of the quantile-loss CRPS; 0.05, 0.10, ..., 0.95 by default.

    Returns
    -------
    Metrics
        CRPS, CRPS-sum, energy score, ND, NRMSE and MSE over all windows.
    """
    if len(forecasts) != len(targets) or not len(targets):
        raise ShapeError(
            f"{len(forecasts)} forecasts for {len(targets)} targets; pass one sample array "
            "per target window."
        )
    per_series, summed, energies = [], [], []
    for samples, target in zip(forecasts, targets, strict=True):
        samples = np.asarray(samples, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        if samples.ndim != 3 or samples.shape[1:] != target.shape:
            raise ShapeError(
                f"samples of shape {samples.shape} do not match a target of shape "
                f"{target.shape}; pass samples as (num_samples, *target.shape)."
            )
        per_series.append(_scores(samples, target, quantiles))
        target_sum = np.nansum(target, axis=1, keepdims=True)  # (T, 1)
        summed.append(_scores(samples.sum(axis=2, keepdims=True), target_sum, quantiles))
        energies.append(energy_score(samples, target))
    crps, nd, mse, nrmse = _aggregate(per_series)
    crps_sum = _aggregate(summed)[0]
    return Metrics(crps, crps_sum, float(np.mean(energies)), nd, nrmse, mse)
