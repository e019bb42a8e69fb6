"""What ``diffkit forecast`` writes: a long table of forecasts and a fan chart per series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffkit.errors import ConfigError

from .evaluate import QUANTILES, sample_quantiles
from .series import Series

FORMATS = (".csv", ".parquet")


def forecast_frame(
    samples: np.ndarray, index: pd.DatetimeIndex, names: tuple[str, ...], *, raw: bool = False
) -> pd.DataFrame:
    """Sample paths (S, Th, D) as a long table, one row per series and timestamp.

    Columns: ``series, timestamp, mean, q0.05 .. q0.95``; with ``raw`` one row per series,
    timestamp and sample instead: ``series, timestamp, sample, value``.
    """
    S, Th, D = samples.shape
    series = np.repeat(np.asarray(names, dtype=object), Th)  # series-major rows
    stamps = np.tile(np.asarray(index), D)
    if raw:
        values = samples.transpose(2, 1, 0).reshape(D * Th * S)  # (D, Th, S) flattened
        return pd.DataFrame(
            {
                "series": np.repeat(series, S),
                "timestamp": np.repeat(stamps, S),
                "sample": np.tile(np.arange(S), D * Th),
                "value": values,
            }
        )
    frame = pd.DataFrame({"series": series, "timestamp": stamps})
    frame["mean"] = samples.mean(axis=0).T.reshape(D * Th)  # (D, Th) flattened
    levels = sample_quantiles(samples, QUANTILES)  # (Q, Th, D)
    for q, level in zip(QUANTILES, levels, strict=True):
        frame[f"q{q:.2f}"] = level.T.reshape(D * Th)
    return frame


def save_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as .csv or .parquet (chosen by the suffix)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--out must end in .csv or .parquet, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def save_fan_chart(
    history: Series, samples: np.ndarray, index: pd.DatetimeIndex, path: Path, *, past: int = 0
) -> Path:
    """A grid of fan charts, one per series: history, median, 50% and 90% bands.

    ``past`` history steps are drawn (default: three horizons).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, Th, D = samples.shape
    past = past or 3 * Th
    levels = np.quantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)  # (5, Th, D)
    cols = min(D, 4)
    rows = -(-D // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for d, ax in enumerate(axes.flat):
        if d >= D:
            ax.axis("off")
            continue
        ax.plot(history.index[-past:], history.values[-past:, d], color="black", lw=1)
        ax.fill_between(index, levels[0, :, d], levels[4, :, d], alpha=0.25, label="90%")
        ax.fill_between(index, levels[1, :, d], levels[3, :, d], alpha=0.45, label="50%")
        ax.plot(index, levels[2, :, d], lw=1.2, label="median")
        ax.set_title(history.names[d], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=30)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
