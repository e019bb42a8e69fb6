"""Covariates of a CSV file for the CLI: ``--covariate-columns`` and ``--static-columns``.

Dynamic covariates are columns known in the future as well as the past (prices,
holidays, weather forecasts). In a wide file (a date column, one column per series) they
are columns beside the series; in a long file (``item_id, timestamp, value``) a column
whose values are the same for every series at a timestamp is one covariate, and a column
that differs is one covariate per series (``price[item]``). Rows after the last target
value (targets empty) carry the covariates' future, which forecasting needs.

Static columns (long files only) are numbers that stay the same for each series; the
network reads them all as one static vector (D S values). With one table they are the
same for every training window, so they help only a model that sees several tables.

Covariates are standardised with the mean and deviation over the training range, which
the run saves in its settings so forecasts use the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from diffkit.errors import DataError
from diffkit.reading import check_input, reading

from .covariates import covariate_names
from .data import from_long, read_csv
from .series import Series

LONG = ("item_id", "timestamp", "value")


@dataclass(frozen=True, eq=False)
class Covariates:
    """A series' covariates: dynamic (T', K) on the series' grid, static (S,)."""

    dynamic: np.ndarray  # (T', K), T' >= the series' T: rows past its end are the future
    names: tuple[str, ...]
    static: np.ndarray  # (S,)

    def standardised(self, settings: dict) -> Covariates:
        """Dynamic values as (x - mean) / std with the run's ``settings["covariates"]``."""
        mean = np.asarray(settings["mean"], dtype=np.float64)
        std = np.asarray(settings["std"], dtype=np.float64)
        return Covariates((self.dynamic - mean) / std, self.names, self.static)


def read_table(
    path: Path, freq: str | None, covariates: tuple[str, ...], statics: tuple[str, ...]
) -> tuple[Series, Covariates]:
    """The series of a CSV file without its covariate columns, and the covariates.

    Trailing rows without any target value are left out of the series; their covariates
    stay, as the future of the last step.
    """
    if ".csv" not in Path(path).suffixes:
        raise DataError(
            f"--covariate-columns and --static-columns read CSV files; {Path(path).name} is "
            "not one: write the series and covariates as a CSV."
        )
    path = check_input(path)
    with reading(path, "--data", "a CSV table", "pass a CSV of the series and covariates"):
        frame = pd.read_csv(path)
    missing = [c for c in (*covariates, *statics) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{Path(path).name} has no column(s) {', '.join(map(repr, missing))}; name columns "
            f"it has ({', '.join(map(str, frame.columns))})."
        )
    if set(LONG) <= set(frame.columns):
        series = from_long(frame[list(LONG)].dropna(subset=["value"]), freq)
        dynamic, names = _long_dynamic(frame, covariates, series)
        static = _long_static(frame, statics, series)
    else:
        if statics:
            raise DataError(
                "--static-columns needs a long file (item_id, timestamp, value, ...), where a "
                "column can hold one value per series; pass the data in that layout."
            )
        series = read_csv(path, freq, drop=covariates)
        date = pd.to_datetime(frame.iloc[:, 0])
        table = frame.set_index(date)[list(covariates)]
        dynamic, names = _on_grid(table, series), tuple(covariates)
        series = _observed_part(series)
        static = np.zeros(0)
    return series, Covariates(dynamic, names, static)


def _observed_part(series: Series) -> Series:
    """``series`` without its trailing rows of no target value (the covariates' future)."""
    last = int(np.flatnonzero(np.isfinite(series.values).any(axis=1))[-1])
    return series.head(last + 1)


def _on_grid(table: pd.DataFrame, series: Series) -> np.ndarray:
    """Covariate columns on the series' grid from its first step to their last row (T', K)."""
    end = max(table.index.max(), series.index[-1])
    grid = pd.date_range(series.index[0], end, freq=series.freq)
    values = table[~table.index.duplicated()].reindex(grid)
    bad = [str(c) for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise DataError(f"covariate column(s) {', '.join(map(repr, bad))} are not numeric.")
    out = values.to_numpy(dtype=np.float64)
    steps = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(steps):
        raise DataError(
            f"covariate values are missing at {grid[steps[0]]}; covariates must be known at "
            "every step (fill them, e.g. with 0 for an absent holiday flag)."
        )
    return out


def _long_dynamic(frame, covariates, series: Series) -> tuple[np.ndarray, tuple[str, ...]]:
    frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))
    columns, names = [], []
    for name in covariates:
        wide = frame.pivot(index="timestamp", columns="item_id", values=name)
        wide = wide[[c for c in wide.columns if str(c) in series.names]]
        if (wide.nunique(axis=1, dropna=True) <= 1).all():  # the same for every series
            columns.append(wide.bfill(axis=1).iloc[:, 0].rename(name))
            names.append(name)
        else:
            for item in wide.columns:
                columns.append(wide[item].rename(f"{name}[{item}]"))
                names.append(f"{name}[{item}]")
    if not columns:
        return np.zeros((series.length, 0)), ()
    return _on_grid(pd.concat(columns, axis=1), series), tuple(names)


