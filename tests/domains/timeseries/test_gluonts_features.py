"""GluonTS estimator features: lead_time as GluonTS means it, one series, covariates."""

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("gluonts")

from gluonts.dataset.common import ListDataset
from gluonts.dataset.field_names import FieldName
from gluonts.evaluation import make_evaluation_predictions
from gluonts.transform import InstanceSampler, InstanceSplitter, TestSplitSampler

from diffkit.domains.timeseries import TimeGradEstimator

from .glue import QUIET, TINY

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

HORIZON, CONTEXT, SAMPLES = 4, 6, 8


class At(InstanceSampler):
    """Split every series at the given positions (GluonTS's samplers draw at random)."""

    points: list

    def __call__(self, ts: np.ndarray) -> np.ndarray:
        return np.array(self.points)


def estimator(tmp_path, **overrides) -> TimeGradEstimator:
    settings = {
        "freq": "D",
        "prediction_length": HORIZON,
        "context_length": CONTEXT,
        "target_dim": 2,
        "model_options": {**TINY, "lags": [1, 2]},
        "batch_size": 8,
        "num_batches_per_epoch": 2,
        "num_parallel_samples": SAMPLES,
        "trainer_kwargs": {"max_epochs": 1, "default_root_dir": str(tmp_path), **QUIET},
        **overrides,
    }
    return TimeGradEstimator(**settings)


def dataset(dim=2, length=80, start="2021-01-01"):
    t = np.arange(length)
    target = np.stack([10 + np.sin(2 * np.pi * (t + d) / 7) for d in range(dim)])  # (D, T)
    if dim == 1:
        target = target[0]  # a univariate entry, (T,)
    return ListDataset([{"start": start, "target": target}], freq="D", one_dim_target=dim == 1)


def test_lead_time_splits_windows_where_gluonts_instance_splitter_does(tmp_path):
    lead = 3
    est = estimator(tmp_path, lead_time=lead, train_sampler=At(points=[20, 41]))
    transformed = list(est.create_transformation().apply(dataset(), is_train=True))
    ours = list(est._create_instance_splitter("training").apply(transformed, is_train=True))
    reference = InstanceSplitter(
        target_field=FieldName.TARGET,
        is_pad_field=FieldName.IS_PAD,
        start_field=FieldName.START,
        forecast_start_field=FieldName.FORECAST_START,
        instance_sampler=At(points=[20, 41]),
        past_length=est.config.history_length,
        future_length=HORIZON,
        lead_time=lead,
        time_series_fields=[FieldName.FEAT_TIME, FieldName.OBSERVED_VALUES],
    )
    theirs = list(reference.apply(transformed, is_train=True))
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs, strict=True):
        assert a[FieldName.FORECAST_START] == b[FieldName.FORECAST_START]
        np.testing.assert_array_equal(a["past_target"], b["past_target"])
        # ours also holds the gap before the horizon, which the network draws through
        assert a["future_target"].shape == (lead + HORIZON, 2)
        np.testing.assert_array_equal(a["future_target"][lead:], b["future_target"])
        np.testing.assert_array_equal(a["future_time_feat"][lead:], b["future_time_feat"])


def test_lead_time_forecasts_start_after_the_gap_and_drop_its_draws(tmp_path):
    lead = 3
    torch.manual_seed(0)
    predictor = estimator(tmp_path, lead_time=lead).train(dataset())
    assert predictor.lead_time == lead
    # GluonTS's backtest cuts lead_time + prediction_length steps: the forecast covers the last
    # prediction_length of them, where InstanceSplitter(lead_time) with TestSplitSampler starts.
    test = dataset()
    forecasts, series = make_evaluation_predictions(test, predictor, num_samples=SAMPLES)
    forecast, truth = next(iter(forecasts)), next(iter(series))
    assert forecast.samples.shape == (SAMPLES, HORIZON, 2)
    np.testing.assert_array_equal(forecast.index, truth.index[-HORIZON:])
    cut = dict(next(iter(test)))
    cut["target"] = cut["target"][:, : -(lead + HORIZON)]
    reference = InstanceSplitter(
        target_field=FieldName.TARGET,
        is_pad_field=FieldName.IS_PAD,
        start_field=FieldName.START,
        forecast_start_field=FieldName.FORECAST_START,
        instance_sampler=TestSplitSampler(),
        past_length=10,
        future_length=HORIZON,
        lead_time=lead,
    )
    start = next(iter(reference.apply([cut], is_train=False)))[FieldName.FORECAST_START]
    assert forecast.start_date == start
    # the paths are the last HORIZON steps of lead + HORIZON steps the network draws
    module = predictor.prediction_net
    batch = next(iter(predictor.input_transform.apply([cut], is_train=False)))
    inputs = [torch.as_tensor(batch[name])[None] for name in predictor.input_names]
    drawn = module.model.forecast(
        *inputs, num_samples=3, generator=torch.Generator().manual_seed(5)
    )  # (1, 3, lead + HORIZON, 2)
    module.num_parallel_samples = 3
    paths = module(*inputs, generator=torch.Generator().manual_seed(5))
    assert drawn.shape[2] == lead + HORIZON
    torch.testing.assert_close(paths, drawn[:, :, lead:])


