"""Settings and data shared by the GluonTS and pytorch-forecasting glue tests."""

from diffkit.domains.timeseries import Split, exchange_rate_nips, rolling_windows

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

# Lightning quiet and writing under a test's tmp_path only.
QUIET = {
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "accelerator": "cpu",
}


def exchange_slice(data_dir, length: int = 500) -> Split:
    """The first ``length`` business days of Exchange (8 series), 3 test windows of 10."""
    series = exchange_rate_nips(data_dir).tests[-1].head(length)
    return rolling_windows(series, HORIZON, WINDOWS)
