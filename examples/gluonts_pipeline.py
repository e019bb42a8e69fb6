"""TimeGrad in a GluonTS pipeline: train on Exchange, forecast, evaluate, plot.

    python examples/gluonts_pipeline.py [DATA_DIR] [--epochs 5] [--out gluonts_forecast.png]

DATA_DIR holds ``exchange_rate/exchange_rate.txt.gz`` (default ``../shared/data``). The
data are GluonTS's ``exchange_rate_nips`` (8 series, 5 rolling test windows of 30
business days), grouped with ``MultivariateGrouper`` and scored with
``MultivariateEvaluator`` as in GluonTS's multivariate tutorials. The defaults (TimeGrad's
reference network, 5 epochs of 50 batches, DDPM over all 100 steps) take about two
minutes on one CPU thread.
"""

import warnings

import numpy as np
import torch
from gluonts.dataset.multivariate_grouper import MultivariateGrouper
from gluonts.evaluation import MultivariateEvaluator, make_evaluation_predictions
from pipeline_common import arguments, plot_window

from diffkit.domains.timeseries import QUANTILES, TimeGradEstimator, exchange_rate_nips
from diffkit.domains.timeseries.gluonts_data import gluonts_datasets


def main() -> None:
    args = arguments(__doc__, "gluonts_forecast.png")
    torch.set_num_threads(1)  # small recurrent model: one thread is fastest on CPU
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # GluonTS's instance sampler draws from numpy's global state
    warnings.filterwarnings("ignore", category=FutureWarning)  # GluonTS's business-day Periods

    split = exchange_rate_nips(args.data)
    train, test = gluonts_datasets(split)
    dim = split.train.dim
    train = MultivariateGrouper(max_target_dim=dim)(train)
    test = MultivariateGrouper(max_target_dim=dim, num_test_dates=len(split.tests))(test)

    estimator = TimeGradEstimator(
        freq=split.train.freq,
        prediction_length=split.prediction_length,
        context_length=split.prediction_length,
        target_dim=dim,
        batch_size=64,
        num_batches_per_epoch=args.batches,
        num_parallel_samples=100,
        sampler=args.sampler,
        steps=args.steps,
        prediction_seed=args.seed,
        trainer_kwargs={
            "max_epochs": args.epochs,
            "logger": False,
            "accelerator": "cpu",
            "default_root_dir": "runs/gluonts_pipeline",
        },
    )
    predictor = estimator.train(train)

    forecast_it, series_it = make_evaluation_predictions(test, predictor, num_samples=100)
    forecasts, series = list(forecast_it), list(series_it)
    evaluator = MultivariateEvaluator(quantiles=QUANTILES, target_agg_funcs={"sum": np.sum})
    metrics, _ = evaluator(series, forecasts, num_series=len(test))
    print(f"CRPS      {metrics['mean_wQuantileLoss']:.4f}")
    print(f"CRPS-sum  {metrics['m_sum_mean_wQuantileLoss']:.4f}")
    print(f"ND        {metrics['ND']:.4f}   NRMSE {metrics['NRMSE']:.4f}")
    plot_window(forecasts[-1].samples, series[-1].to_numpy(), args.out)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
