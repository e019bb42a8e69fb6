"""TimeGrad as a GluonTS estimator: train, predict, evaluate with GluonTS's own tools."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("gluonts")

from gluonts.dataset.common import ListDataset
from gluonts.dataset.multivariate_grouper import MultivariateGrouper
from gluonts.evaluation import MultivariateEvaluator, make_evaluation_predictions
from gluonts.model.predictor import Predictor

from diffkit import DataError, ShapeError
from diffkit.domains.timeseries import QUANTILES, TimeGradEstimator, TimeGradModel
from diffkit.domains.timeseries.data import period_timestamp
from diffkit.domains.timeseries.gluonts_data import gluonts_datasets
from diffkit.domains.timeseries.horizon import HorizonModel

from .glue import CONTEXT, HORIZON, QUIET, TINY, TINY_HORIZON, WINDOWS, exchange_slice, scaled

SAMPLES = 16

# GluonTS itself uses pandas' deprecated business-day Periods.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def grouped(split):
    """Grouped training and test datasets (8 series) as GluonTS's multivariate tutorials."""
    train, test = gluonts_datasets(split)
    grouped_train = MultivariateGrouper(max_target_dim=8)(train)
    grouped_test = MultivariateGrouper(max_target_dim=8, num_test_dates=WINDOWS)(test)
    return grouped_train, grouped_test


@pytest.fixture
def exchange(exchange_file):
    split = exchange_slice(exchange_file)
    return split, *grouped(split)


def estimator(tmp_path, batches: int, **overrides) -> TimeGradEstimator:
    settings = {
        "freq": "B",
        "prediction_length": HORIZON,
        "context_length": CONTEXT,
        "target_dim": 8,
        "model_options": TINY,
        "batch_size": 16,
        "num_batches_per_epoch": batches,
        "num_parallel_samples": SAMPLES,
        "trainer_kwargs": {"max_epochs": 1, "default_root_dir": str(tmp_path), **QUIET},
        **overrides,
    }
    return TimeGradEstimator(**settings)


def train(estimator, data, seed: int = 0, validation_data=None):
    torch.manual_seed(seed)
    np.random.seed(seed)  # GluonTS's instance sampler draws from numpy's global state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notices about workers and logging
        return estimator.train(data, validation_data=validation_data)


def crps(predictor, test) -> tuple[dict, list, list]:
    forecasts, series = make_evaluation_predictions(test, predictor, num_samples=SAMPLES)
    forecasts, series = list(forecasts), list(series)
    evaluator = MultivariateEvaluator(
        quantiles=QUANTILES, target_agg_funcs={"sum": np.sum}, num_workers=0
    )
    metrics, _ = evaluator(series, forecasts, num_series=len(test))
    return metrics, forecasts, series


def test_train_predict_evaluate(exchange, tmp_path):
    split, train_ds, test_ds = exchange
    # Validating on the test windows only exercises the validation loop here.
    predictor = train(estimator(tmp_path, batches=3), train_ds, validation_data=test_ds)
    metrics, forecasts, _ = crps(predictor, test_ds)
    assert len(forecasts) == WINDOWS
    for forecast, window in zip(forecasts, split.histories, strict=True):
        assert forecast.samples.shape == (SAMPLES, HORIZON, 8)
        assert np.isfinite(forecast.samples).all()
        assert period_timestamp(forecast.start_date) == window.index[-1] + pd.offsets.BDay()
    assert np.isfinite(metrics["mean_wQuantileLoss"])
    assert np.isfinite(metrics["m_sum_mean_wQuantileLoss"])
    # Original scale: the network sees mean-scaled values, so data 1000x larger gives the same
    # paths 1000x larger (the predictor reseeds on every predict).
    _, big_test = grouped(scaled(split, 1000.0))
    big_forecasts = make_evaluation_predictions(big_test, predictor, num_samples=SAMPLES)[0]
    for small, big in zip(forecasts, big_forecasts, strict=True):
        np.testing.assert_allclose(big.samples, 1000.0 * small.samples, rtol=1e-3, atol=1e-3)


