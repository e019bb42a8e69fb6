"""The seasonal target (the residual of the seasonal naive forecast) and target="auto"."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from diffkit.domains.timeseries.features import default_season, time_features
from diffkit.domains.timeseries.module import TimeGradConfig, TimeGradModel
from diffkit.domains.timeseries.series import Series, rolling_windows
from diffkit.domains.timeseries.target_choice import choose_target, level_spread, smallest_noise
from diffkit.errors import ConfigError

from .test_domain import TINY, run, write_wide_csv


def hourly(values, start="2021-01-01"):
    index = pd.date_range(start, periods=len(values), freq="h")
    return Series(values, index, tuple(f"s{d}" for d in range(values.shape[1])), "h")


def daily_profiles(days, D=2, noise=0.05, seed=0):
    """Hourly series whose daily profile is random and drifts slowly: yesterday's hour is
    the best guess, the last hour a poor one (T = 24 days, D)."""
    rng = np.random.default_rng(seed)
    profile = rng.normal(size=(24, D)) * 3
    out = []
    for _ in range(days):
        profile = profile + 0.1 * rng.normal(size=profile.shape)
        out.append(profile + noise * rng.normal(size=profile.shape))
    return 10 + np.concatenate(out)  # (24 days, D)


def model(target, season=None, prediction="eps", horizon=6, context=None):
    config = TimeGradConfig(
        target_dim=2, prediction_length=horizon, context_length=context, freq="h",
        target=target, season=season, num_cells=8, num_layers=1, cond_dim=8,
        prediction=prediction, schedule={"name": "linear", "T": 10},
    )  # fmt: skip
    return TimeGradModel(config).eval()


def batch(net, values, start="2021-01-01"):
    """The last window of ``values`` as the model's (past, future) tensors."""
    c = net.config
    Tp, Th = c.history_length, c.prediction_length
    index = pd.date_range(start, periods=len(values), freq="h")
    feats = torch.from_numpy(time_features(index, "h"))[None]
    x = torch.tensor(values, dtype=torch.float32)[None]
    past, future = slice(-Tp - Th, -Th), slice(-Th, None)
    return x[:, past], feats[:, past], x[:, future], feats[:, future]


def test_the_season_follows_the_frequency_and_its_multiple():
    assert [default_season(f) for f in ("h", "H", "15min", "2h", "D", "B", "W", "ME")] == [
        24, 24, 96, 12, 7, 5, 52, 12,
    ]  # fmt: skip
    config = model("seasonal").config
    assert config.season == 24 and config.target_lag == 24 and 24 in config.lags
    assert TimeGradConfig(2, 6, freq="B", target="seasonal").lags == (1, 2, 5)  # season added
    assert model("difference").config.target_lag == 1 and model("level").config.target_lag == 0


def test_seasonal_with_a_season_of_one_is_the_difference_target():
    values = daily_profiles(10)
    diff, seasonal = model("difference"), model("seasonal", season=1)
    seasonal.load_state_dict(diff.state_dict())
    past, past_feat, future, future_feat = batch(diff, values)
    losses = [
        net.loss(past, None, future, None, past_feat, future_feat,
                 generator=torch.Generator().manual_seed(3))
        for net in (diff, seasonal)
    ]  # fmt: skip
    torch.testing.assert_close(losses[0], losses[1])
    draws = [
        net.forecast(past, None, past_feat, future_feat, num_samples=4, sampler="ddim", steps=3,
                     generator=torch.Generator().manual_seed(4))
        for net in (diff, seasonal)
    ]  # fmt: skip
    torch.testing.assert_close(draws[0], draws[1])


