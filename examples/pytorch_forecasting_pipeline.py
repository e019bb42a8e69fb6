"""TimeGrad in a pytorch-forecasting pipeline: train on Exchange, forecast, evaluate, plot.

    python examples/pytorch_forecasting_pipeline.py [DATA_DIR] [--epochs 5] [--out pf_forecast.png]

DATA_DIR holds ``exchange_rate/exchange_rate.txt.gz`` (default ``../shared/data``). The 8
exchange rates are the 8 targets of one group of a wide ``TimeSeriesDataSet``; the model
trains with ``lightning.Trainer.fit`` and predicts the 5 test windows of 30 business days
of GluonTS's ``exchange_rate_nips``. pytorch-forecasting's ``QuantileLoss`` and ``MAE``
score them, and diffkit's ``evaluate`` gives the CRPS and CRPS-sum GluonTS reports. The
defaults (TimeGrad's reference network, 5 epochs of 50 batches, DDPM over all 100
steps) take about two minutes on one CPU thread.
"""

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from pipeline_common import arguments, plot_window
from pytorch_forecasting.metrics import MAE, QuantileLoss

from diffkit.domains.timeseries import TimeGradForecaster, evaluate, exchange_rate_nips
from diffkit.domains.timeseries.forecasting_data import forecasting_datasets

QUIET = {"logger": False, "accelerator": "cpu", "enable_model_summary": False}


def main() -> None:
    args = arguments(__doc__, "pf_forecast.png")
    torch.set_num_threads(1)  # small recurrent model: one thread is fastest on CPU
    pl.seed_everything(args.seed, verbose=False)
    warnings.filterwarnings("ignore", ".*is an instance of `nn.Module`")  # BaseModel's hparams

    split = exchange_rate_nips(args.data)
    horizon = split.prediction_length
    training, test = forecasting_datasets(split, encoder_length=horizon + 2)  # + lags (1, 2)
    model = TimeGradForecaster.from_dataset(
        training,
        freq=split.train.freq,
        start=split.train.index[0],
        num_samples=100,
        sampler=args.sampler,
        steps=args.steps,
        learning_rate=1e-3,
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        limit_train_batches=args.batches,
        gradient_clip_val=10.0,
        enable_checkpointing=False,
        **QUIET,
    )
    trainer.fit(model, training.to_dataloader(train=True, batch_size=64))

    loader = test.to_dataloader(train=False, batch_size=8)
    generator = torch.Generator().manual_seed(args.seed)
    raw = model.predict(
        loader, mode="raw", return_y=True, generator=generator, trainer_kwargs=dict(QUIET)
    )
    samples = raw.output["samples"]  # (windows, S, Th, D), original scale
    actual = torch.stack(raw.y[0], dim=-1)  # (windows, Th, D)
    quantiles = model.to_quantiles(raw.output)  # D x (windows, Th, Q)
    means = model.to_prediction(raw.output)  # D x (windows, Th)
    quantile_loss = QuantileLoss(quantiles=list(model.hparams.quantiles))
    print(f"QuantileLoss {per_target(quantile_loss, quantiles, raw.y[0]):.4f}")
    print(f"MAE          {per_target(MAE(), means, raw.y[0]):.4f}")
    metrics = evaluate(list(samples.numpy()), list(actual.numpy()))
    print(f"CRPS         {metrics.crps:.4f}   CRPS-sum {metrics.crps_sum:.4f}")
    plot_window(samples[-1].numpy(), split.tests[-1].values, args.out)
    print(f"plot: {args.out}")


def per_target(metric, predictions, targets) -> float:
    """A pytorch-forecasting metric averaged over the targets (one tensor per target)."""
    pairs = zip(predictions, targets, strict=True)
    return float(np.mean([metric(p, y).item() for p, y in pairs]))


if __name__ == "__main__":
    main()