def test_longer_training_lowers_gluonts_crps(exchange, tmp_path):
    _, train_ds, test_ds = exchange
    short = crps(train(estimator(tmp_path, batches=2, lr=3e-3), train_ds), test_ds)[0]
    long = crps(train(estimator(tmp_path, batches=40, lr=3e-3), train_ds), test_ds)[0]
    # Measured CRPS after 2 / 20 / 40 batches: 1.9 / 0.90 / 0.05 on Exchange, 1.8 / 0.89 / 0.09
    # on the synthetic file.
    assert long["mean_wQuantileLoss"] < 0.5 * short["mean_wQuantileLoss"]
    assert long["m_sum_mean_wQuantileLoss"] < short["m_sum_mean_wQuantileLoss"]


def test_serialize_round_trip_gives_identical_forecasts(exchange, tmp_path):
    _, train_ds, test_ds = exchange
    predictor = train(estimator(tmp_path, batches=2, prediction_seed=7), train_ds)
    (tmp_path / "model").mkdir()
    predictor.serialize(tmp_path / "model")
    loaded = Predictor.deserialize(tmp_path / "model")
    assert isinstance(loaded.prediction_net.model, TimeGradModel)
    first = [f.samples for f in predictor.predict(test_ds)]
    again = [f.samples for f in predictor.predict(test_ds)]
    restored = [f.samples for f in loaded.predict(test_ds)]
    for a, b, c in zip(first, again, restored, strict=True):
        np.testing.assert_array_equal(a, b)  # the seed is drawn afresh on each predict
        np.testing.assert_array_equal(a, c)


def test_missing_values_follow_the_observed_indicator(exchange, tmp_path):
    """NaN targets train and forecast: GluonTS marks them unobserved, the network skips them."""
    _, train_ds, test_ds = exchange
    entry = dict(next(iter(train_ds)))
    target = np.array(entry["target"], dtype=np.float32)  # (D, T)
    target[:, -30:-20] = np.nan  # a gap in every series
    target[2, -5:] = np.nan  # and one series missing its last steps
    gappy = ListDataset([{**entry, "target": target}], freq="B", one_dim_target=False)
    predictor = train(estimator(tmp_path, batches=2), gappy)
    window = dict(next(iter(test_ds)))
    window["target"] = np.array(window["target"], dtype=np.float32)
    window["target"][1, -HORIZON - 3 : -HORIZON] = np.nan
    test = ListDataset([window], freq="B", one_dim_target=False)
    forecast = next(iter(predictor.predict(test)))
    assert forecast.samples.shape == (SAMPLES, HORIZON, 8)
    assert np.isfinite(forecast.samples).all()


def test_bad_inputs_give_one_clear_error(exchange, tmp_path):
    split, train_ds, _ = exchange
    with pytest.raises(ShapeError, match=r"8 series but the estimator has target_dim=5"):
        train(estimator(tmp_path, batches=1, target_dim=5), train_ds)
    univariate, _ = gluonts_datasets(split)
    with pytest.raises(ShapeError, match="MultivariateGrouper"):
        train(estimator(tmp_path, batches=1), univariate)
    with pytest.raises(DataError, match="pass freq='B' to TimeGradEstimator"):
        train(estimator(tmp_path, batches=1, freq="D"), train_ds)


def test_importing_the_package_loads_no_framework():
    code = (
        "import sys, diffkit.domains.timeseries as ts;"
        "assert 'gluonts' not in sys.modules and 'pytorch_forecasting' not in sys.modules;"
        "ts.TimeGradEstimator; assert 'gluonts' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_horizon_network_trains_predicts_and_round_trips(exchange, tmp_path):
    split, train_ds, test_ds = exchange
    trained = estimator(tmp_path, batches=3, model_options=TINY_HORIZON, prediction_seed=7)
    predictor = train(trained, train_ds)
    assert isinstance(predictor.prediction_net.model, HorizonModel)
    _, forecasts, _ = crps(predictor, test_ds)
    assert all(f.samples.shape == (SAMPLES, HORIZON, 8) for f in forecasts)
    (tmp_path / "model").mkdir()
    predictor.serialize(tmp_path / "model")
    restored = Predictor.deserialize(tmp_path / "model").predict(test_ds)
    for a, b in zip(predictor.predict(test_ds), restored, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)
    # each window is standardised by its context: data 1000x larger, paths 1000x larger
    _, big_test = grouped(scaled(split, 1000.0))
    big_forecasts = make_evaluation_predictions(big_test, predictor, num_samples=SAMPLES)[0]
    for small, big in zip(forecasts, big_forecasts, strict=True):
        np.testing.assert_allclose(big.samples, 1000.0 * small.samples, rtol=1e-3, atol=1e-3)
