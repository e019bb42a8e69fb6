import dataclasses
import json

import numpy as np
import pytest
import torch

from diffkit import ConfigError, ShapeError
from diffkit.domains.timeseries import (
    DenoiserConfig,
    TimeGradConfig,
    TimeGradModel,
    seasonal_var,
    synthetic,
    time_features,
)

TINY = {
    "num_layers": 1,
    "num_cells": 8,
    "cond_dim": 8,
    "dropout": 0.0,
    "denoiser": DenoiserConfig(residual_layers=2, residual_channels=4, step_hidden_dim=16),
    "schedule": {"name": "linear", "T": 20, "beta_start": 1e-4, "beta_end": 0.3},
}


def windows(series, config, starts):
    """Batch tensors (past, future, past time features, future time features) at starts."""
    x = torch.tensor(series.values, dtype=torch.float32)
    feats = torch.tensor(time_features(series.index, config.freq))
    Tp, Th = config.history_length, config.prediction_length

    def cut(a, lo, n):
        return torch.stack([a[s + lo : s + lo + n] for s in starts])

    return cut(x, 0, Tp), cut(x, Tp, Th), cut(feats, 0, Tp), cut(feats, Tp, Th)


def make(D=3, **overrides):
    settings = {**TINY, **overrides}
    config = TimeGradConfig(
        target_dim=D, prediction_length=4, context_length=6, freq="D", **settings
    )
    torch.manual_seed(0)
    return TimeGradModel(config), config


def test_config_defaults_are_timegrads():
    config = TimeGradConfig(target_dim=8, prediction_length=30, freq="B")
    assert config.context_length == 30 and config.lags == (1, 2)
    assert (config.num_layers, config.num_cells, config.cell_type) == (2, 40, "gru")
    model = TimeGradModel(config)
    assert model.schedule.T == 100
    assert model.schedule.betas[-1].item() == pytest.approx(0.1)
    assert config.history_length == 32
    with pytest.raises(ConfigError, match="cell type"):
        TimeGradConfig(target_dim=2, prediction_length=3, cell_type="transformer")
    with pytest.raises(ConfigError, match="lags"):
        TimeGradConfig(target_dim=2, prediction_length=3, lags=(0, 1))


def test_config_survives_json():
    config = TimeGradConfig(target_dim=3, prediction_length=5, freq="h", **TINY)
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    assert TimeGradConfig(**data) == config
    assert config.lags == (1, 24, 168) and config.history_length == 5 + 168


@pytest.mark.parametrize(("D", "cell"), [(1, "gru"), (2, "lstm"), (5, "gru")])
def test_loss_and_forecast_shapes(D, cell):
    model, config = make(D, cell_type=cell)
    series = synthetic(80, seasonal_var(D, seed=1))
    past, future, ptf, ftf = windows(series, config, [0, 9])
    loss = model.loss(past, None, future, None, ptf, ftf)
    assert loss.shape == () and torch.isfinite(loss)
    out = model.eval().forecast(past, None, ptf, ftf, num_samples=3, steps=4)
    assert out.shape == (2, 3, config.prediction_length, D)


def test_missing_values_are_masked_out_of_the_loss():
    model, config = make(3)
    past, future, ptf, ftf = windows(synthetic(80, seasonal_var(3)), config, [0, 5, 11])
    holes_past = torch.rand(past.shape, generator=torch.Generator().manual_seed(1)) < 0.2
    holes_future = torch.zeros_like(future, dtype=torch.bool)
    holes_future[0, 1, 2] = holes_future[1, :, 0] = True

    def loss(p, f, p_obs=None, f_obs=None):
        g = torch.Generator().manual_seed(3)
        return model.loss(p, p_obs, f, f_obs, ptf, ftf, generator=g)

    with_nan = loss(
        past.masked_fill(holes_past, float("nan")), future.masked_fill(holes_future, float("nan"))
    )
    assert torch.isfinite(with_nan)
    # The same holes given only through the masks, filled with arbitrary values: same loss,
    # so neither a missing value nor a zero standing in for it reaches the loss or the RNN.
    with_junk = loss(
        past.masked_fill(holes_past, 123.0),
        future.masked_fill(holes_future, -7.0),
        ~holes_past,
        ~holes_future,
    )
    assert with_junk.item() == pytest.approx(with_nan.item(), rel=1e-6)
    # Filling the holes with zeros but calling them observed is a different model input.
    as_zeros = loss(past.masked_fill(holes_past, 0.0), future.masked_fill(holes_future, 0.0))
    assert as_zeros.item() != pytest.approx(with_nan.item(), rel=1e-4)


