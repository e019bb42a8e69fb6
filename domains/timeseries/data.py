"""Readers for the time-series formats users have; every one returns a :class:`Series`.

Formats: a wide pandas DataFrame (DatetimeIndex x series), a long DataFrame or CSV
(``item_id, timestamp, value``), a wide CSV with a date column, LSTNet's headerless
matrices (``.txt`` / ``.txt.gz``, given ``freq`` and ``start``), and GluonTS datasets (a
``ListDataset`` or any iterable of ``{"start", "target"}`` entries, or JSON lines). Missing
timestamps become NaN rows; the frequency is inferred where the index allows.

This module never imports GluonTS: a GluonTS dataset is read as the dicts it yields.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from diffkit.errors import ConfigError, DataError, MissingFileError
from diffkit.reading import check_input, reading

from .series import Series, Split, check_index, normalise_freq, rolling_windows

# how a reader's failure ends: the formats there are
FORMATS = "pass a CSV, a headerless .txt matrix or GluonTS JSON lines, plain or .gz"
EXCHANGE_TRAIN_LENGTH = 6071  # int(7588 * 0.8) + 1 rows, as GluonTS's _lstnet.py cuts it


def _existing(path, *, folder: bool = False) -> Path:
    return check_input(path, "--data", folder=folder)


def from_frame(frame: pd.DataFrame, freq: str | None = None) -> Series:
    """Read a wide DataFrame: a DatetimeIndex (or parseable index) x one column per series.

    Parameters
    ----------
    frame
        Numeric columns, one per series; NaN marks missing values.
    freq
        Pandas frequency string; inferred from the index when omitted.

    Returns
    -------
    Series
        The data on a regular grid, with missing timestamps inserted as NaN.
    """
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError("the table is empty; pass at least one row and one series column.")
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise DataError(
            f"column(s) {', '.join(map(repr, bad))} are not numeric; drop them or name the "
            "date column so it is not read as a series."
        )
    index = frame.index
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    index = _to_datetime(index, "index")
    check_index(index)
    if freq is None:
        freq = index.freqstr or (pd.infer_freq(index) if len(index) >= 3 else None)
        if freq is None:
            raise DataError(
                "cannot infer the frequency from the timestamps; pass freq (e.g. 'B', 'D', 'h')."
            )
    freq = normalise_freq(freq)
    grid = pd.date_range(index[0], index[-1], freq=freq)
    off_grid = index[~index.isin(grid)]
    if len(off_grid):
        raise DataError(
            f"timestamp {off_grid[0]} is not on the {freq!r} grid starting at {index[0]}; "
            "pass the right freq or resample the data first."
        )
    if len(grid) > 2 * len(index):  # a finer grid than the data: mostly missing rows
        inferred = pd.infer_freq(index) if len(index) >= 3 else None
        hint = f" (the timestamps look like {inferred!r})" if inferred else ""
        raise DataError(
            f"at frequency {freq!r} the {len(index)} rows spread over {len(grid)} steps, most "
            f"of them missing; pass the data's own frequency{hint}."
        )
    values = frame.set_axis(index).reindex(grid).to_numpy(dtype=np.float64)  # (T, D)
    return Series(values, grid, tuple(str(c) for c in frame.columns), freq)


def from_long(
    frame: pd.DataFrame,
    freq: str | None = None,
    *,
    item_column: str = "item_id",
    time_column: str = "timestamp",
    value_column: str = "value",
) -> Series:
    """Read a long DataFrame with one row per (series, timestamp).

    Parameters
    ----------
    frame
        Columns ``item_column``, ``time_column`` and ``value_column``.
    freq
        Pandas frequency string; inferred when omitted.

    Returns
    -------
    Series
        One column per item, in order of first appearance.
    """
    missing = [c for c in (item_column, time_column, value_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"long-format data lacks column(s) {', '.join(map(repr, missing))}; name the "
            "columns item_id, timestamp, value or pass the column names."
        )
    if not pd.api.types.is_numeric_dtype(frame[value_column]):
        raise DataError(
            f"column {value_column!r} is not numeric; clean its values or drop bad rows."
        )
    times = _to_datetime(frame[time_column], time_column)
    keys = pd.DataFrame({"item": frame[item_column].astype(str).to_numpy(), "time": times})
    if keys.duplicated().any():
        item, time = keys[keys.duplicated()].iloc[0]
        raise DataError(
            f"series {item!r} has more than one row at {time}; keep one row per series and "
            "timestamp."
        )
    wide = keys.assign(value=frame[value_column].to_numpy())
    wide = wide.pivot(index="time", columns="item", values="value")  # (T, D)
    wide = wide[list(pd.unique(keys["item"]))].sort_index()
    return from_frame(wide, freq)


def read_csv(
    path,
    freq: str | None = None,
    *,
    date_column: str | None = None,
    drop: tuple[str, ...] = (),
    **long_columns,
) -> Series:
    """Read a CSV file: long (``item_id, timestamp, value``) or wide with a date column.

    Parameters
    ----------
    path
        The file (plain or ``.gz``).
    freq
        Pandas frequency string; inferred when omitted.
    date_column
        Column of timestamps of a wide file; the first column by default.
    drop
        Columns of a wide file that are not series (covariates).
    **long_columns
        ``item_column``, ``time_column``, ``value_column`` of a long file.
    """
    path = _existing(path)
    with reading(path, "--data", "a CSV table", FORMATS):
        frame = pd.read_csv(path)
    long_names = (
        long_columns.get("item_column", "item_id"),
        long_columns.get("time_column", "timestamp"),
        long_columns.get("value_column", "value"),
    )
    if set(long_names) <= set(frame.columns):
        return from_long(frame, freq, **long_columns)
    date_column = date_column or str(frame.columns[0])
    if date_column not in frame.columns:
        raise DataError(f"{path} has no column {date_column!r}; pass the name of its date column.")
    index = _to_datetime(frame[date_column], date_column)
    return from_frame(frame.drop(columns=[date_column, *drop]).set_axis(index), freq)


def read_lstnet(path, freq: str, start: str) -> Series:
    """Read an LSTNet-style headerless matrix (rows = time steps, columns = series).

    Parameters
    ----------
    path
        A comma-separated ``.txt`` or ``.txt.gz`` file.
    freq, start
        The grid the file does not carry, e.g. ``"B"`` and ``"1990-01-01"``.
    """
    path = _existing(path)
    with reading(path, "--data", "a comma-separated matrix", FORMATS):
        frame = pd.read_csv(path, header=None)
    index = pd.date_range(first_timestamp(start), periods=len(frame), freq=normalise_freq(freq))
    return from_frame(frame.set_axis(index), freq)


def from_gluonts(dataset: Iterable[Mapping], freq: str | None = None) -> Series:
    """Read a GluonTS dataset: entries with ``start`` and ``target`` (and maybe ``item_id``).

    Several 1-D targets become one column each (aligned by their starts, NaN where a
    series has no value); a single 2-D target of shape (D, T) is a multivariate series.

    Parameters
    ----------
    dataset
        A ``ListDataset``, a ``FileDataset`` or a list of dicts.
    freq
        Needed when the starts are strings (JSON); taken from ``pandas.Period`` starts.
    """
    entries = list(dataset)
    columns: dict[str, pd.Series] = {}
    for i, entry in enumerate(entries):
        start = entry["start"]
        if isinstance(start, pd.Period):
            freq = freq or start.freqstr
            start = period_timestamp(start)
        if freq is None:
            raise ConfigError("the dataset's starts carry no frequency; pass freq (e.g. 'B').")
        target = np.asarray(entry["target"], dtype=np.float64)
        rows = np.atleast_2d(target)  # (D_entry, T)
        index = pd.date_range(pd.Timestamp(start), periods=rows.shape[1], freq=normalise_freq(freq))
        item = str(entry.get("item_id", i))
        for d, row in enumerate(rows):
            # A multivariate entry's rows are numbered, prefixed if there are several entries.
            name = item if target.ndim == 1 else str(d) if len(entries) == 1 else f"{item}_{d}"
            columns[name] = pd.Series(row, index=index)
    if not columns:
        raise DataError("the dataset has no entries; pass at least one time series.")
    return from_frame(pd.concat(columns, axis=1), freq)


def period_timestamp(period: pd.Period) -> pd.Timestamp:
    """The timestamp a ``pandas.Period`` starts at (GluonTS entries start with a Period)."""
    # Field by field: Period.to_timestamp warns for business days in pandas 2.2+.
    fields = ("year", "month", "day", "hour", "minute", "second")
    return pd.Timestamp(*(getattr(period, f) for f in fields))


def read_jsonl(path, freq: str | None = None) -> Series:
    """Read GluonTS JSON lines (one ``{"start": ..., "target": [...]}`` object per line)."""
    path = _existing(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with reading(path, "--data", "JSON lines", FORMATS), opener(path, "rt") as lines:
        entries = [json.loads(line) for line in lines if line.strip()]
    if not all(isinstance(e, dict) and "start" in e and "target" in e for e in entries):
        raise DataError(
            f'{path} is not GluonTS JSON lines; write one {{"start": ..., "target": [...]}} '
            "object per line."
        )
    with reading(path, "--data", "GluonTS JSON lines", FORMATS):
        return from_gluonts(entries, freq)


def load(path, freq: str | None = None, start: str | None = None) -> Series:
    """Read any supported file, choosing the reader from its name.

    ``.txt`` / ``.txt.gz``: LSTNet matrix (needs ``freq`` and ``start``); ``.json`` /
    ``.jsonl`` (optionally ``.gz``): GluonTS JSON lines; anything else: CSV.
    """
    path = _existing(path)
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".txt":
        if freq is None or start is None:
            raise ConfigError(
                f"{path.name} is a headerless matrix; pass its frequency and first timestamp "
                "(--freq and --start)."
            )
        return read_lstnet(path, freq, start)
    if kind in (".json", ".jsonl"):
        return read_jsonl(path, freq)
    return read_csv(path, freq)


def exchange_rate_nips(path=None) -> Split:
    """GluonTS's ``exchange_rate_nips`` rebuilt offline from LSTNet's exchange-rate file.

    Start 1990-01-01, frequency "B", 8 series; train = the first 6,071 rows; 5 rolling test
    windows of 30 steps, window k holding the first 6,071 + 30 k rows.

    Parameters
    ----------
    path
        ``exchange_rate.txt.gz`` or a data folder holding ``exchange_rate/`` in it; by
        default ``$DIFFKIT_DATA``.
    """
    return rolling_windows(
        read_lstnet(_find(path, "exchange_rate", "exchange_rate.txt.gz"), "B", "1990-01-01"),
        30,
        5,
        train_length=EXCHANGE_TRAIN_LENGTH,
    )


def etth1(path=None) -> Split:
    """ETTh1 (hourly, 7 series) with its last 7 windows of 24 hours as rolling test windows.

    Parameters
    ----------
    path
        ``ETTh1.csv`` or a data folder holding ``ett/`` in it; by default ``$DIFFKIT_DATA``.
    """
    return rolling_windows(read_csv(_find(path, "ett", "ETTh1.csv"), "h"), 24, 7)


def _find(path, folder: str, name: str) -> Path:
    if path is None:
        if "DIFFKIT_DATA" not in os.environ:
            raise MissingFileError(f"no path given for {name}; pass it or set DIFFKIT_DATA.")
        path = os.environ["DIFFKIT_DATA"]
    path = _existing(path, folder=True)
    if path.is_dir():
        for candidate in (path / folder / name, path / name):
            if candidate.exists():
                return candidate
        raise MissingFileError(f"no {folder}/{name} under {path}; check the data folder.")
    return path


def first_timestamp(start: str) -> pd.Timestamp:
    """``start`` (``--start``) as a timestamp; a ConfigError naming the fix otherwise."""
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError, OverflowError):
        first = None
    if first is None or first is pd.NaT:
        raise ConfigError(f"--start {start!r} is not a timestamp; pass one like 1990-01-01.")
    return first


def _to_datetime(column, name: str) -> pd.DatetimeIndex:
    bad = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    try:
        # Numbers would silently parse as nanoseconds since 1970: refuse them.
        index = None if bad else pd.DatetimeIndex(pd.to_datetime(column))
    except (ValueError, TypeError):
        index = None
    if index is None:
        raise DataError(
            f"the {name!r} values are not timestamps; pass a DatetimeIndex or name the right "
            "date column."
        )
    return index