def test_one_series_trains_and_forecasts_with_a_one_dimensional_target(tmp_path):
    torch.manual_seed(0)
    predictor = estimator(tmp_path, target_dim=1).train(dataset(dim=1))
    forecast = next(iter(predictor.predict(dataset(dim=1))))
    assert forecast.samples.shape == (SAMPLES, HORIZON, 1)
    assert np.isfinite(forecast.samples).all()
    first = pd.Timestamp("2021-01-01") + pd.Timedelta(days=80)
    assert forecast.start_date.to_timestamp() == first


def test_negative_lead_time_is_refused(tmp_path):
    from diffkit.errors import ConfigError

    with pytest.raises(ConfigError, match="lead_time must be at least 0"):
        estimator(tmp_path, lead_time=-1)


def univariate_with_covariates(length=60, horizon=0, date_starts=("2021-01-01",)):
    """Two univariate entries per date with a promotion covariate and static features."""
    rng = np.random.default_rng(0)
    promo = (rng.random((2, length + horizon)) < 0.3).astype(np.float32)
    entries = []
    for start in date_starts:
        for d in range(2):
            target = 10 + 10 * d + 4 * promo[d, :length]
            entries.append(
                {
                    "start": start,
                    "target": target,
                    "feat_dynamic_real": promo[d : d + 1],  # (1, T + horizon)
                    "feat_static_real": [float(d)],
                    "feat_static_cat": [d],
                    "item_id": str(d),
                }
            )
    return ListDataset(entries, freq="D"), promo


def test_covariate_grouper_keeps_the_covariates_gluonts_grouper_drops():
    from gluonts.dataset.multivariate_grouper import MultivariateGrouper

    from diffkit.domains.timeseries.gluonts_data import CovariateGrouper

    data, promo = univariate_with_covariates()
    ours = next(iter(CovariateGrouper(max_target_dim=2)(data)))
    theirs = next(iter(MultivariateGrouper(max_target_dim=2)(data)))
    np.testing.assert_array_equal(ours["target"], theirs["target"])  # the same target
    np.testing.assert_array_equal(ours["feat_dynamic_real"], promo)  # (D K, T)
    np.testing.assert_array_equal(ours["feat_static_real"], [0.0, 1.0])
    np.testing.assert_array_equal(ours["feat_static_cat"], [0, 1])
    assert list(theirs["feat_static_cat"]) == [0] and "feat_static_real" not in theirs
    shared = next(iter(CovariateGrouper(shared_dynamic_real=True)(data)))
    np.testing.assert_array_equal(shared["feat_dynamic_real"], promo[:1])  # (K, T) once
    # test mode: one grouped entry per date, each with its own date's covariates, not all
    two_dates, _ = univariate_with_covariates(date_starts=("2021-01-01", "2021-01-01"))
    grouped = list(CovariateGrouper(num_test_dates=2)(two_dates))
    assert len(grouped) == 2 and all(g["feat_dynamic_real"].shape == (2, 60) for g in grouped)


def test_estimator_trains_and_forecasts_with_dynamic_and_static_covariates(tmp_path):
    from diffkit.domains.timeseries.gluonts_data import CovariateGrouper
    from diffkit.errors import ShapeError

    data, _ = univariate_with_covariates(length=80)
    train_ds = CovariateGrouper(max_target_dim=2)(data)
    settings = {"num_feat_dynamic_real": 2, "num_feat_static_real": 2, "cardinality": [2, 2]}
    torch.manual_seed(0)
    predictor = estimator(tmp_path, **settings).train(train_ds)
    assert predictor.input_names[-4:] == [
        "past_feat_dynamic_real",
        "future_feat_dynamic_real",
        "feat_static_real",
        "feat_static_cat",
    ]
    # for prediction the covariates run HORIZON steps past the target, as GluonTS expects
    future, _ = univariate_with_covariates(length=80, horizon=HORIZON)
    forecast = next(iter(predictor.predict(CovariateGrouper(max_target_dim=2)(future))))
    assert forecast.samples.shape == (SAMPLES, HORIZON, 2) and np.isfinite(forecast.samples).all()
    # covariates that stop with the target cannot be read for the horizon: one clear error
    with pytest.raises(ShapeError, match="future dynamic real features"):
        next(iter(predictor.predict(train_ds)))
    with pytest.raises(ShapeError, match="'feat_dynamic_real' holds 2 rows but the estimator"):
        estimator(tmp_path, num_feat_dynamic_real=3).train(train_ds)
