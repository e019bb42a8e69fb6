"""Cost at many series: the loss's position budget and the capped conditioning upsampler."""

import pytest
import torch

from diffkit import ConfigError
from diffkit.domains.timeseries import DenoiserConfig, TimeGradConfig, TimeGradModel

from .test_covariates import TINY


def batch(B, D, config):
    g = torch.Generator().manual_seed(0)
    Tp, Th = config.history_length, config.prediction_length
    return (
        torch.rand(B, Tp, D, generator=g) + 1, None, torch.rand(B, Th, D, generator=g) + 1, None,
        torch.zeros(B, Tp, 0), torch.zeros(B, Th, 0),
    )  # fmt: skip


def rows_seen(model, inputs, **kwargs):
    rows = []
    hook = model.denoiser.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    loss = model.loss(
        *inputs, reduction="none", generator=torch.Generator().manual_seed(1), **kwargs
    )
    hook.remove()
    return rows[0], loss


def test_many_series_read_a_budget_of_positions_and_say_so():
    B, D = 4, 50
    config = TimeGradConfig(D, 4, context_length=8, freq="YE", max_loss_values=1000, **TINY)
    model = TimeGradModel(config)
    torch.nn.init.normal_(model.denoiser.output_projection.weight)  # 0 at init: no gradient
    inputs = batch(B, D, config)
    with pytest.warns(
        UserWarning, match="50 series: each training window's loss reads 5 of its 12"
    ):
        rows, loss = rows_seen(model, inputs)
    assert rows == B * 5 and loss.shape == (B,) and torch.isfinite(loss).all()
    loss.mean().backward()  # the gradient reaches the RNN through the chosen positions
    assert model.rnn.weight_ih_l0.grad.abs().sum() > 0
    everything = TimeGradModel(
        TimeGradConfig(D, 4, context_length=8, freq="YE", max_loss_values=None, **TINY)
    )
    assert rows_seen(everything, inputs)[0] == B * 12  # context 8 + horizon 4, all of them


def test_the_default_budget_leaves_small_data_alone():
    config = TimeGradConfig(8, 24, freq="YE", **TINY)  # 64 windows x 48 positions x 8 series
    assert config.max_loss_values >= 64 * 48 * 8
    with pytest.raises(ConfigError, match="max_loss_values must be at least 1"):
        TimeGradConfig(8, 24, freq="YE", max_loss_values=0)


def test_the_conditioning_upsampler_is_capped_so_its_cost_is_linear_in_the_series():
    small = TimeGradModel(TimeGradConfig(200, 4, freq="YE", **TINY)).denoiser.cond_upsampler
    big = TimeGradModel(TimeGradConfig(2000, 4, freq="YE", **TINY)).denoiser.cond_upsampler
    assert small[0].out_features == 100  # D // 2 below the cap, as the reference
    assert big[0].out_features == 128 and big[2].weight.shape == (2000, 128)
    wide = DenoiserConfig(
        residual_layers=2, residual_channels=8, step_hidden_dim=16, max_cond_hidden=10**6
    )
    uncapped = TimeGradModel(TimeGradConfig(2000, 4, freq="YE", **{**TINY, "denoiser": wide}))
    assert uncapped.denoiser.cond_upsampler[0].out_features == 1000
