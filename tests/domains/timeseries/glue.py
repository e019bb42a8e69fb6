"""Settings and data shared by the GluonTS and pytorch-forecasting glue tests."""

import gzip
from pathlib import Path

import numpy as np

from diffkit.domains.timeseries import (
    Series,
    Split,
    exchange_rate_nips,
    rolling_windows,
    seasonal_var,
    synthetic,
)
from diffkit.domains.timeseries.data import EXCHANGE_TRAIN_LENGTH

HORIZON = 10
CONTEXT = 12
WINDOWS = 3

# A tiny TimeGrad: a few thousand parameters, 20 diffusion steps (trains in seconds).
TINY = {
    "num_layers": 1,
    "num_cells": 16,
    "cond_dim": 16,
    "dropout": 0.0,
    "denoiser": {"residual_layers": 2, "residual_channels": 8, "step_hidden_dim": 16},
    "schedule": {"name": "linear", "T": 20, "beta_start": 1e-4, "beta_end": 0.3},
}

# A tiny whole-horizon transformer (architecture="horizon") on TINY's schedule.
TINY_HORIZON = {
    "architecture": "horizon",
    "transformer_width": 16,
    "transformer_depth": 1,
    "transformer_heads": 2,
    "schedule": TINY["schedule"],
}

# Lightning quiet and writing under a test's tmp_path only.
QUIET = {
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "accelerator": "cpu",
}


def write_synthetic_exchange(path: Path) -> Path:
    """A stand-in for LSTNet's ``exchange_rate.txt.gz``: 8 business-day series, same layout.

    The seasonal VAR of ``synthetic.py`` with a 5-day (business-week) season, as many rows as
    ``exchange_rate_nips`` needs (6,071 training rows + 5 windows of 30), written as the
    headerless comma-separated matrix the real file is.
    """
    rows = EXCHANGE_TRAIN_LENGTH + 5 * 30
    series = synthetic(rows, seasonal_var(8, period=5, seed=1), freq="B", start="1990-01-01")
    with gzip.open(path, "wt") as f:
        np.savetxt(f, series.values, delimiter=",", fmt="%.6f")
    return path


def exchange_slice(path: Path, length: int = 500) -> Split:
    """The first ``length`` business days of Exchange (8 series), 3 test windows of 10."""
    series = exchange_rate_nips(path).tests[-1].head(length)
    return rolling_windows(series, HORIZON, WINDOWS)


def scaled(split: Split, factor: float) -> Split:
    """The same split with every value multiplied by ``factor``."""
    full = split.tests[-1]
    series = Series(full.values * factor, full.index, full.names, full.freq)
    return rolling_windows(series, split.prediction_length, len(split.tests))