def test_a_denoiser_that_predicts_no_change_forecasts_the_seasonal_naive_path():
    # x0-prediction of 0 means "no residual": DDIM then lands on 0 exactly, so each drawn
    # step is its value one season earlier, over a horizon longer than the season (30 > 24)
    # where the later steps repeat drawn ones.
    net = model("seasonal", prediction="x0", horizon=30)
    net.denoiser.forward = lambda x, t, cond: torch.zeros_like(x)
    values = daily_profiles(12)
    past, past_feat, _, future_feat = batch(net, values)
    paths = net.forecast(past, None, past_feat, future_feat, num_samples=3, sampler="ddim", steps=4)
    last_day = past[0, -24:]  # (24, D)
    naive = torch.stack([last_day[h % 24] for h in range(30)])  # (30, D)
    torch.testing.assert_close(paths[0], naive.expand(3, 30, 2), rtol=1e-5, atol=1e-4)
    # a missing value a season back: that step starts from the value just before it instead
    past[0, -24 + 3, 0] = float("nan")
    paths = net.forecast(past, None, past_feat, future_feat, num_samples=2, sampler="ddim", steps=4)
    naive[3, 0] = naive[2, 0]  # step 2's draw
    naive[27, 0] = naive[3, 0]  # a season after step 3
    torch.testing.assert_close(paths[0], naive.expand(2, 30, 2), rtol=1e-5, atol=1e-4)


def test_the_seasonal_target_of_a_periodic_series_is_zero_and_its_loss_reads_it():
    values = np.tile(daily_profiles(1), (10, 1))  # exactly periodic
    net = model("seasonal")
    past, past_feat, future, _ = batch(net, values)
    c = net.config
    _, scale, scaled, _ = net._prepare(past, None, past_feat)
    seq = torch.cat([scaled, future / scale], dim=1)  # (1, Tp + Th, D)
    obs = torch.ones_like(seq, dtype=torch.bool)
    x0, mask = net._diffused(seq, obs, c.context_length + c.prediction_length, 1.0)
    assert mask.all() and x0.abs().max() < 1e-5


SIGMA_MIN = 0.01  # the reference schedule's noise at its first step


def test_auto_takes_differences_only_where_the_level_moves_less_than_the_smallest_noise():
    rng = np.random.default_rng(0)
    T, Th = 24 * 40, 24
    cases = [  # the scaled one-step change: about 0.8 / 100 for the walk, 1.1 / 10 for noise
        ("difference", 100 + np.cumsum(rng.normal(size=(T, 2)), axis=0)),  # a random walk
        ("level", 10 + rng.normal(size=(T, 2))),  # noise around a constant
        ("level", daily_profiles(40)),  # a season: the level target (seasonal is not a choice)
    ]
    for expected, values in cases:
        split = rolling_windows(hourly(values), Th, 2, validation_windows=2)
        target, numbers = choose_target(split, Th, SIGMA_MIN)
        assert target == expected, numbers
        assert numbers["floor"] == pytest.approx(3 * SIGMA_MIN)


def test_the_spread_is_the_scaled_mean_absolute_change_of_the_context():
    values = np.tile([[10.0, 100.0], [11.0, 100.5]], (48, 1))  # steps of 1 and 0.5
    split = rolling_windows(hourly(values), 6, 2, validation_windows=1)
    spreads = [1 / 10.5, 0.5 / 100.25]  # mean |change| over mean |value|, per series
    assert level_spread(split, 7) == pytest.approx(np.median(spreads))  # 8 values, 4 of each
    assert choose_target(split, 7, 0.01)[0] == "level"  # 0.0501 >= 3 x 0.01
    assert choose_target(split, 7, 0.02)[0] == "difference"  # 0.0501 < 3 x 0.02
    assert smallest_noise({"name": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.1}) == (
        pytest.approx(0.01)
    )


def test_choice_never_reads_the_test_windows():
    rng = np.random.default_rng(0)
    values = 100 + np.cumsum(rng.normal(size=(24 * 40, 2)), axis=0)
    split = rolling_windows(hourly(values), 24, 2, validation_windows=2)
    broken = values.copy()
    broken[-48:] = rng.normal(size=(48, 2)) * 1e6  # only the test windows
    other = rolling_windows(hourly(broken), 24, 2, validation_windows=2)
    assert choose_target(split, 24, SIGMA_MIN) == choose_target(other, 24, SIGMA_MIN)
    # without validation windows the end of the training range stands in for them
    alone = rolling_windows(hourly(values), 24, 2)
    assert choose_target(alone, 24, SIGMA_MIN)[0] == "difference"


