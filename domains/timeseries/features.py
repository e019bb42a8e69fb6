"""Inputs of the TimeGrad RNN as small pure functions: lags, Fourier time features, scaling.

Kept apart from the network so the GluonTS and pytorch-forecasting glue build exactly the
same inputs. Index-level features (lags by frequency, time features of a timestamp) work
on pandas / numpy; tensor-level ones (lagged values, observed masks, mean scaling) on torch.

Defaults follow TimeGrad's reference code (pytorch-ts, ``pts.feature``): its small
per-frequency lag sets rather than GluonTS's ``get_lags_for_frequency`` (dozens of lags
reaching back months), and cosine/sine pairs of calendar fields.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from diffkit.errors import ShapeError

from .series import normalise_freq

# pandas offset class -> short granularity key used by the tables below.
_GRANULARITY = {
    "BusinessDay": "B",
    "Day": "D",
    "Hour": "h",
    "Minute": "min",
    "Second": "s",
    "Week": "W",
    "MonthEnd": "M",
    "MonthBegin": "M",
    "BusinessMonthEnd": "M",
    "BusinessMonthBegin": "M",
}

# TimeGrad's lag sets (pts.feature.lags_for_fourier_time_features_from_frequency).
_LAGS = {
    "B": (1, 2),
    "D": (1, 7, 14),
    "h": (1, 24, 168),
    "min": (1, 4, 12, 24, 48),
    "M": (1, 12),
}

# Calendar fields per granularity (pts.feature.fourier_time_features_from_frequency).
_FIELDS = {
    "B": ("dayofweek", "dayofmonth"),
    "D": ("dayofweek",),
    "h": ("hour", "dayofweek"),
    "min": ("minute", "hour", "dayofweek"),
    "s": ("second", "minute", "hour"),
    "W": ("dayofmonth", "weekofyear"),
    "M": ("month",),
}

# field -> (zero-based value of a timestamp index, fixed period). pts divides by the
# largest value seen in the window instead, which makes a feature depend on the window;
# fixed periods give every window the same encoding.
_FIELD_VALUES = {
    "second": (lambda ix: ix.second, 60),
    "minute": (lambda ix: ix.minute, 60),
    "hour": (lambda ix: ix.hour, 24),
    "dayofweek": (lambda ix: ix.dayofweek, 7),
    "dayofmonth": (lambda ix: ix.day - 1, 31),
    "weekofyear": (lambda ix: ix.isocalendar().week.to_numpy() - 1, 53),
    "month": (lambda ix: ix.month - 1, 12),
}


def granularity(freq: str) -> str:
    """Return the granularity key of a pandas frequency string ("B", "D", "h", ... or "")."""
    offset = to_offset(normalise_freq(freq))  # old aliases ("H", "T") read as new ones
    return _GRANULARITY.get(type(offset).__name__, "")


def default_lags(freq: str) -> tuple[int, ...]:
    """TimeGrad's lag set for a frequency: B (1, 2), D (1, 7, 14), h (1, 24, 168), else (1,).

    Parameters
    ----------
    freq
        A pandas frequency string; its multiple ("15min", "2h") is ignored, as in TimeGrad.

    Returns
    -------
    tuple of int
        Sorted positive lags.
    """
    return _LAGS.get(granularity(freq), (1,))


def default_season(freq: str) -> int:
    """Steps in one season of a frequency: a day of hourly or minute steps, a minute of
    seconds, else a week of days (7), of business days (5), a year of weeks (52) or
    months (12); 1 when unknown.

    The frequency's multiple counts: "15min" gives 96, "2h" 12.
    """
    offset = to_offset(normalise_freq(freq))
    key, n = granularity(freq), max(int(getattr(offset, "n", 1)), 1)
    steps = {"h": 24, "min": 24 * 60, "s": 60, "D": 7, "B": 5, "W": 52, "M": 12}
    return max(steps.get(key, 1) // n, 1)


def time_feature_names(freq: str) -> tuple[str, ...]:
    """Names of the calendar fields encoded for a frequency (each gives a cos and a sin)."""
    return _FIELDS.get(granularity(freq), ())


def num_time_features(freq: str) -> int:
    """Number of columns :func:`time_features` returns for a frequency."""
    return 2 * len(time_feature_names(freq))


def time_features(index: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Fourier features of the timestamps: cos and sin of each calendar field's phase.

    Parameters
    ----------
    index
        Timestamps, length T.
    freq
        The series' frequency; it picks the fields (:func:`time_feature_names`).

    Returns
    -------
    numpy.ndarray
        Float32 array of shape (T, 2 * number of fields): for each field with zero-based
        value v and period P the columns cos(2 pi v / P) and sin(2 pi v / P).
    """
    index = pd.DatetimeIndex(index)
    columns = []
    for name in time_feature_names(freq):
        value_of, period = _FIELD_VALUES[name]
        phase = 2.0 * np.pi * np.asarray(value_of(index), dtype=np.float64) / period
        columns += [np.cos(phase), np.sin(phase)]
    if not columns:
        return np.zeros((len(index), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)  # (T, 2 * fields)


@functools.lru_cache(maxsize=64)
def time_feature_table(start: pd.Timestamp, length: int, freq: str) -> np.ndarray:
    """Read-only :func:`time_features` of ``length`` steps from ``start``: (T, F), cached.

    The framework glue asks for the same range at every training window, and a
    business-day ``date_range`` of 6,000 steps alone costs about 0.1 s.
    """
    index = pd.date_range(pd.Timestamp(start), periods=length, freq=freq)
    table = time_features(index, freq)  # (T, F)
    table.setflags(write=False)
    return table


def observed_mask(x: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean mask of usable entries: ``observed`` (if given) and not NaN/inf in ``x``."""
    finite = torch.isfinite(x)
    if observed is None:
        return finite
    if observed.shape != x.shape:
        raise ShapeError(
            f"observed mask has shape {tuple(observed.shape)} but the target has "
            f"{tuple(x.shape)}; pass one indicator per target value."
        )
    return finite & observed.bool()


def fill_missing(x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Replace unobserved entries by 0 (always pass ``observed`` on next to the result)."""
    return torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))


