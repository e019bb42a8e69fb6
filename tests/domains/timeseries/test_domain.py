"""The time-series domain through the CLI: train -> forecast -> evaluate, and bad inputs."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from diffkit.checkpoint import load_checkpoint
from diffkit.cli import main
from diffkit.config import build, merge
from diffkit.domains.timeseries.domain import TimeSeriesConfig, load_data
from diffkit.domains.timeseries.evaluate import evaluate as score
from diffkit.domains.timeseries.module import TimeGradConfig
from diffkit.domains.timeseries.series import rolling_windows
from diffkit.domains.timeseries.synthetic import seasonal_var, synthetic, true_predictive_samples
from diffkit.domains.timeseries.windows import WindowDataset, forecast_inputs
from diffkit.inference import load_model
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

TINY = [
    "--architecture", "timegrad",
    "--num-cells", "8", "--num-layers", "1", "--cond-dim", "8", "--residual-layers", "2",
    "--residual-channels", "4", "--synthetic-length", "200", "--prediction-length", "6",
    "--num-samples", "20", "--eval-sampler", "dpmpp_2m", "--eval-steps", "5",
    "--set", "diffusion.T=20", "--set", "train.warmup_steps=2", "--set", "train.checkpoint_every=3",
    "--max-steps", "6", "--batch-size", "16", "--quiet",
]  # fmt: skip


def run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ts") / "run"
    with pytest.raises(SystemExit) as info:
        main(["train", "--domain", "timeseries", "--out", str(out), *TINY])
    assert info.value.code == 0
    return out


def write_wide_csv(path, values, start="2021-01-01", freq="D"):
    index = pd.date_range(start, periods=len(values), freq=freq)
    frame = pd.DataFrame(values, index=index, columns=[f"c{d}" for d in range(values.shape[1])])
    frame.rename_axis("date").to_csv(path)
    return path


def test_train_fills_the_data_dependent_keys_and_uses_timegrads_diffusion(run_dir):
    saved = json.loads((run_dir / "config.json").read_text())
    network = saved["model"]["network"]  # the TimeGradConfig the run built, data keys filled
    assert network["target_dim"] == 8 and network["freq"] == "D"
    assert network["prediction_length"] == 6 and network["num_cells"] == 8
    assert "schedule" not in network and "prediction" not in network  # [diffusion]'s alone
    # the domain's defaults (TimeGrad: beta 1e-4..0.1, batches of 64) under the user's flags
    assert saved["diffusion"]["beta_end"] == 0.1 and saved["diffusion"]["T"] == 20
    assert saved["train"]["batch_size"] == 16 and load_checkpoint(run_dir).step == 6
    _, net, schedule, _ = load_model(run_dir)
    assert net.schedule.config() == schedule.config()  # the network owns the run's schedule


def test_forecast_writes_quantiles_per_series_and_step_and_a_fan_chart(run_dir, tmp_path, capsys):
    out = tmp_path / "f.csv"
    args = ["forecast", "--checkpoint", run_dir, "--out", out, "--num-samples", "30"]
    code, text, err = run(capsys, *args, "--sampler", "dpmpp_2m", "--steps", "5")
    assert code == 0, err
    assert f"saved {out}" in text and out.with_suffix(".png").stat().st_size > 1000
    frame = pd.read_csv(out, parse_dates=["timestamp"])
    assert len(frame) == 8 * 6 and list(frame["series"].unique()) == [f"s{d}" for d in range(8)]
    series = synthetic(200)
    first = series.index[-1] + pd.offsets.Day()
    assert (frame["timestamp"].iloc[:6] == pd.date_range(first, periods=6, freq="D")).all()
    q = frame[[c for c in frame.columns if c.startswith("q")]].to_numpy()
    assert q.shape[1] == 19 and (np.diff(q, axis=1) >= 0).all() and np.isfinite(q).all()


def test_forecast_raw_parquet_has_one_row_per_sample_and_is_reproducible(run_dir, tmp_path, capsys):
    outs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for out in outs:
        args = ["forecast", "--checkpoint", run_dir, "--out", out, "--num-samples", "7", "--raw"]
        assert run(capsys, *args, "--sampler", "ddim", "--steps", "4")[0] == 0
    a, b = (pd.read_parquet(p) for p in outs)
    assert list(a.columns) == ["series", "timestamp", "sample", "value"] and len(a) == 8 * 6 * 7
    pd.testing.assert_frame_equal(a, b)


def test_evaluate_reports_crps_sum_and_the_true_law_floor(run_dir, capsys):
    code, _, err = run(capsys, "evaluate", "--checkpoint", run_dir)
    assert code == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["windows"] == 1
    # The floor is the true law's score on the run's held-out window, recomputed here: the
    # last 6 steps of the 200-step default series, 20 paths drawn with seed 0.
    split = rolling_windows(synthetic(200), prediction_length=6, windows=1)
    truth = true_predictive_samples(seasonal_var(), split.histories[0].values, 6, 20, seed=0)
    floor = score([truth], split.targets).as_dict()
    for key in ("crps", "crps_sum", "energy_score", "nd", "nrmse", "mse"):
        assert metrics[f"{key}_true_law"] == pytest.approx(floor[key], rel=1e-9), key
        assert np.isfinite(metrics[key]) and metrics[key] != metrics[f"{key}_true_law"]


def test_sample_draws_paths_of_the_horizon(run_dir, tmp_path, capsys):
    out = tmp_path / "s.npy"
    args = ["sample", "--checkpoint", run_dir, "--n", 5, "--steps", 4, "--out", out]
    assert run(capsys, *args)[0] == 0
    assert np.load(out).shape == (5, 6, 8)


def test_windows_cover_every_training_position_with_nan_padded_lags():
    series = synthetic(60)
    net_config = TimeGradConfig(8, 5, context_length=4, freq="D")  # lags 1, 7, 14: 4 + 14 past
    data = WindowDataset(rolling_windows(series, 5, 2), net_config)
    assert len(data) == 50 - 4 - 5 + 1
    first, last = data[0], data[len(data) - 1]
    assert first["past_target"].shape == (18, 8) and torch.isnan(first["past_target"][:14]).all()
    values = torch.tensor(series.values, dtype=torch.float32)
    torch.testing.assert_close(first["past_target"][14:], values[:4])
    torch.testing.assert_close(first["future_target"], values[4:9])
    torch.testing.assert_close(last["future_target"], values[45:50])  # the training range's end


def test_forecast_inputs_take_the_last_history_steps_and_pad_short_histories():
    series = synthetic(40)
    config = TimeGradConfig(8, 3, freq="D")  # Tp 17
    past, _, future_feat, index = forecast_inputs([series, series.head(10)], config)
    assert past.shape == (2, 17, 8) and future_feat.shape == (2, 3, 2)
    torch.testing.assert_close(past[0], torch.tensor(series.values[-17:], dtype=torch.float32))
    assert torch.isnan(past[1, :7]).all() and not torch.isnan(past[1, 7:]).any()
    assert index[1][0] == series.index[10]


def test_the_domain_defaults_yield_to_user_settings():
    domain = get_domain("timeseries")
    run_config = resolve_config(domain, merge({"diffusion": {"T": 50}, "train": {"lr": 3e-4}}))
    assert run_config.diffusion.T == 50 and run_config.diffusion.beta_end == 0.1
    assert run_config.train.lr == 3e-4 and run_config.train.batch_size == 64
    assert resolve_config(get_domain("toy"), {}).diffusion.T == 1000


def test_the_horizon_network_brings_its_own_diffusion_under_the_users_keys():
    domain = get_domain("timeseries")
    horizon = resolve_config(domain, {"model": {"architecture": "horizon"}})
    d = horizon.diffusion
    assert (d.schedule, d.T, d.prediction) == ("cosine", 1000, "v")
    assert horizon.model.eval_steps == 100 and horizon.train.batch_size == 64
    mine = resolve_config(
        domain,
        {"model": {"architecture": "horizon", "eval_steps": 7}, "diffusion": {"T": 200}},
    )
    assert (mine.diffusion.T, mine.diffusion.schedule, mine.model.eval_steps) == (200, "cosine", 7)
    saved = {"model": {"network": {"architecture": "horizon"}}}  # a saved run's nested form
    assert resolve_config(domain, saved).diffusion.schedule == "cosine"
    timegrad = resolve_config(domain, {"model": {"architecture": "timegrad"}})
    assert (timegrad.diffusion.schedule, timegrad.diffusion.T) == ("linear", 100)
    assert timegrad.model.eval_steps is None


def test_missing_values_train_without_nan_and_count_nowhere(tmp_path):
    values = synthetic(120).values.copy()
    values[10:30, 2] = np.nan
    path = write_wide_csv(tmp_path / "gaps.csv", values)
    keys = {"prediction_length": 4, "num_cells": 8, "num_layers": 1, "cond_dim": 8}
    config = build(TimeSeriesConfig, keys, "model")
    data = load_data(config, path)
    net = get_domain("timeseries").build_network(data.config, None)
    batch = torch.utils.data.default_collate([data.train[i] for i in range(0, 40)])
    assert torch.isnan(batch["past_target"]).any()
    loss = get_domain("timeseries").loss(
        net, batch, None, prediction="eps", weighting="none", generator=torch.Generator()
    )
    assert loss.shape == (40,) and torch.isfinite(loss).all()


@pytest.mark.parametrize(
    ("values", "flags", "message"),
    [
        (np.ones((8, 3)), [], "8 time steps but context 168 \\+ horizon 24"),  # 7 horizons
        (np.ones((8, 3)), ["--architecture", "timegrad"], "8 time steps but context 24 \\+ "),
        (np.ones((200, 3)), [], "200 time steps but 1 test and 1 validation windows.*--test-"),
        (np.ones((100, 3)), ["--target-dim", "4"], "holds 3 series but the run's target_dim is 4"),
        (np.ones((100, 3)), ["--freq", "h"], "look like 'D'"),
        (np.ones((100, 3)), ["--lags", "0,1"], "lags must be positive"),
    ],
)
def test_bad_training_data_is_one_line(tmp_path, capsys, values, flags, message):
    path = write_wide_csv(tmp_path / "d.csv", values)
    args = ["train", "--domain", "timeseries", "--data", path, "--out", tmp_path / "r", *flags]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err), err


def test_forecast_errors_are_one_line(run_dir, tmp_path, capsys):
    narrow = write_wide_csv(tmp_path / "narrow.csv", np.ones((50, 3)))
    cases = [
        (["--data", narrow], "holds 3 series but the model was trained on 8"),
        (["--out", tmp_path / "f.xlsx"], "--out must end in .csv or .parquet"),
        (["--num-samples", "0"], "--num-samples must lie in"),
        (["--sampler", "nope"], "unknown sampler"),
    ]
    for extra, message in cases:
        code, _, err = run(capsys, "forecast", "--checkpoint", run_dir, "--steps", "2", *extra)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_forecast_on_a_domain_that_does_not_forecast_says_so(tmp_path, capsys):
    from tests.tiny import SETS

    out = tmp_path / "toy"
    assert run(capsys, "train", "--domain", "toy", "--out", out, "--max-steps", 2, *SETS)[0] == 0
    code, _, err = run(capsys, "forecast", "--checkpoint", out)
    assert code == 2 and "domain 'toy' does not forecast" in err


def test_series_must_match_the_models_frequency(run_dir, tmp_path, capsys):
    hourly = write_wide_csv(tmp_path / "h.csv", np.ones((60, 8)), freq="h")
    code, _, err = run(capsys, "forecast", "--checkpoint", run_dir, "--data", hourly)
    assert code == 2 and "frequency" in err and "'D'" in err, err


def test_train_and_forecast_an_lstnet_matrix_through_the_cli(exchange_file, tmp_path, capsys):
    """The README's Exchange commands, on the real file or a synthetic one in its layout."""
    out, table = tmp_path / "run", tmp_path / "f.csv"
    flags = [a for a in TINY if a not in ("--synthetic-length", "200")]
    args = ["--data", exchange_file, "--freq", "B", "--start", "1990-01-01", "--test-windows", 2]
    code, _, err = run(capsys, "train", "--domain", "timeseries", "--out", out, *args, *flags)
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())["model"]["network"]
    assert saved["freq"] == "B" and saved["target_dim"] == 8
    code, _, err = run(capsys, "forecast", "--checkpoint", out, "--out", table, "--steps", 2)
    assert code == 0, err
    frame = pd.read_csv(table, parse_dates=["timestamp"])
    rows = len(pd.read_csv(exchange_file, header=None))
    last = pd.bdate_range("1990-01-01", periods=rows)[-1]
    expected = pd.bdate_range(last + pd.offsets.BDay(), periods=6)
    assert (frame["timestamp"].iloc[:6] == expected).all() and frame["series"].nunique() == 8
