"""TimeGrad as a pytorch-forecasting model: from_dataset, Trainer.fit, predict, its metrics."""

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_forecasting")

import lightning.pytorch as pl
from pytorch_forecasting.metrics import QuantileLoss

from diffkit import ConfigError, DataError, ShapeError
from diffkit.domains.timeseries import TimeGradForecaster
from diffkit.domains.timeseries.forecasting_data import forecasting_datasets
from diffkit.domains.timeseries.horizon import HorizonModel

from .glue import CONTEXT, HORIZON, QUIET, TINY, TINY_HORIZON, WINDOWS, exchange_slice, scaled

SAMPLES = 16
HISTORY = CONTEXT + 2  # business-day lags (1, 2)


@pytest.fixture
def exchange(exchange_file):
    """Training dataset (8 targets, one group) and the 3 held-out windows of the slice."""
    split = exchange_slice(exchange_file)
    return (split, *forecasting_datasets(split, encoder_length=HISTORY))


def fit(training, start, batches: int, seed: int = 0, **overrides) -> TimeGradForecaster:
    torch.manual_seed(seed)
    settings = {"model_options": TINY, "num_samples": SAMPLES, "learning_rate": 3e-3}
    model = TimeGradForecaster.from_dataset(
        training, freq="B", start=start, **{**settings, **overrides}
    )
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=batches, enable_checkpointing=False, **QUIET
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notices about workers and logging
        trainer.fit(model, training.to_dataloader(train=True, batch_size=16))
    return model


def predict(model, data, mode: str, batch_size: int = 8, **kwargs):
    generator = torch.Generator().manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = data.to_dataloader(train=False, batch_size=batch_size)
        quiet = {"logger": False, "accelerator": "cpu"}  # no lightning_logs/ in the cwd
        return model.predict(loader, mode=mode, generator=generator, trainer_kwargs=quiet, **kwargs)


def quantile_loss(model, data) -> float:
    """pytorch-forecasting's QuantileLoss over the held-out windows, averaged over targets."""
    out = predict(model, data, "quantiles", return_y=True)
    metric = QuantileLoss(quantiles=list(model.hparams.quantiles))
    losses = [metric(q, y).item() for q, y in zip(out.output, out.y[0], strict=True)]
    return float(np.mean(losses))


def test_train_predict_quantiles_and_samples(exchange):
    split, training, held_out = exchange
    model = fit(training, split.train.index[0], batches=3)
    assert len(held_out) == WINDOWS
    quantiles = predict(model, held_out, "quantiles")
    assert len(quantiles) == 8
    assert all(q.shape == (WINDOWS, HORIZON, 7) for q in quantiles)
    raw = predict(model, held_out, "raw")
    samples = raw["samples"].numpy()  # (B, S, Th, D)
    assert samples.shape == (WINDOWS, SAMPLES, HORIZON, 8)
    assert raw["prediction"][0].shape == (WINDOWS, HORIZON, SAMPLES)
    assert np.isfinite(samples).all()
    # Original scale: the network mean-scales its inputs itself, so the same windows 1000x
    # larger give the same paths 1000x larger (the dataset's normaliser plays no part).
    _, big = forecasting_datasets(scaled(split, 1000.0), encoder_length=HISTORY)
    big_samples = predict(model, big, "raw")["samples"].numpy()
    np.testing.assert_allclose(big_samples, 1000.0 * samples, rtol=1e-3, atol=1e-3)
    # mode="quantiles" gives the samples' order statistics, as GluonTS's SampleForecast.
    median_row = int(np.round((SAMPLES - 1) * 0.5))
    ordered = np.sort(samples[..., 0], axis=1)  # (B, S, Th)
    np.testing.assert_allclose(quantiles[0][:, :, 3].numpy(), ordered[:, median_row])
    means = predict(model, held_out, "prediction")
    np.testing.assert_allclose(means[4].numpy(), samples[..., 4].mean(axis=1), rtol=1e-5)


def test_longer_training_lowers_quantile_loss(exchange):
    split, training, held_out = exchange
    short = quantile_loss(fit(training, split.train.index[0], batches=2), held_out)
    long = quantile_loss(fit(training, split.train.index[0], batches=40), held_out)
    # Measured after 2 / 20 / 40 batches: 0.99 / 0.47 / 0.17 on Exchange, 14.6 / 6.9 / 2.5 on
    # the synthetic file (levels 5..15 instead of about 1).
    assert long < 0.5 * short