def mean_scale(x: torch.Tensor, observed: torch.Tensor, min_scale: float = 1e-5) -> torch.Tensor:
    """Per-series mean absolute value over the observed entries of a window.

    Parameters
    ----------
    x
        Values of shape (B, T, D); NaN allowed where ``observed`` is False.
    observed
        Boolean mask of x's shape.
    min_scale
        Floor of the returned scale.

    Returns
    -------
    torch.Tensor
        Scale of shape (B, 1, D): mean |x| over observed entries of each series. A series
        with no observed (or only zero) values gets the mean |x| over the observed values
        of the other series of its example, or 1 if there are none; GluonTS's MeanScaler
        falls back on the batch instead, which would make one example's forecast depend on
        its batch mates.
    """
    abs_x = fill_missing(x, observed).abs()
    total = abs_x.sum(dim=1, keepdim=True)  # (B, 1, D)
    count = observed.sum(dim=1, keepdim=True).to(x.dtype)  # (B, 1, D)
    scale = total / count.clamp_min(1.0)
    has_scale = (scale > 0).to(x.dtype)  # series to average over for those without one
    fallback = total.sum(dim=2, keepdim=True) / (count * has_scale).sum(
        dim=2, keepdim=True
    ).clamp_min(1.0)
    fallback = torch.where(fallback > 0, fallback, torch.ones_like(fallback))  # (B, 1, 1)
    scale = torch.where(scale > 0, scale, fallback.expand_as(scale))
    return scale.clamp_min(min_scale)


def lagged_values(x: torch.Tensor, lags: tuple[int, ...], length: int) -> torch.Tensor:
    """Lagged copies of a sequence for its last ``length`` positions.

    Parameters
    ----------
    x
        Sequence of shape (B, T, D).
    lags
        Positive lags.
    length
        Number of trailing positions to build inputs for.

    Returns
    -------
    torch.Tensor
        Shape (B, length, D, L) with ``out[:, j, :, k] = x[:, T - length + j - lags[k], :]``.
    """
    T = x.shape[1]
    if T - length - max(lags) < 0:
        raise ShapeError(
            f"a sequence of {T} steps is too short for {length} steps with lags up to "
            f"{max(lags)}; pass at least {length + max(lags)} past steps."
        )
    start = T - length
    slices = [x[:, start - lag : T - lag] for lag in lags]  # L x (B, length, D)
    return torch.stack(slices, dim=-1)  # (B, length, D, L)
