"""The one value type every reader returns, its checks, and GluonTS-style rolling splits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from diffkit.errors import ConfigError, DataError, ShapeError

# pandas < 2.2 aliases -> their pandas 2.2+ spelling (same meaning; the old ones warn
# and pandas 3 drops them). "M", "Q", "Y"/"A" always meant month/quarter/year *end*.
_OLD_ALIASES = {
    "H": "h",
    "BH": "bh",
    "CBH": "cbh",
    "T": "min",
    "S": "s",
    "L": "ms",
    "U": "us",
    "N": "ns",
    "M": "ME",
    "BM": "BME",
    "CBM": "CBME",
    "SM": "SME",
    "Q": "QE",
    "BQ": "BQE",
    "A": "YE",
    "Y": "YE",
    "BA": "BYE",
    "BY": "BYE",
    "AS": "YS",
    "BAS": "BYS",
}
_ALIAS = re.compile(r"^\s*([+-]?\d*)\s*([A-Za-z]+)(-[A-Za-z0-9]+)?\s*$")


def normalise_freq(freq: str) -> str:
    """Return pandas' canonical spelling of a frequency string ("1B" -> "B", "H" -> "h").

    Old and new aliases mean the same: "H" and "h", "T" and "min", "S" and "s", "M" and
    "ME", "A"/"Y" and "YE", with or without a multiple ("15T" -> "15min") or an anchor
    ("A-DEC" -> "YE-DEC").
    """
    match = _ALIAS.match(freq) if isinstance(freq, str) else None
    if match:
        count, name, anchor = match.groups()
        freq = count + _OLD_ALIASES.get(name, name) + (anchor or "")
    try:
        return to_offset(freq).freqstr
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"unknown frequency {freq!r}; pass a pandas frequency string such as 'B', 'D' or 'h'."
        ) from err


@dataclass(frozen=True, eq=False)
class Series:
    """A regular multivariate time series: D aligned series on one timestamp grid.

    Parameters
    ----------
    values
        Float array of shape (T, D); NaN marks a missing value. Stored read-only.
    index
        The T timestamps, strictly increasing and regular at ``freq``.
    names
        The D series names.
    freq
        Pandas frequency string of the grid, in canonical spelling.
    """

    values: np.ndarray
    index: pd.DatetimeIndex
    names: tuple[str, ...]
    freq: str

    def __post_init__(self):
        values = np.array(self.values, dtype=np.float64)  # a copy we own
        if values.ndim != 2:
            raise ShapeError(
                f"series values have {values.ndim} dimensions but (time, series) is needed; "
                "pass a 2-D array with one column per series."
            )
        values.setflags(write=False)
        index = pd.DatetimeIndex(self.index)
        names = tuple(str(n) for n in self.names)
        freq = normalise_freq(self.freq)
        T, D = values.shape
        if T == 0 or D == 0:
            raise DataError("the series is empty; pass at least one time step of one series.")
        if len(index) != T or len(names) != D:
            raise ShapeError(
                f"{T} x {D} values need {T} timestamps and {D} names, got {len(index)} and "
                f"{len(names)}; pass matching index and names."
            )
        if len(set(names)) != D:
            raise DataError("series names are not unique; give every series its own name.")
        check_index(index)
        if not index.equals(pd.date_range(index[0], periods=T, freq=freq)):
            raise DataError(
                f"the timestamps are not a regular grid at frequency {freq!r}; read the data "
                "through a reader of this module, which inserts missing steps as NaN."
            )
        empty = [n for n, ok in zip(names, np.isfinite(values).any(axis=0), strict=True) if not ok]
        if empty:
            raise DataError(
                f"series {', '.join(map(repr, empty))} hold no observed value (all NaN); "
                "drop them before training."
            )
        index = pd.DatetimeIndex(index, freq=freq)
        for name, value in (("values", values), ("index", index), ("names", names)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "freq", freq)

    @property
    def length(self) -> int:
        """Number of time steps T."""
        return self.values.shape[0]

    @property
    def dim(self) -> int:
        """Number of series D."""
        return self.values.shape[1]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return (
            self.names == other.names
            and self.freq == other.freq
            and self.index.equals(other.index)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    __hash__ = None  # mutable-looking payload: not hashable, like numpy arrays

    def head(self, n: int) -> Series:
        """The first ``n`` time steps."""
        return Series(self.values[:n], self.index[:n], self.names, self.freq)

    def to_frame(self) -> pd.DataFrame:
        """A wide DataFrame (DatetimeIndex x one column per series)."""
        return pd.DataFrame(self.values, index=self.index, columns=list(self.names))


def check_index(index: pd.DatetimeIndex) -> None:
    """Raise DataError for duplicated or unsorted timestamps."""
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise DataError(
            f"timestamp {duplicated[0]} occurs more than once; keep one row per timestamp "
            "(one per series and timestamp in long format)."
        )
    if not index.is_monotonic_increasing:
        raise DataError("the timestamps are not sorted; sort the rows by time before loading.")


def check_series(
    series: Series, context_length: int, prediction_length: int, *, min_dim: int = 1
) -> Series:
    """Return ``series`` if it is long and wide enough for a model, else raise.

    Parameters
    ----------
    series
        The data.
    context_length, prediction_length
        Steps the model reads and predicts; the series needs at least their sum.
    min_dim
        Smallest number of series the model accepts (2 for a multivariate-only model).
    """
    needed = context_length + prediction_length
    if series.length < needed:
        raise DataError(
            f"the series has {series.length} time steps but context {context_length} + "
            f"horizon {prediction_length} = {needed} are needed; use a longer series or "
            "shorter --context-length / --prediction-length."
        )
    if series.dim < min_dim:
        raise ShapeError(
            f"the data holds {series.dim} series but this model needs at least {min_dim}; "
            "pass a table with one column per series."
        )
    return series


@dataclass(frozen=True)
class Split:
    """A training range, validation windows and rolling test windows (GluonTS style).

    ``tests[k]`` holds everything before test window k plus the window; its last
    ``prediction_length`` steps are the ones to forecast. ``validation`` holds, the same
    way, the windows just before the first test window; ``train`` ends where they begin.
    """

    train: Series
    tests: tuple[Series, ...]
    prediction_length: int
    validation: tuple[Series, ...] = ()

    @property
    def targets(self) -> list[np.ndarray]:
        """The values to forecast, one (prediction_length, D) array per window."""
        return [test.values[-self.prediction_length :] for test in self.tests]

    @property
    def histories(self) -> list[Series]:
        """What a forecaster sees for each window: everything before the window."""
        return [test.head(test.length - self.prediction_length) for test in self.tests]

    def validation_split(self) -> Split:
        """The validation windows as the test windows of a Split (same training range)."""
        return Split(self.train, self.validation, self.prediction_length)


def rolling_windows(
    series: Series,
    prediction_length: int,
    windows: int,
    *,
    train_length: int | None = None,
    validation_windows: int = 0,
) -> Split:
    """Split a series into training range, validation windows and rolling test windows.

    With L = ``train_length``, Th = ``prediction_length`` and V = ``validation_windows``,
    training reads steps [0, L - V Th), validation window j (j = 1..V) forecasts steps
    [L - (V - j + 1) Th, L - (V - j) Th) and test window k (k = 1..windows) steps
    [L + (k - 1) Th, L + k Th): the three never overlap.

    Parameters
    ----------
    series
        The full data.
    prediction_length
        Steps per window.
    windows
        Number of test windows.
    train_length
        Steps before the first test window (training range plus validation windows); by
        default the test windows end with the series.
    validation_windows
        Number of validation windows cut from the end of those steps.

    Returns
    -------
    Split
        The training range, the validation windows and the test windows.
    """
    if prediction_length < 1 or windows < 1 or validation_windows < 0:
        raise ConfigError(
            f"prediction length {prediction_length} and windows {windows} must both be at "
            f"least 1 and validation windows {validation_windows} not negative; pass such values."
        )
    if train_length is None:
        train_length = series.length - windows * prediction_length
    end = train_length + windows * prediction_length
    fit_length = train_length - validation_windows * prediction_length
    if fit_length < 1 or end > series.length:
        raise DataError(
            f"the series has {series.length} time steps, too few for {windows} test and "
            f"{validation_windows} validation windows of {prediction_length} after a training "
            "range; use a longer series or fewer or shorter windows (--test-windows, "
            "--validation-windows, --prediction-length)."
        )
    Th = prediction_length
    tests = tuple(series.head(train_length + k * Th) for k in range(1, windows + 1))
    val = tuple(series.head(fit_length + j * Th) for j in range(1, validation_windows + 1))
    return Split(series.head(fit_length), tests, Th, val)