def test_bad_datasets_give_one_clear_error(exchange):
    split, training, _ = exchange
    start = split.train.index[0]
    with pytest.raises(ShapeError, match="8 target"):
        TimeGradForecaster.from_dataset(training, freq="B", start=start, target_dim=5)
    with pytest.raises(ConfigError, match="min_encoder_length"):
        TimeGradForecaster.from_dataset(training, freq="B", start=start, context_length=HISTORY)


def test_checkpoint_round_trip(exchange, tmp_path):
    split, training, held_out = exchange
    model = fit(training, split.train.index[0], batches=2)
    model.trainer.save_checkpoint(tmp_path / "model.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = TimeGradForecaster.load_from_checkpoint(tmp_path / "model.ckpt")
    first = predict(model, held_out, "raw")["samples"]
    again = predict(loaded, held_out, "raw")["samples"]
    torch.testing.assert_close(first, again, rtol=0, atol=0)


def test_long_layout_forecasts_as_the_wide_one(exchange_file):
    """D groups + the synchronized sampler: same network, same forecasts as D targets."""
    split = exchange_slice(exchange_file)
    wide_train, wide_test = forecasting_datasets(split, encoder_length=HISTORY)
    long_train, long_test = forecasting_datasets(split, HISTORY, layout="long")
    start = split.train.index[0]
    wide = fit(wide_train, start, batches=2)
    torch.manual_seed(0)
    long = TimeGradForecaster.from_dataset(
        long_train, freq="B", start=start, layout="long", model_options=TINY, num_samples=SAMPLES
    )
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, enable_checkpointing=False, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = long_train.to_dataloader(batch_size=8, batch_sampler="synchronized")
        trainer.fit(long, loader)  # trains on synchronized batches
    long.model.load_state_dict(wide.model.state_dict())
    generator = torch.Generator().manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = long_test.to_dataloader(train=False, batch_size=8, batch_sampler="synchronized")
        quiet = {"logger": False}
        out = long.predict(loader, "raw", return_x=True, generator=generator, trainer_kwargs=quiet)
    # One window per batch in both, so the generator draws the same noise for each.
    wide_samples = predict(wide, wide_test, "raw", batch_size=1)["samples"]  # (W, S, Th, D)
    rows = out.output["samples"][..., 0]  # (W*D, S, Th), rows in the loader's order
    window = (out.x["decoder_time_idx"][:, 0] - split.train.length) // HORIZON
    series = out.x["groups"][:, 0]  # encoded in sorted name order, as the wide columns
    torch.testing.assert_close(rows, wide_samples[window, :, :, series])


def test_long_layout_needs_synchronized_batches(exchange):
    split, wide_train, _ = exchange
    start = split.train.index[0]
    with pytest.raises(ConfigError, match="layout='long' needs one target"):
        TimeGradForecaster.from_dataset(wide_train, freq="B", start=start, layout="long")
    long_train, _ = forecasting_datasets(split, HISTORY, layout="long")
    model = TimeGradForecaster.from_dataset(
        long_train, freq="B", start=start, layout="long", model_options=TINY
    )
    x, y = next(iter(long_train.to_dataloader(train=False, batch_size=8)))  # one series only
    with pytest.raises(DataError, match="batch_sampler='synchronized'"):
        model.training_step((x, y), 0)


def test_the_horizon_network_reads_the_whole_encoder_and_round_trips(exchange, tmp_path):
    split, training, held_out = exchange
    model = fit(training, split.train.index[0], batches=3, model_options=TINY_HORIZON)
    assert isinstance(model.model, HorizonModel)
    assert model.model.config.context_length == HISTORY  # no lags: the encoder is the context
    samples = predict(model, held_out, "raw")["samples"]
    assert samples.shape == (WINDOWS, SAMPLES, HORIZON, 8) and torch.isfinite(samples).all()
    model.trainer.save_checkpoint(tmp_path / "model.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = TimeGradForecaster.load_from_checkpoint(tmp_path / "model.ckpt")
    torch.testing.assert_close(predict(loaded, held_out, "raw")["samples"], samples, rtol=0, atol=0)
