"""pytorch-forecasting covariates: time_varying_known_reals and static features reach TimeGrad."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("pytorch_forecasting")

import lightning.pytorch as pl
from pytorch_forecasting import TimeSeriesDataSet

from diffkit.domains.timeseries import TimeGradForecaster

from .glue import QUIET, TINY

HORIZON, ENCODER = 4, 8  # daily lags (1, 7, 14) are too long: lags (1, 2), context 6


def frame(length=80, shift=0.0):
    """Two stores' two series (long) with a known promotion flag and a store category."""
    rng = np.random.default_rng(0)
    promo = (rng.random(length) < 0.3).astype(np.float32) + shift
    rows = []
    for store, level in (("north", 10.0), ("south", 20.0)):
        noise = rng.normal(0, 0.2, length)
        rows.append(
            pd.DataFrame(
                {
                    "time_idx": np.arange(length),
                    "series": store,
                    "store": store,
                    "value": level + 4 * promo + noise,
                    "a": level + 4 * promo + noise,
                    "b": 2 * level + noise,
                    "promo": promo,
                    "size": level / 10,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def dataset(data, layout):
    common = {
        "time_idx": "time_idx",
        "min_encoder_length": ENCODER,
        "max_encoder_length": ENCODER,
        "min_prediction_length": HORIZON,
        "max_prediction_length": HORIZON,
        "time_varying_known_reals": ["promo"],
        "static_categoricals": ["store"],
        "static_reals": ["size"],
    }
    if layout == "wide":  # one store's two series as two targets
        data = data[data.series == "north"]
        return TimeSeriesDataSet(
            data, target=["a", "b"], group_ids=["series"],
            time_varying_unknown_reals=["a", "b"], **common,
        )  # fmt: skip
    return TimeSeriesDataSet(
        data, target="value", group_ids=["series"], time_varying_unknown_reals=["value"], **common
    )


def fit(training, layout):
    torch.manual_seed(0)
    options = {**TINY, "lags": [1, 2]}
    model = TimeGradForecaster.from_dataset(
        training, freq="D", start="2021-01-01", layout=layout, model_options=options,
        num_samples=5,
    )  # fmt: skip
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, enable_checkpointing=False, **QUIET)
    batch = (
        {"batch_size": 8}
        if layout == "wide"
        else {"batch_size": 8, "batch_sampler": "synchronized"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, training.to_dataloader(train=True, **batch))
    return model


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_known_reals_and_statics_become_the_networks_covariates(layout):
    training = dataset(frame(), layout)
    model = fit(training, layout)
    config, D = model.model.config, 2
    per = D if layout == "long" else 1  # the long layout's rows are the series
    assert config.num_feat_dynamic_real == per and config.num_feat_static_real == per
    stores = 2 if layout == "long" else 1  # the wide dataset holds the north store only
    assert config.cardinality == (stores,) * per
    model.eval()
    kwargs = (
        {"batch_size": 8}
        if layout == "wide"
        else {"batch_size": 8, "batch_sampler": "synchronized"}
    )

    def draw(data):
        x, _ = next(iter(dataset(data, layout).to_dataloader(train=False, **kwargs)))
        g = torch.Generator().manual_seed(0)
        return model(x, n_samples=5, generator=g)["samples"]

    same, shifted = draw(frame()), draw(frame(shift=1.0))
    torch.testing.assert_close(draw(frame()), same)  # seeded: the same inputs, the same paths
    assert torch.isfinite(same).all() and not torch.allclose(same, shifted)  # promo is read