def _long_static(frame, statics, series: Series) -> np.ndarray:
    values = []
    for name in statics:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise DataError(f"static column {name!r} is not numeric; encode its values as numbers.")
        per_item = frame.groupby(frame["item_id"].astype(str))[name]
        if (per_item.nunique() > 1).any():
            raise DataError(
                f"static column {name!r} changes over time within a series; a static feature "
                "has one value per series (pass a changing one as --covariate-columns)."
            )
        first = per_item.first()
        values.append([first[item] for item in series.names])  # series order
    return np.asarray(values, dtype=np.float64).T.reshape(-1)  # (D S,) series by series


def covariate_settings(covariates: Covariates, train_length: int) -> dict:
    """Names, count and standardisation of the covariates over the training range."""
    train = covariates.dynamic[:train_length]
    std = train.std(axis=0) if len(train) else np.ones(covariates.dynamic.shape[1])
    return {
        "names": list(covariates.names),
        "mean": train.mean(axis=0).tolist() if len(train) else [0.0] * len(covariates.names),
        "std": np.where(std > 0, std, 1.0).tolist(),
        "static": len(covariates.static),
    }


class WithCovariates(Dataset):
    """A :class:`~.windows.WindowDataset` whose items also hold the covariates' windows.

    Item ``i`` adds ``past_feat_dynamic_real`` (Tp, K) and ``future_feat_dynamic_real``
    (Th, K) at the same steps as its targets (the front padding is 0, the covariates'
    standardised mean) and ``feat_static_real`` (S,). Other attributes are the inner
    dataset's (``split``, ``config``).
    """

    def __init__(self, windows, covariates: Covariates):
        self.windows, self.covariates = windows, covariates
        front = windows.config.history_length - windows.config.context_length
        dynamic = np.concatenate(
            [np.zeros((front, covariates.dynamic.shape[1])), covariates.dynamic]
        )
        self.dynamic = torch.from_numpy(dynamic.astype(np.float32))  # (front + T', K)
        self.static = torch.from_numpy(covariates.static.astype(np.float32))  # (S,)

    def __len__(self) -> int:
        return len(self.windows)

    def __getattr__(self, name):
        if name in ("windows", "covariates"):
            raise AttributeError(name)
        return getattr(self.windows, name)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        past, horizon = self.windows.past, self.windows.horizon
        item = dict(self.windows[i])
        i = self.windows.position(i)  # validation windows start after the training range
        item["past_feat_dynamic_real"] = self.dynamic[i : i + past]
        item["future_feat_dynamic_real"] = self.dynamic[i + past : i + past + horizon]
        item["feat_static_real"] = self.static
        return item


def forecast_covariates(histories: list[Series], config, covariates: Covariates) -> dict:
    """The covariate inputs to forecast after each history (their future must be known).

    Returns ``past_feat_dynamic_real`` (B, Tp, K), ``future_feat_dynamic_real`` (B, Th, K)
    and ``feat_static_real`` (B, S), for :meth:`~.module.TimeGradModel.forecast`.
    """
    Tp, Th = config.history_length, config.prediction_length
    K = covariates.dynamic.shape[1]
    padded = np.concatenate([np.zeros((Tp, K)), covariates.dynamic])  # (Tp + T', K)
    past, future = [], []
    for history in histories:
        end = Tp + history.length  # the history's last step + 1, in padded rows
        if padded.shape[0] < end + Th:
            missing = end + Th - padded.shape[0]
            raise DataError(
                f"the covariates end {missing} step(s) before the end of the forecast; add "
                f"rows with the covariates of the {Th} steps after the last target value "
                "(targets left empty)."
            )
        past.append(padded[end - Tp : end])
        future.append(padded[end : end + Th])
    static = np.tile(covariates.static, (len(histories), 1))  # (B, S)
    out = {
        "past_feat_dynamic_real": torch.from_numpy(np.stack(past).astype(np.float32)),
        "future_feat_dynamic_real": torch.from_numpy(np.stack(future).astype(np.float32)),
        "feat_static_real": torch.from_numpy(static.astype(np.float32)),
    }
    return {k: out[k] for k in covariate_names(config)}
