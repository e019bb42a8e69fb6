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


def promotion_table(path, length=240, future=0, seed=0):
    """A wide CSV: 2 series jumping by 4 on promotion days, a promo column, and ``future``
    rows holding only the promo flag (the covariate known ahead)."""
    rng = np.random.default_rng(seed)
    promo = (rng.random(length + future) < 0.3).astype(float)
    values = 10 + np.arange(2) * 10 + 4 * promo[:, None] + rng.normal(0, 0.2, (length + future, 2))
    values[length:] = np.nan
    frame = pd.DataFrame(values, columns=["a", "b"])
    frame.insert(0, "date", pd.date_range("2021-01-01", periods=length + future, freq="D"))
    frame["promo"] = promo
    frame.to_csv(path, index=False)
    return path


def test_covariate_columns_train_forecast_and_evaluate_through_the_cli(tmp_path, capsys):
    data = promotion_table(tmp_path / "promo.csv")
    out, table = tmp_path / "run", tmp_path / "f.csv"
    args = ["train", "--domain", "timeseries", "--data", data, "--out", out, *FAST]
    code, _, err = run(capsys, *args, "--covariate-columns", "promo")
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["network"]["num_feat_dynamic_real"] == 1
    assert saved["model"]["network"]["target_dim"] == 2  # the promo column is no series
    promo = pd.read_csv(data)["promo"]
    checkpoint = json.loads((out / "checkpoints" / "step-00000006" / "config.json").read_text())
    stats = checkpoint["settings"]["covariates"]
    assert stats["names"] == ["promo"]
    # the training range: before the validation window and the test window (6 steps each)
    assert stats["mean"][0] == pytest.approx(promo[: 240 - 2 * 6].mean())
    # forecasting needs the promo flags of the horizon: rows after the last target value
    ahead = promotion_table(tmp_path / "ahead.csv", future=6)
    forecast = ["forecast", "--checkpoint", out, "--out", table, "--steps", "3"]
    code, _, err = run(capsys, *forecast, "--data", ahead)
    assert code == 0, err
    frame = pd.read_csv(table, parse_dates=["timestamp"])
    assert frame["timestamp"].min() == pd.Timestamp("2021-01-01") + pd.Timedelta(days=240)
    code, _, err = run(capsys, *forecast, "--overwrite", "--data", data)  # no future rows
    assert code == 2 and "covariates end 6 step(s) before" in err and err.count("\n") == 1, err
    code, _, err = run(capsys, "evaluate", "--checkpoint", out)
    assert code == 0, err


def test_static_columns_of_a_long_file_reach_the_network(tmp_path, capsys):
    rows = []
    for item, level in (("x", 10.0), ("y", 20.0)):
        for t, stamp in enumerate(pd.date_range("2021-01-01", periods=120, freq="D")):
            rows.append({"item_id": item, "timestamp": stamp, "value": level + np.sin(t),
                         "size": level / 10, "promo": float(t % 5 == 0)})  # fmt: skip
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "run"
    args = ["train", "--domain", "timeseries", "--data", path, "--out", out, *FAST]
    code, _, err = run(capsys, *args, "--static-columns", "size", "--covariate-columns", "promo")
    assert code == 0, err
    network = json.loads((out / "config.json").read_text())["model"]["network"]
    # one static per series (2), one promo shared by both series
    assert network["num_feat_static_real"] == 2 and network["num_feat_dynamic_real"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--covariate-columns", "price"], "has no column(s) 'price'"),
        (["--static-columns", "promo"], "--static-columns needs a long file"),
    ],
)
def test_bad_covariate_columns_are_one_line(tmp_path, capsys, flags, message):
    data = promotion_table(tmp_path / "promo.csv")
    args = ["train", "--domain", "timeseries", "--data", data, "--out", tmp_path / "r", *flags]
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r" / "config.json").exists()
