"""From a :class:`Series` to the tensors :class:`TimeGradModel` reads.

Training uses every window of ``context + horizon`` steps of the training range (GluonTS's
instance splitter with a uniform sampler); the lags of the first windows reach before the
series start, so the series is padded in front with missing values (NaN), which the model
masks out of its inputs, never reads as zeros. Forecasting takes the last
``history_length`` steps of each history, padded the same way when a history is shorter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from diffkit.errors import ConfigError, ShapeError

from .features import time_features
from .module import TimeGradConfig
from .series import Series, Split

VALIDATION_ITEMS = 512  # validation examples per evaluation (diffkit.training's 8 x 64)


def padded(series: Series, front: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The values with ``front`` NaN steps before them, and the extended timestamp grid."""
    before = pd.date_range(end=series.index[0], periods=front + 1, freq=series.freq)[:-1]
    values = np.concatenate([np.full((front, series.dim), np.nan), series.values])  # (F+T, D)
    return values, before.append(series.index)


def check_compatible(series: Series, config: TimeGradConfig, what: str = "the data") -> None:
    """Raise if ``series`` does not have the D series and frequency the model was built for."""
    if series.dim != config.target_dim:
        raise ShapeError(
            f"{what} holds {series.dim} series but the model was trained on "
            f"{config.target_dim}; pass data with the same {config.target_dim} columns."
        )
    if series.freq != config.freq:
        raise ConfigError(
            f"{what} has frequency {series.freq!r} but the model was trained at "
            f"{config.freq!r}; resample the data or train a model at {series.freq!r}."
        )


class WindowDataset(Dataset):
    """Every training (or validation) window of a split, as a dict of tensors.

    Item ``i`` holds ``past_target`` (Tp, D), ``past_time_feat`` (Tp, F),
    ``future_target`` (Th, D) and ``future_time_feat`` (Th, F), with Tp the model's
    ``history_length``; NaN marks missing values. ``split`` is kept for evaluation.

    With ``validation`` the windows are those whose horizon lies inside the split's
    validation windows (one per start step; their past may reach into the training range),
    each item also holds ``horizon_only`` (the loss scores the horizon alone), and the
    windows repeat until there are at least ``VALIDATION_ITEMS`` items, so a validation
    loss averages over many diffusion times and noises per window.
    """

    def __init__(self, split: Split, config: TimeGradConfig, *, validation: bool = False):
        series = split.validation[-1] if validation else split.train
        check_compatible(series, config)
        front = config.history_length - config.context_length  # the largest lag
        values, index = padded(series, front)
        self.split, self.config, self.validation = split, config, validation
        self.target = torch.from_numpy(values.astype(np.float32))  # (T + front, D)
        self.time_feat = torch.from_numpy(time_features(index, config.freq))  # (T + front, F)
        self.past, self.horizon = config.history_length, config.prediction_length
        # the window starting at padded position i forecasts original steps from i + Tc on
        self.first = split.train.length - config.context_length if validation else 0
        self.windows = self.target.shape[0] - self.past - self.horizon + 1 - self.first
        if self.windows < 1:
            raise ShapeError(
                "the split has no validation window; build it with validation_windows >= 1."
            )

    def __len__(self) -> int:
        if self.validation:
            return self.windows * -(-VALIDATION_ITEMS // self.windows)
        return self.windows

    def position(self, i: int) -> int:
        """Where item ``i``'s window starts in the front-padded series."""
        return self.first + i % self.windows

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = self.position(i)
        past, future = slice(i, i + self.past), slice(i + self.past, i + self.past + self.horizon)
        item = {
            "past_target": self.target[past],
            "past_time_feat": self.time_feat[past],
            "future_target": self.target[future],
            "future_time_feat": self.time_feat[future],
        }
        if self.validation:
            item["horizon_only"] = torch.tensor(True)
        return item


def forecast_inputs(
    histories: list[Series], config: TimeGradConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[pd.DatetimeIndex]]:
    """Model inputs to forecast the ``prediction_length`` steps after each history.

    Returns
    -------
    past_target, past_time_feat, future_time_feat, future_index
        (B, Tp, D), (B, Tp, F), (B, Th, F) tensors and the B future timestamp grids.
    """
    Tp, Th = config.history_length, config.prediction_length
    past, past_feat, future_feat, future_index = [], [], [], []
    for history in histories:
        check_compatible(history, config)
        values, index = padded(history, max(0, Tp - history.length))
        future = pd.date_range(history.index[-1], periods=Th + 1, freq=history.freq)[1:]
        past.append(values[-Tp:])
        past_feat.append(time_features(index[-Tp:], config.freq))
        future_feat.append(time_features(future, config.freq))
        future_index.append(future)
    return _stack(past), _stack(past_feat), _stack(future_feat), future_index


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays).astype(np.float32))
