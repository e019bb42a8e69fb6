"""The whole-horizon network (``architecture="horizon"``): its standardisation, what it reads
and never reads, inpainting, training, the CLI round trip, and its bad inputs."""

import numpy as np
import pytest
import torch

from diffkit import ConfigError, ShapeError
from diffkit.checkpoint import load_checkpoint
from diffkit.domains.timeseries import (
    TimeGradConfig,
    TimeGradModel,
    evaluate,
    seasonal_var,
    synthetic,
)
from diffkit.domains.timeseries.horizon import HorizonModel, context_standardisation
from diffkit.domains.timeseries.networks import build_model
from diffkit.inference import load_model

from .glue import TINY_HORIZON
from .test_domain import TINY as TIMEGRAD
from .test_domain import run
from .test_impute import holey
from .test_module import windows

CLI_TINY = [
    "--architecture", "horizon", "--transformer-width", "16", "--transformer-depth", "1",
    "--transformer-heads", "2", "--synthetic-length", "200", "--prediction-length", "6",
    "--context-length", "12", "--num-samples", "20", "--eval-sampler", "dpmpp_2m",
    "--eval-steps", "5", "--set", "diffusion.T=20", "--set", "train.warmup_steps=2",
    "--set", "train.checkpoint_every=3", "--max-steps", "6", "--batch-size", "16", "--quiet",
]  # fmt: skip


def make(D=3, context=12, horizon=5) -> HorizonModel:
    config = TimeGradConfig(
        target_dim=D, prediction_length=horizon, context_length=context, freq="h", **TINY_HORIZON
    )
    torch.manual_seed(0)
    return build_model(config).eval()


def batch(net, B=4, seed=0, level=10.0):
    """Random past (B, Tp, D), future (B, Th, D) and time features around ``level``."""
    c, g = net.config, torch.Generator().manual_seed(seed)
    past = level + torch.randn(B, c.history_length, c.target_dim, generator=g)
    future = level + torch.randn(B, c.prediction_length, c.target_dim, generator=g)
    feats = torch.randn(B, c.history_length + c.prediction_length, c.num_time_features, generator=g)
    return past, future, feats[:, : c.history_length], feats[:, c.history_length :]


def draw(net, past, pf, ff, observed=None, **kw):
    g = torch.Generator().manual_seed(3)
    options = {"num_samples": 6, "sampler": "dpmpp_2m", "steps": 4, **kw}
    return net.forecast(past, observed, pf, ff, generator=g, **options)


def loss(net, past, future, pf, ff, past_observed=None, future_observed=None):
    g = torch.Generator().manual_seed(5)
    return net.loss(past, past_observed, future, future_observed, pf, ff, generator=g,
                    reduction="none")  # fmt: skip


def test_the_context_is_standardised_over_its_observed_values_with_a_floor():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (2, 30, 4))
    x[0, :10, 1] = np.nan
    x[1, :, 2] = 5.0  # flat: the floor, 3% of its level (RELATIVE_FLOOR)
    t = torch.tensor(x)
    loc, scale = context_standardisation(t, torch.isfinite(t), 1e-5)
    np.testing.assert_allclose(loc[:, 0].numpy(), np.nanmean(x, axis=1), rtol=1e-12)
    std = np.nanstd(x, axis=1, ddof=1)
    std[1, 2] = 5.0 * 3e-2
    np.testing.assert_allclose(scale[:, 0].numpy(), std, rtol=1e-12)


def test_the_last_centre_is_each_series_last_observed_value_and_the_floor_is_a_setting():
    x = torch.tensor([[[1.0, 4.0, 7.0], [2.0, 5.0, 7.0], [3.0, float("nan"), 7.0]]])  # (1, 3, 3)
    observed = torch.isfinite(x)
    observed[0, :, 2] = False  # nothing observed: centre 0
    loc, scale = context_standardisation(x, observed, 1e-5, centre="last")
    torch.testing.assert_close(loc[0, 0], torch.tensor([3.0, 5.0, 0.0]))
    _, mean_scale = context_standardisation(x, observed, 1e-5)
    torch.testing.assert_close(scale, mean_scale)  # the same deviation, about the mean
    flat = torch.full((1, 10, 1), 200.0)
    for floor in (1e-3, 1e-2):
        _, s = context_standardisation(flat, torch.ones_like(flat, dtype=torch.bool), 1e-5, floor)
        torch.testing.assert_close(s, torch.full((1, 1, 1), 200.0 * floor))


