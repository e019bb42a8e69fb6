"""Time series: TimeGrad (Rasul et al. 2021) on diffkit's core, its data readers and metrics.

The network (``module``, ``denoiser``, ``features``) is pure torch; glue for GluonTS and
pytorch-forecasting lives in its own files and is the only code importing those libraries;
their classes are exported lazily, so importing this package imports neither framework.
"""

from importlib import import_module

from .data import (
    etth1,
    exchange_rate_nips,
    from_frame,
    from_gluonts,
    from_long,
    load,
    read_csv,
    read_jsonl,
    read_lstnet,
)
from .denoiser import ConditionalDenoiser, DenoiserConfig
from .evaluate import QUANTILES, Metrics, energy_score, evaluate, sample_quantiles
from .features import (
    default_lags,
    fill_missing,
    lagged_values,
    mean_scale,
    num_time_features,
    observed_mask,
    time_feature_names,
    time_features,
)
from .module import TimeGradConfig, TimeGradModel
from .series import Series, Split, check_series, rolling_windows
from .synthetic import (
    SeasonalVAR,
    seasonal_var,
    synthetic,
    true_predictive_moments,
    true_predictive_samples,
)

# Framework glue, imported on first access: name -> module.
_LAZY = {
    "TimeGradEstimator": ".gluonts_estimator",
    "TimeGradLightningModule": ".gluonts_lightning",
    "TimeGradForecaster": ".forecasting",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "QUANTILES",
    "ConditionalDenoiser",
    "DenoiserConfig",
    "Metrics",
    "SeasonalVAR",
    "Series",
    "Split",
    "TimeGradConfig",
    "TimeGradEstimator",
    "TimeGradForecaster",
    "TimeGradLightningModule",
    "TimeGradModel",
    "check_series",
    "default_lags",
    "energy_score",
    "etth1",
    "evaluate",
    "exchange_rate_nips",
    "fill_missing",
    "from_frame",
    "from_gluonts",
    "from_long",
    "lagged_values",
    "load",
    "mean_scale",
    "num_time_features",
    "observed_mask",
    "read_csv",
    "read_jsonl",
    "read_lstnet",
    "rolling_windows",
    "sample_quantiles",
    "seasonal_var",
    "synthetic",
    "time_feature_names",
    "time_features",
    "true_predictive_moments",
    "true_predictive_samples",
]
