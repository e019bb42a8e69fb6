"""Frequency aliases and univariate data through the CLI: train -> forecast -> evaluate."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from diffkit.domains.timeseries.features import default_lags, time_features
from diffkit.domains.timeseries.module import TimeGradConfig
from diffkit.domains.timeseries.series import normalise_freq

from .test_domain import TINY, run, write_wide_csv

# Old pandas alias, its pandas 2.2+ spelling.
ALIASES = [
    ("H", "h"),
    ("T", "min"),
    ("S", "s"),
    ("L", "ms"),
    ("M", "ME"),
    ("A", "YE"),
    ("Y", "YE"),
    ("Q", "QE"),
    ("BM", "BME"),
    ("2H", "2h"),
    ("15T", "15min"),
    ("A-DEC", "YE-DEC"),
]


@pytest.mark.parametrize(("old", "new"), ALIASES)
def test_old_and_new_aliases_mean_the_same_grid_without_warnings(old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old spelling must not reach pandas' warning
        assert normalise_freq(old) == normalise_freq(new)
        index = pd.date_range("2024-01-31", periods=5, freq=normalise_freq(old))
    assert index.equals(pd.date_range("2024-01-31", periods=5, freq=new))
    assert default_lags(old) == default_lags(new)
    np.testing.assert_array_equal(time_features(index, old), time_features(index, new))
    assert TimeGradConfig(2, 3, freq=old).freq == TimeGradConfig(2, 3, freq=new).freq


def test_unknown_frequency_still_names_the_problem():
    from diffkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown frequency 'HH'"):
        normalise_freq("HH")


FAST = [a for a in TINY if a not in ("--synthetic-length", "200")]


@pytest.mark.parametrize("freq", ["H", "h"])
def test_train_on_hourly_data_with_either_spelling_of_its_frequency(tmp_path, capsys, freq):
    values = np.random.default_rng(0).normal(10, 1, (220, 3))
    data = write_wide_csv(tmp_path / "hourly.csv", values, freq="h")
    out = tmp_path / "run"
    args = ["train", "--domain", "timeseries", "--data", data, "--out", out, "--freq", freq]
    code, _, err = run(capsys, *args, *FAST, "--max-steps", "2")
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())["model"]["network"]
    assert saved["freq"] == "h" and saved["lags"] == [1, 24, 168]


def test_one_series_trains_forecasts_and_evaluates(tmp_path, capsys):
    t = np.arange(300)
    noise = np.random.default_rng(1).normal(0, 0.1, 300)
    values = (10 + np.sin(2 * np.pi * t / 7) + noise)[:, None]  # (T, 1)
    data = write_wide_csv(tmp_path / "one.csv", values)
    out, table = tmp_path / "run", tmp_path / "f.csv"
    args = ["train", "--domain", "timeseries", "--data", data, "--out", out, *FAST]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["model"]["network"]["target_dim"] == 1
    code, _, err = run(capsys, "forecast", "--checkpoint", out, "--out", table, "--steps", "3")
    assert code == 0, err
    frame = pd.read_csv(table, parse_dates=["timestamp"])
    assert len(frame) == 6 and set(frame["series"]) == {"c0"}
    assert np.isfinite(frame["mean"]).all()
    code, _, err = run(capsys, "evaluate", "--checkpoint", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    # one series: the sum over series is the series itself
    assert metrics["crps_sum"] == pytest.approx(metrics["crps"], rel=1e-9)