def test_a_last_centred_forecast_departs_from_the_last_value():
    """Centred at the last value: the context's last token reads 0, the centre is that
    value, and the paths move with an affine change of the data like the mean-centred ones'."""
    config = TimeGradConfig(
        target_dim=3, prediction_length=5, context_length=12, freq="h", horizon_centre="last",
        **TINY_HORIZON,
    )  # fmt: skip
    torch.manual_seed(0)
    net = HorizonModel(config).eval()
    past, _, pf, ff = batch(net)
    paths = draw(net, past, pf, ff)
    torch.testing.assert_close(draw(net, 3 * past + 7, pf, ff), 3 * paths + 7, rtol=1e-4, atol=1e-3)
    z, _, loc, _, _ = net._prepare(past, None, pf, ff, None)
    torch.testing.assert_close(loc[:, 0], past[:, -1])
    assert torch.allclose(z[:, -1], torch.zeros_like(z[:, -1]))


def test_forecasts_move_with_an_affine_change_of_the_data_and_losses_do_not():
    net = make()
    past, future, pf, ff = batch(net)
    a, b = 250.0, -40.0
    paths = draw(net, past, pf, ff)  # (B, S, Th, D)
    assert paths.shape == (4, 6, 5, 3) and torch.isfinite(paths).all()
    torch.testing.assert_close(draw(net, a * past + b, pf, ff), a * paths + b, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(
        loss(net, a * past + b, a * future + b, pf, ff), loss(net, past, future, pf, ff),
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip


def test_values_marked_missing_are_never_read():
    net = make()
    past, future, pf, ff = batch(net)
    holes = torch.zeros_like(past, dtype=torch.bool)
    holes[0, 2:6, 1] = holes[2, -1] = True
    with_nan = past.masked_fill(holes, float("nan"))
    with_junk = past.masked_fill(holes, 1e6)
    torch.testing.assert_close(draw(net, with_nan, pf, ff), draw(net, with_junk, pf, ff, ~holes))
    fut_holes = torch.zeros_like(future, dtype=torch.bool)
    fut_holes[1, :3] = True
    nan_loss = loss(net, past, future.masked_fill(fut_holes, float("nan")), pf, ff)
    junk_loss = loss(net, past, future.masked_fill(fut_holes, 1e6), pf, ff, None, ~fut_holes)
    assert torch.isfinite(nan_loss).all()
    torch.testing.assert_close(nan_loss, junk_loss)
    # ...while an observed value is read: the forecast changes with it
    moved = past.clone()
    moved[0, -1, 0] += 5.0
    assert not torch.allclose(draw(net, moved, pf, ff)[0], draw(net, past, pf, ff)[0])


def test_known_horizon_values_are_kept_and_the_rest_drawn_around_them():
    net = make()
    past, future, pf, ff = batch(net)
    known = torch.full_like(future, float("nan"))
    known[:, :2, 0] = future[:, :2, 0]
    paths = draw(net, past, pf, ff, sampler="ddpm", steps=None, future_known=known)
    torch.testing.assert_close(paths[:, :, :2, 0], future[:, None, :2, 0].expand(-1, 6, -1))
    assert paths[:, :, 2:].std(dim=1).min() > 0  # the others still vary between paths


def test_training_the_horizon_network_lowers_its_forecast_crps():
    series = synthetic(600, seasonal_var(3, period=7, seed=2), freq="h")
    net = make(context=14, horizon=7).train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    test = [500, 520, 540, 560]

    def crps() -> float:
        past, future, pf, ff = windows(series, net.config, test)
        paths = draw(net.eval(), past, pf, ff, num_samples=50)
        return evaluate(list(paths.double().numpy()), list(future.double().numpy())).crps

    before = crps()
    net.train()
    for _ in range(150):
        starts = torch.randint(0, 480, (32,), generator=g).tolist()
        past, future, pf, ff = windows(series, net.config, starts)
        value = net.loss(past, None, future, None, pf, ff, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
    # measured (CRPS of 50 paths, 4 windows): 0.207 untrained, 0.053 after 150 steps
    assert crps() < 0.5 * before


def test_bad_settings_and_inputs_are_one_clear_error():
    with pytest.raises(ConfigError, match="standardised level, not the difference"):
        TimeGradConfig(target_dim=2, freq="h", architecture="horizon", target="difference")
    with pytest.raises(ConfigError, match="multiple of transformer_heads 4"):
        TimeGradConfig(target_dim=2, freq="h", architecture="horizon", transformer_width=18)
    with pytest.raises(ConfigError, match="architecture"):
        TimeGradConfig(target_dim=2, freq="h", architecture="csdi")
    with pytest.raises(ConfigError, match="horizon centre"):
        TimeGradConfig(target_dim=2, freq="h", architecture="horizon", horizon_centre="median")
    for floor in (-1e-3, float("nan")):
        with pytest.raises(ConfigError, match="relative_floor must be at least 0"):
            TimeGradConfig(target_dim=2, freq="h", architecture="horizon", relative_floor=floor)
    config = TimeGradConfig(2, 6, context_length=20, freq="h", architecture="horizon")
    assert config.target == "level" and config.history_length == 20  # no lags, nothing to choose
    net = make()
    past, _, pf, ff = batch(net)
    with pytest.raises(ShapeError, match="draws 5 steps at once but 3 were asked"):
        draw(net, past, pf, ff[:, :3])
    with pytest.raises(ShapeError, match="past target has 8 steps but 12 are needed"):
        draw(net, past[:, -8:], pf[:, -8:], ff)


def test_the_cli_trains_forecasts_and_evaluates_the_horizon_network(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--domain", "timeseries", "--out", out, *CLI_TINY)
    assert code == 0, err
    _, net, _, _ = load_model(out)
    assert isinstance(net, HorizonModel) and net.config.history_length == 12
    forecasts = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for path in forecasts:
        code, _, err = run(capsys, "forecast", "--checkpoint", out, "--out", path, "--seed", "1")
        assert code == 0, err
    assert forecasts[0].read_text() == forecasts[1].read_text()
    code, text, err = run(capsys, "evaluate", "--checkpoint", out)
    assert code == 0 and "crps_sum" in text, err
    holes = tmp_path / "holes.csv"
    hide = np.zeros((200, 8), dtype=bool)
    hide[50, 1] = True
    holey(holes, hide)
    args = ["impute", "--checkpoint", out, "--data", holes, "--out", tmp_path / "f.csv"]
    code, _, err = run(capsys, *args)
    assert code == 2 and "--architecture timegrad" in err and err.count("\n") == 1, err
    assert not (tmp_path / "f.csv").exists()
    bad = ["train", "--domain", "timeseries", "--out", tmp_path / "bad", *CLI_TINY]
    code, _, err = run(capsys, *bad, "--target", "seasonal")
    assert code == 2 and "not the seasonal target" in err and err.count("\n") == 1, err


def test_a_resumed_timegrad_run_stays_timegrad_under_the_horizon_default(tmp_path, capsys):
    out = tmp_path / "timegrad"
    code, _, err = run(capsys, "train", "--domain", "timeseries", "--out", out, *TIMEGRAD)
    assert code == 0, err
    resume = ["--resume", "--max-steps", "9", "--quiet"]
    code, _, err = run(capsys, "train", "--domain", "timeseries", "--out", out, *resume)
    assert code == 0, err
    _, net, schedule, _ = load_model(out)
    assert isinstance(net, TimeGradModel) and load_checkpoint(out).step == 9
    assert schedule.config()["name"] == "linear" and net.config.target == "level"
