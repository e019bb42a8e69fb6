import warnings

import numpy as np
import pandas as pd
import pytest

from diffkit import ShapeError
from diffkit.domains.timeseries import (
    QUANTILES,
    energy_score,
    evaluate,
    rolling_windows,
    sample_quantiles,
    seasonal_var,
    synthetic,
    true_predictive_moments,
    true_predictive_samples,
)


def forecasts_with_holes(seed=0, S=100, T=30, D=4, W=3):
    """Sample forecasts and targets of W windows, with NaN targets of every kind."""
    rng = np.random.default_rng(seed)
    forecasts, targets = [], []
    for w in range(W):
        target = rng.normal(5, 2, size=(T, D))
        forecasts.append(target[None] + rng.normal(0.3, 1, size=(S, T, D)))
        if w == 1:
            target[3, 2] = np.nan  # one value
            target[5, :] = np.nan  # a whole step
        if w == 2:
            target[:, 1] = np.nan  # a whole series of a window
        targets.append(target)
    return forecasts, targets


@pytest.mark.filterwarnings("ignore")
def test_metrics_equal_gluonts_multivariate_evaluator():
    from gluonts.evaluation import MultivariateEvaluator
    from gluonts.model.forecast import SampleForecast

    forecasts, targets = forecasts_with_holes()
    series, gluon_forecasts = [], []
    rng = np.random.default_rng(1)
    for samples, target in zip(forecasts, targets, strict=True):
        full = np.concatenate([rng.normal(5, 2, size=(10, target.shape[1])), target])
        index = pd.period_range("2020-01-01", periods=len(full), freq="D")
        series.append(pd.DataFrame(full, index=index))
        gluon_forecasts.append(SampleForecast(samples=samples, start_date=index[10]))
    evaluator = MultivariateEvaluator(
        quantiles=(np.arange(20) / 20.0)[1:], target_agg_funcs={"sum": np.sum}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg, _ = evaluator(iter(series), iter(gluon_forecasts))
    ours = evaluate(forecasts, targets)
    for name, key in [
        ("crps", "mean_wQuantileLoss"),
        ("crps_sum", "m_sum_mean_wQuantileLoss"),
        ("nd", "ND"),
        ("nrmse", "NRMSE"),
        ("mse", "MSE"),
    ]:
        assert getattr(ours, name) == pytest.approx(agg[key], abs=1e-6), name


def test_quantiles_are_gluonts_order_statistics():
    assert len(QUANTILES) == 19 and np.allclose(QUANTILES, (np.arange(20) / 20.0)[1:], 0, 0)
    samples = np.arange(11.0)[::-1, None]  # 10, 9, ..., 0
    # round((11 - 1) * q): q = 0.05 -> 0 (half to even), 0.15 -> 2, 0.25 -> 2, 0.95 -> 10
    got = sample_quantiles(samples, [0.05, 0.15, 0.25, 0.95])[:, 0]
    np.testing.assert_array_equal(got, [0.0, 2.0, 2.0, 10.0])


def test_a_perfect_deterministic_forecast_scores_zero():
    target = np.random.default_rng(0).normal(size=(7, 3)) + 4
    metrics = evaluate([np.repeat(target[None], 5, axis=0)], [target])
    assert metrics.as_dict() == pytest.approx(dict.fromkeys(metrics.as_dict(), 0.0), abs=1e-12)


def test_energy_score_of_one_sample_is_the_euclidean_error():
    target = np.zeros((2, 2))
    samples = np.array([[[3.0, 4.0], [0.0, 1.0]]])  # (1, 2, 2)
    assert energy_score(samples, target) == pytest.approx((5.0 + 1.0) / 2)
    # Two samples either side of the target: mean distance 1, mean pairwise distance 1.
    pair = np.array([[[1.0, 0.0]], [[-1.0, 0.0]]])
    assert energy_score(pair, np.zeros((1, 2))) == pytest.approx(1 - 0.5 * 1.0)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ShapeError, match="one sample array per target"):
        evaluate([np.zeros((2, 3, 1))], [])
    with pytest.raises(ShapeError, match="do not match"):
        evaluate([np.zeros((2, 3, 1))], [np.zeros((3, 2))])


def test_true_law_moments_match_its_samples_and_beat_a_naive_forecast():
    process = seasonal_var(3, seed=4)
    split = rolling_windows(synthetic(300, process, seed=4), prediction_length=5, windows=4)
    history = split.histories[0].values
    mean, cov = true_predictive_moments(process, history, 5)
    draws = true_predictive_samples(process, history, 5, 20000, seed=1)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(draws[:, 2].T), cov[2], atol=0.03)
    # One-step covariance is the innovation covariance itself.
    np.testing.assert_allclose(cov[0], process.noise_cov)
    true = [
        true_predictive_samples(process, h.values, 5, 200, seed=k)
        for k, h in enumerate(split.histories)
    ]
    naive = [np.repeat(h.values[-1:][None], 200, axis=0).repeat(5, axis=1) for h in split.histories]
    floor, last_value = evaluate(true, split.targets), evaluate(naive, split.targets)
    assert floor.crps < last_value.crps and floor.energy_score < last_value.energy_score


def test_synthetic_data_is_reproducible():
    a, b = synthetic(50, seed=3), synthetic(50, seed=3)
    assert a == b and a.dim == 8 and a.freq == "D"
    assert a != synthetic(50, seed=4)
    assert np.isfinite(a.values).all() and (a.values > 0).mean() > 0.95
