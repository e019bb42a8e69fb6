"""Both framework paths wrap the same network, built alike and fed the same time features."""

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("gluonts")
pytest.importorskip("pytorch_forecasting")

from gluonts.dataset.common import ListDataset
from pytorch_forecasting import TimeSeriesDataSet

from diffkit.domains.timeseries import (
    Series,
    TimeGradConfig,
    TimeGradEstimator,
    TimeGradForecaster,
    TimeGradModel,
    time_features,
)
from diffkit.domains.timeseries.forecasting_data import wide_frame

from .glue import CONTEXT, HORIZON, TINY

D = 4
START = "2024-01-01"


@pytest.fixture
def series() -> Series:
    values = np.random.default_rng(0).uniform(1.0, 2.0, size=(60, D))
    return Series(values, pd.date_range(START, periods=60, freq="B"), "abcd", "B")


def gluonts_model() -> TimeGradModel:
    estimator = TimeGradEstimator(
        freq="B",
        prediction_length=HORIZON,
        context_length=CONTEXT,
        target_dim=D,
        model_options=TINY,
    )
    return estimator.create_lightning_module().model


def forecaster(series: Series) -> TimeGradForecaster:
    names = list(series.names)
    dataset = TimeSeriesDataSet(
        wide_frame(series),
        time_idx="time_idx",
        target=names,
        group_ids=["group"],
        min_encoder_length=CONTEXT + 2,
        max_encoder_length=CONTEXT + 2,
        min_prediction_length=HORIZON,
        max_prediction_length=HORIZON,
    )
    return TimeGradForecaster.from_dataset(
        dataset, freq="B", start=series.index[0], model_options=TINY
    )


def size(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_both_paths_build_the_same_network(series):
    direct = TimeGradModel(
        TimeGradConfig(D, HORIZON, context_length=CONTEXT, freq="B", **TINY)
    )  # what the CLI builds from the same settings
    from_gluonts = gluonts_model()
    from_forecasting = forecaster(series).model
    for model in (from_gluonts, from_forecasting):
        assert type(model) is TimeGradModel
        assert model.config == direct.config
        assert size(model) == size(direct)


def test_both_paths_feed_the_networks_own_time_features(series):
    """GluonTS's transformation and the forecaster compute ``features.time_features``."""
    expected = time_features(series.index, "B")  # (T, F)
    estimator = TimeGradEstimator(freq="B", prediction_length=HORIZON, target_dim=D)
    entry = {"start": pd.Period(START, freq="B"), "target": series.values.T}
    data = ListDataset([entry], freq="B", one_dim_target=False)
    transformed = next(iter(estimator.create_transformation().apply(data, is_train=True)))
    np.testing.assert_array_equal(transformed["time_feat"].T, expected)
    steps = torch.arange(series.length)[None]  # (1, T) time_idx
    computed = forecaster(series)._time_features(steps)[0].numpy()
    np.testing.assert_array_equal(computed, expected)


def test_the_cli_builds_the_network_the_glue_builds(series):
    """``diffkit train --domain timeseries`` with the same settings: same class, config, size."""
    from diffkit.config import DiffusionConfig, build
    from diffkit.domains.timeseries.domain import TimeSeriesConfig
    from diffkit.registry import get_domain

    options = {**TINY, "denoiser": {"residual_layers": 2, "residual_channels": 8}}
    keys = dict(
        prediction_length=HORIZON, context_length=CONTEXT, freq="B", target_dim=D,
        num_layers=1, num_cells=16, cond_dim=16, dropout=0.0,
        residual_layers=2, residual_channels=8,
    )  # fmt: skip
    cli_settings = build(TimeSeriesConfig, keys, "model")  # as `diffkit train` flags give them
    diffusion = DiffusionConfig(schedule="linear", T=20, beta_start=1e-4, beta_end=0.3)
    from_cli = get_domain("timeseries").build_network(cli_settings, diffusion)
    from_gluonts = TimeGradEstimator(
        freq="B", prediction_length=HORIZON, context_length=CONTEXT, target_dim=D,
        model_options=options,
    ).create_lightning_module().model  # fmt: skip
    names = list(series.names)
    dataset = TimeSeriesDataSet(
        wide_frame(series), time_idx="time_idx", target=names, group_ids=["group"],
        min_encoder_length=CONTEXT + 2, max_encoder_length=CONTEXT + 2,
        min_prediction_length=HORIZON, max_prediction_length=HORIZON,
    )  # fmt: skip
    from_forecasting = TimeGradForecaster.from_dataset(
        dataset, freq="B", start=series.index[0], model_options=options
    ).model
    for model in (from_gluonts, from_forecasting):
        assert type(model) is type(from_cli) is TimeGradModel
        assert model.config == from_cli.config and size(model) == size(from_cli)
