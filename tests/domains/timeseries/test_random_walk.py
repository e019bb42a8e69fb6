"""The random-walk baseline: its paths start from the last value, their step covariance is
the training range's (scaled on request, or each window's recent one), and scale 0 is the
point forecast."""

import numpy as np
import pandas as pd
import pytest

from diffkit.domains.timeseries.bench import random_walk
from diffkit.domains.timeseries.series import Series, rolling_windows


def split_of(values):
    index = pd.date_range("2020-01-01", periods=len(values), freq="D")
    return rolling_windows(Series(values, index, ("a", "b"), "D"), 5, 2)


@pytest.fixture
def walk():
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(3000, 2)) * np.array([1.0, 3.0])
    steps[-400:] *= 0.1  # a calm last stretch: the recent covariance is 100x smaller
    return split_of(np.cumsum(steps, axis=0))


def test_paths_start_at_the_last_value_with_the_training_steps_spread(walk):
    paths = random_walk(walk, 4000, seed=1)
    last = [h.values[-1] for h in walk.histories]
    first = np.stack([p[:, 0] for p in paths])  # (windows, S, D)
    steps = first - np.stack(last)[:, None]
    inc = np.diff(walk.train.values, axis=0)
    assert steps.var(axis=(0, 1)) == pytest.approx(inc.var(axis=0), rel=0.06)
    half = random_walk(walk, 4000, seed=1, scale=0.25)
    first_half = np.stack([p[:, 0] for p in half]) - np.stack(last)[:, None]
    assert first_half.std(axis=(0, 1)) == pytest.approx(steps.std(axis=(0, 1)) / 2, rel=0.06)


def test_scale_zero_is_a_point_forecast_and_recent_reads_each_windows_own_steps(walk):
    point = random_walk(walk, 10, scale=0.0)
    assert all(np.ptp(p, axis=0).max() == 0 for p in point)
    recent = random_walk(walk, 4000, seed=2, recent=200)
    last = np.stack([h.values[-1] for h in walk.histories])
    steps = np.stack([p[:, 0] for p in recent]) - last[:, None]
    expected = np.diff(walk.histories[0].values[-200:], axis=0).var(axis=0)
    assert steps.var(axis=(0, 1)) == pytest.approx(expected, rel=0.1)
    assert steps.var(axis=(0, 1))[1] < 0.05 * np.diff(walk.train.values, axis=0).var(axis=0)[1]
