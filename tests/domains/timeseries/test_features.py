import numpy as np
import pandas as pd
import pytest
import torch

from diffkit import ConfigError, ShapeError
from diffkit.domains.timeseries import (
    default_lags,
    fill_missing,
    lagged_values,
    mean_scale,
    num_time_features,
    observed_mask,
    time_feature_names,
    time_features,
)


@pytest.mark.parametrize(
    ("freq", "lags"),
    [
        ("B", (1, 2)),
        ("1B", (1, 2)),
        ("D", (1, 7, 14)),
        ("h", (1, 24, 168)),
        ("2h", (1, 24, 168)),
        ("15min", (1, 4, 12, 24, 48)),
        ("MS", (1, 12)),
        ("W", (1,)),
    ],
)
def test_default_lags_follow_timegrad(freq, lags):
    assert default_lags(freq) == lags


def test_unknown_frequency_is_a_config_error():
    with pytest.raises(ConfigError, match="frequency"):
        default_lags("fortnightly")


def test_hourly_time_features_have_known_values():
    index = pd.date_range("2024-01-01 00:00", periods=3, freq="6h")  # a Monday
    assert time_feature_names("h") == ("hour", "dayofweek")
    feats = time_features(index, "h")
    assert feats.shape == (3, num_time_features("h")) == (3, 4)
    hour = 2 * np.pi * np.array([0, 6, 12]) / 24
    np.testing.assert_allclose(feats[:, 0], np.cos(hour), atol=1e-6)
    np.testing.assert_allclose(feats[:, 1], np.sin(hour), atol=1e-6)
    np.testing.assert_allclose(feats[:, 2:], [[1.0, 0.0]] * 3, atol=1e-6)  # Monday: phase 0


def test_time_features_do_not_depend_on_the_window():
    index = pd.date_range("2024-01-01", periods=60, freq="B")
    np.testing.assert_array_equal(
        time_features(index, "B")[10:20], time_features(index[10:20], "B")
    )


def test_lagged_values_pick_the_right_positions():
    x = torch.arange(10.0).reshape(1, 10, 1) * torch.tensor([1.0, 100.0])  # (1, 10, 2)
    out = lagged_values(x, (1, 3), length=4)  # positions 6..9
    assert out.shape == (1, 4, 2, 2)
    np.testing.assert_array_equal(out[0, :, 0, 0], [5, 6, 7, 8])  # lag 1
    np.testing.assert_array_equal(out[0, :, 0, 1], [3, 4, 5, 6])  # lag 3
    np.testing.assert_array_equal(out[0, :, 1, 1], [300, 400, 500, 600])
    with pytest.raises(ShapeError, match="too short"):
        lagged_values(x, (1, 7), length=4)


def test_mean_scale_uses_observed_values_only():
    x = torch.tensor([[[1.0, -4.0, 0.0], [3.0, float("nan"), 0.0], [-2.0, 2.0, 0.0]]])  # (1,3,3)
    observed = observed_mask(x)
    scale = mean_scale(x, observed, min_scale=1e-5)
    # series 0: mean(1, 3, 2) = 2; series 1: mean(4, 2) = 3 (NaN left out); series 2 has only
    # zeros, so it falls back on the mean |x| of the other observed values: 12 / 5.
    np.testing.assert_allclose(scale[0, 0], [2.0, 3.0, 12 / 5], rtol=1e-6)
    assert mean_scale(torch.zeros(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool)).eq(1).all()
    tiny = mean_scale(torch.full((1, 2, 1), 1e-9), torch.ones(1, 2, 1, dtype=torch.bool), 1e-5)
    assert tiny.item() == pytest.approx(1e-5)


def test_missing_values_become_zero_with_their_indicator():
    x = torch.tensor([[1.0, float("nan")], [float("inf"), 4.0]])
    given = torch.tensor([[True, True], [True, False]])
    observed = observed_mask(x, given)
    np.testing.assert_array_equal(observed, [[True, False], [False, False]])
    np.testing.assert_array_equal(fill_missing(x, observed), [[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ShapeError, match="observed mask"):
        observed_mask(x, given[:1])