def test_a_network_needs_a_resolved_target():
    with pytest.raises(ConfigError, match="target 'auto' is chosen from the data"):
        TimeGradModel(TimeGradConfig(2, 6, freq="h", target="auto"))
    with pytest.raises(ConfigError, match="season must be at least 1"):
        TimeGradConfig(2, 6, freq="h", target="seasonal", season=0)
    with pytest.raises(ConfigError, match="target"):
        TimeGradConfig(2, 6, freq="h", target="weekly")


def test_train_with_target_auto_records_its_choice_and_forecasts(tmp_path, capsys):
    walk = 100 + np.cumsum(np.random.default_rng(0).normal(size=(24 * 30, 2)), axis=0)
    data = write_wide_csv(tmp_path / "walk.csv", walk, freq="h")
    out = tmp_path / "run"
    args = ["train", "--domain", "timeseries", "--data", data, "--out", out, *TINY]
    code, text, err = run(capsys, *args, "--target", "auto", "--test-windows", "2")
    assert code == 0, err
    assert "target: difference, since the scaled level's typical one-step change" in text
    saved = json.loads(next((out / "checkpoints").glob("step-*/config.json")).read_text())
    assert saved["model"]["network"]["target"] == "difference"
    assert saved["settings"]["target_choice"]["target"] == "difference"
    f = tmp_path / "f.csv"
    code, _, err = run(capsys, "forecast", "--checkpoint", out, "--out", f, "--num-samples", "4",
                       "--sampler", "dpmpp_2m", "--steps", "3")  # fmt: skip
    assert code == 0, err and len(pd.read_csv(f)) == 2 * 6


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--target", "seasonal", "--season", "0"], "season must be at least 1"),
        (["--target", "weekly"], "target"),
        (["--target", "seasonal", "--season", "5000"], "season of 5000 steps"),
    ],
)
def test_bad_target_flags_are_one_error_line(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--domain", "timeseries", "--out", out, *TINY, *flags)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "checkpoints").exists()


@pytest.mark.slow  # two 150-step trainings: 118 s of wall time on the shared CPU
def test_the_seasonal_target_beats_the_level_on_a_drifting_daily_profile(tmp_path):
    """Trained briefly each: the seasonal residual is the easier thing to learn."""
    from diffkit.config import merge
    from diffkit.domains.timeseries.domain import forecast_paths
    from diffkit.domains.timeseries.evaluate import evaluate
    from diffkit.inference import load_model
    from diffkit.registry import get_domain
    from diffkit.runner import fit, resolve_config

    domain = get_domain("timeseries")
    data = write_wide_csv(tmp_path / "days.csv", daily_profiles(60, noise=0.2), freq="h")
    scores = {}
    for target in ("level", "seasonal"):
        model = {
            "target": target,
            "architecture": "timegrad",
            "prediction_length": 24,
            "test_windows": 2,
        }
        model |= {"num_cells": 16, "num_layers": 1, "cond_dim": 16}
        train = {"max_steps": 150, "batch_size": 32, "checkpoint_every": 50, "lr": 3e-3}
        sections = {"model": model, "train": train, "diffusion": {"T": 20}}
        run_config = resolve_config(domain, merge(sections), str(data))
        fit(domain, run_config, out=tmp_path / target, quiet=True)
        _, net, _, _ = load_model(tmp_path / target, which="best")
        split = domain.load_data(run_config.model, data).train.split.validation_split()
        samples, _ = forecast_paths(
            net, list(split.histories), num_samples=50, sampler="dpmpp_2m", steps=5,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        scores[target] = evaluate(list(samples.double().numpy()), split.targets).crps
    assert scores["seasonal"] < 0.7 * scores["level"], scores
