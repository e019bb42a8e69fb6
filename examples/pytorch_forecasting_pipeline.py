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

import argparse
import warnings
from pathlib import Path

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")  # write files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import torch
from pytorch_forecasting import TimeSeriesDataSet
from pytorch_forecasting.metrics import MAE, QuantileLoss

from diffkit.domains.timeseries import TimeGradForecaster, evaluate, exchange_rate_nips
from diffkit.domains.timeseries.forecasting import wide_frame

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUIET = {"logger": False, "accelerator": "cpu", "enable_model_summary": False}


def datasets(split, context: int) -> tuple[TimeSeriesDataSet, TimeSeriesDataSet]:
    """Training windows before the test range and the split's 5 test windows."""
    full = split.tests[-1]
    frame = wide_frame(full)
    names = list(full.names)
    cut, horizon = split.train.length, split.prediction_length
    training = TimeSeriesDataSet(
        frame[frame.time_idx < cut],
        time_idx="time_idx",
        target=names,
        group_ids=["group"],
        min_encoder_length=context,
        max_encoder_length=context,
        min_prediction_length=horizon,
        max_prediction_length=horizon,
        time_varying_unknown_reals=names,
    )
    # Every window predicting from the cut on, kept at GluonTS's rolling test dates.
    test = TimeSeriesDataSet.from_dataset(
        training, frame, min_prediction_idx=cut, stop_randomization=True
    ).filter(lambda index: (index.time_idx_first_prediction - cut) % horizon == 0)
    return training, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50, help="batches per epoch")
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--steps", type=int, default=None, help="model calls per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("pf_forecast.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # small recurrent model: one thread is fastest on CPU
    pl.seed_everything(args.seed, verbose=False)
    warnings.filterwarnings("ignore", ".*is an instance of `nn.Module`")  # BaseModel's hparams

    split = exchange_rate_nips(args.data)
    horizon = split.prediction_length
    training, test = datasets(split, context=horizon + 2)  # context + largest lag (2)
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
        max_epochs=args.epochs, limit_train_batches=args.batches, gradient_clip_val=10.0,
        enable_checkpointing=False, **QUIET,
    )  # fmt: skip
    trainer.fit(model, training.to_dataloader(train=True, batch_size=64))

    loader = test.to_dataloader(train=False, batch_size=8)
    generator = torch.Generator().manual_seed(args.seed)
    raw = model.predict(loader, mode="raw", return_y=True, generator=generator,
                        trainer_kwargs=dict(QUIET))  # fmt: skip
    samples = raw.output["samples"]  # (windows, S, Th, D), original scale
    actual = torch.stack(raw.y[0], dim=-1)  # (windows, Th, D)
    quantiles = model.to_quantiles(raw.output)  # D x (windows, Th, Q)
    means = model.to_prediction(raw.output)  # D x (windows, Th)
    quantile_loss = QuantileLoss(quantiles=list(model.hparams.quantiles))
    print(f"QuantileLoss {per_target(quantile_loss, quantiles, raw.y[0]):.4f}")
    print(f"MAE          {per_target(MAE(), means, raw.y[0]):.4f}")
    metrics = evaluate(list(samples.numpy()), list(actual.numpy()))
    print(f"CRPS         {metrics.crps:.4f}   CRPS-sum {metrics.crps_sum:.4f}")
    plot(samples[-1].numpy(), split.tests[-1].values, args.out)
    print(f"plot: {args.out}")


def per_target(metric, predictions, targets) -> float:
    """A pytorch-forecasting metric averaged over the targets (one tensor per target)."""
    pairs = zip(predictions, targets, strict=True)
    return float(np.mean([metric(p, y).item() for p, y in pairs]))


def plot(samples: np.ndarray, values: np.ndarray, path: Path, history: int = 60) -> None:
    """The last test window of the first four series: history, median, 5-95% band."""
    horizon = samples.shape[1]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    steps = np.arange(-history, horizon)
    low, mid, high = np.quantile(samples, [0.05, 0.5, 0.95], axis=0)  # (Th, D)
    for d, ax in enumerate(axes.flat):
        ax.plot(steps, values[-history - horizon :, d], color="black", lw=1)
        ax.plot(steps[history:], mid[:, d], color="tab:blue", label="median")
        ax.fill_between(steps[history:], low[:, d], high[:, d], alpha=0.3, label="5-95%")
        ax.set_title(f"series {d}")
    axes.flat[0].legend()
    fig.supxlabel("business days from the forecast start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
