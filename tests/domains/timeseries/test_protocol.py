"""The time-series protocol: training range, validation windows and test windows never
overlap (closed-form indices), the validation set scores the horizon of windows inside
the validation span only, the defaults round-trip, and a series too short for the windows
is one error line naming the fix."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffkit.config import as_dict, build
from diffkit.domains.timeseries.domain import TimeSeriesConfig, data_split, domain, load_data
from diffkit.domains.timeseries.module import TimeGradConfig, TimeGradModel
from diffkit.domains.timeseries.series import Series, rolling_windows
from diffkit.domains.timeseries.windows import VALIDATION_ITEMS
from diffkit.errors import DataError
from diffkit.runner import resolve_config


def counting_series(length: int, dim: int = 2) -> Series:
    """Values that are their own time index: series[t, d] = t (so targets name positions)."""
    values = np.repeat(np.arange(length, dtype=float)[:, None], dim, axis=1)
    index = pd.date_range("2020-01-01", periods=length, freq="D")
    return Series(values, index, tuple(f"s{d}" for d in range(dim)), "D")


@pytest.mark.parametrize("train_length", [None, 60])
def test_training_validation_and_test_windows_follow_the_closed_form_and_never_overlap(
    train_length,
):
    N, Th, K, V = 100, 5, 3, 4
    split = rolling_windows(
        counting_series(N), Th, K, train_length=train_length, validation_windows=V
    )
    L = train_length if train_length is not None else N - K * Th  # steps before the test
    assert split.train.length == L - V * Th
    val_targets = [set(w.values[-Th:, 0]) for w in split.validation]
    test_targets = [set(t[:, 0]) for t in split.targets]
    for j, target in enumerate(val_targets, start=1):
        assert target == set(range(L - (V - j + 1) * Th, L - (V - j) * Th))
    for k, target in enumerate(test_targets, start=1):
        assert target == set(range(L + (k - 1) * Th, L + k * Th))
    seen = set(range(split.train.length))
    for window in val_targets + test_targets:  # pairwise disjoint and after training
        assert not window & seen
        seen |= window
    assert split.validation_split().targets[-1][-1, 0] == L - 1
    # histories: a validation window sees training + earlier validation windows only
    assert [h.length for h in split.validation_split().histories] == [
        L - (V - j + 1) * Th for j in range(1, V + 1)
    ]


def test_no_validation_windows_keeps_the_old_split():
    split = rolling_windows(counting_series(50), 5, 2)
    assert split.validation == () and split.train.length == 40


def small_config(**model) -> TimeSeriesConfig:
    net = TimeGradConfig(
        prediction_length=4, context_length=3, num_cells=4, num_layers=1, cond_dim=4, lags=(1, 2)
    )
    return TimeSeriesConfig(network=net, test_windows=2, **model)


def test_validation_windows_forecast_inside_the_validation_span_only(tmp_path):
    series = counting_series(60)
    config = small_config(validation_windows=3)
    path = tmp_path / "s.csv"
    series.to_frame().rename_axis("date").to_csv(path)
    data = load_data(config, path)
    split = data.train.split
    train_end, Th = split.train.length, 4
    assert train_end == 60 - (2 + 3) * Th
    futures = {tuple(data.val[i]["future_target"][:, 0].tolist()) for i in range(len(data.val))}
    # one window per start step whose horizon lies inside the 3 validation windows
    assert len(futures) == 3 * Th - Th + 1
    assert min(min(f) for f in futures) == train_end
    assert max(max(f) for f in futures) == train_end + 3 * Th - 1
    assert len(data.val) >= VALIDATION_ITEMS and all("horizon_only" in data.val[i] for i in (0, 5))
    train_futures = [data.train[i]["future_target"][-1, 0].item() for i in range(len(data.train))]
    assert max(train_futures) == train_end - 1  # training never reads a validation target


def test_the_validation_loss_scores_the_horizon_only():
    net_cfg = TimeGradConfig(
        target_dim=2, freq="D", prediction_length=4, context_length=3, num_cells=4,
        num_layers=1, cond_dim=4, lags=(1,),
    )  # fmt: skip
    net = TimeGradModel(net_cfg)
    past = torch.rand(3, net_cfg.history_length, 2) + 1
    future = torch.rand(3, 4, 2) + 1
    feat = torch.zeros(3, net_cfg.history_length, net_cfg.num_time_features)
    ffeat = torch.zeros(3, 4, net_cfg.num_time_features)
    unseen = torch.zeros(3, 4, 2, dtype=torch.bool)  # the horizon holds no observed value

    def loss(**kw):
        g = torch.Generator().manual_seed(0)
        return net.loss(past, None, future, unseen, feat, ffeat, generator=g, **kw)

    assert loss() > 0  # the context's values count in the training loss
    assert loss(horizon_only=True) == 0  # nothing observed in the horizon: nothing scored


def test_too_short_a_series_for_the_windows_is_one_error_naming_the_fix():
    config = small_config(validation_windows=4)  # needs (2 + 4) * 4 + 3 + 4 = 31 steps
    with pytest.raises(DataError, match=r"30 time steps.*need 31.*--validation-windows"):
        data_split(counting_series(30), config)
    assert data_split(counting_series(31), config).train.length == 7


def test_validation_windows_default_to_the_test_windows_and_the_defaults_round_trip():
    run = resolve_config(domain, {})
    assert run.model.validation_windows is None  # as many as test windows
    assert run.train.max_steps == 3000 and run.train.patience > 0
    # the default network standardises each window: "auto" has nothing to choose there
    assert (run.model.network.architecture, run.model.network.target) == ("horizon", "level")
    timegrad = resolve_config(domain, {"model": {"architecture": "timegrad"}}).model.network
    assert timegrad.target == domain.defaults["model"]["target"] == "auto"
    again = build(TimeSeriesConfig, as_dict(run.model), "model")
    assert again == run.model
    split = data_split(counting_series(300), run.model)
    assert len(split.validation) == len(split.tests) == 1