def test_mismatched_inputs_are_shape_errors():
    model, config = make(3)
    past, future, ptf, ftf = windows(synthetic(80, seasonal_var(3)), config, [0])
    with pytest.raises(ShapeError, match="3 series"):
        model.forecast(past[..., :2], None, ptf, ftf)
    with pytest.raises(ShapeError, match="longer past window"):
        model.forecast(past[:, -5:], None, ptf[:, -5:], ftf)
    with pytest.raises(ShapeError, match="time features"):
        model.loss(past, None, future, None, ptf[..., :1], ftf)


def test_forecast_draws_all_samples_in_one_batch():
    model, config = make(2)
    past, _, ptf, ftf = windows(synthetic(80, seasonal_var(2)), config, [0, 3])
    batches = []
    model.denoiser.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))

    def draw():
        g = torch.Generator().manual_seed(0)
        return model.eval().forecast(
            past, None, ptf, ftf, num_samples=5, sampler="ddim", steps=3, eta=1.0, generator=g
        )

    first = draw()
    assert batches == [2 * 5] * (config.prediction_length * 3)
    torch.testing.assert_close(draw(), first)  # same seed, same paths


def test_training_lowers_the_loss_and_forecasts_are_in_the_original_scale():
    model, config = make(4)
    series = synthetic(200, seasonal_var(4, seed=2), seed=2)
    past, future, ptf, ftf = windows(series, config, list(range(0, 150, 20)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)

    def mean_loss():
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            return np.mean(
                [
                    model.loss(past, None, future, None, ptf, ftf, generator=gen).item()
                    for _ in range(5)
                ]
            )

    before = mean_loss()
    for _ in range(50):
        loss = model.loss(past, None, future, None, ptf, ftf, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = mean_loss()
    assert after < 0.6 * before
    out = model.eval().forecast(
        past[:2], None, ptf[:2], ftf[:2], num_samples=8, generator=torch.Generator().manual_seed(0)
    )
    assert out.shape == (2, 8, 4, 4) and torch.isfinite(out).all()
    # Levels of the synthetic series are 5..15: the samples live there, not around 1.
    level = future[:2].abs().mean()
    assert 0.5 * level < out.abs().mean() < 1.5 * level


class ConstantX0(torch.nn.Module):
    """A denoiser that predicts x0 = c everywhere: every sampler then lands exactly on c."""

    def __init__(self, c: torch.Tensor):
        super().__init__()
        self.c = c

    def forward(self, x_t, t, cond):
        return self.c.expand_as(x_t)


@pytest.mark.parametrize("target", ["level", "difference"])
def test_forecast_paths_follow_the_target_from_the_last_observed_value(target):
    model, config = make(D=2, prediction="x0", target=target)
    model.denoiser = ConstantX0(torch.tensor([0.5, -1.0]))
    past, _, past_feat, future_feat = windows(synthetic(60, seasonal_var(dim=2)), config, [5, 20])
    past[0, -1, 1] = float("nan")  # the anchor of series 1 in example 0 is one step earlier
    with torch.no_grad():
        paths = model.eval().forecast(past, None, past_feat, future_feat, num_samples=3)
    ctx = past[:, -config.context_length :]
    scale = torch.nanmean(ctx.abs(), dim=1)  # (B, D) the mean scaling
    steps = torch.arange(1, 5, dtype=torch.float32)[:, None]  # (Th, 1)
    if target == "level":
        expected = torch.tensor([0.5, -1.0]) * scale[:, None]  # (B, 1, D) for every step
        expected = expected.expand(2, 4, 2)
    else:
        last = torch.stack([past[0, -1], past[1, -1]])  # (B, D)
        last[0, 1] = past[0, -2, 1]
        window = past[:, -config.context_length - 1 :]  # the context's changes, the first too
        change = (window[:, 1:] - window[:, :-1]).abs()
        step = torch.nanmean(change, dim=1)  # (B, D) mean |change| in original units
        expected = last[:, None] + steps * torch.tensor([0.5, -1.0]) * step[:, None]
    torch.testing.assert_close(paths, expected[:, None].expand(2, 3, 4, 2), rtol=1e-4, atol=1e-4)


def test_the_difference_target_trains_on_scaled_changes_and_masks_broken_pairs():
    model, config = make(D=2, target="difference")
    past, future, past_feat, future_feat = windows(
        synthetic(60, seasonal_var(dim=2)), config, [3, 9, 17]
    )
    future[1, 2, 0] = float("nan")  # breaks two changes: into and out of the gap
    loss = model.loss(past, None, future, None, past_feat, future_feat, reduction="none")
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    seq = torch.cat([past, future], dim=1)
    obs = torch.isfinite(seq)
    x0, mask = model._diffused(torch.nan_to_num(seq), obs, 10, torch.ones(3, 1, 2))
    assert mask.sum() == 3 * 10 * 2 - 2 and not mask[1, -2, 0] and not mask[1, -1, 0]
    torch.testing.assert_close(x0[0, -1], seq[0, -1] - seq[0, -2])
    with pytest.raises(ConfigError, match="target"):
        TimeGradConfig(target_dim=2, prediction_length=3, target="returns")
