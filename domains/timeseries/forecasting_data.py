"""diffkit's :class:`Series` / :class:`Split` as pytorch-forecasting ``TimeSeriesDataSet``s.

The layouts :class:`~.forecasting.TimeGradForecaster` reads: a wide frame whose D columns
are the D targets of one group, or a long frame whose D groups are the series (one
``value`` target); ``time_idx`` counts steps from the first timestamp.
"""

import numpy as np
import pandas as pd
from pytorch_forecasting import TimeSeriesDataSet

from diffkit.errors import check_choice

from .series import Series, Split


def wide_frame(series: Series, group: str = "0") -> pd.DataFrame:
    """A wide frame for ``TimeSeriesDataSet``: ``time_idx``, ``group``, ``date``, the series.

    ``time_idx`` counts steps from ``series.index[0]``, which is the ``start`` to pass to
    :meth:`TimeGradForecaster.from_dataset`. Missing values stay NaN (pytorch-forecasting
    refuses them in targets: fill or drop them first).
    """
    frame = series.to_frame().reset_index(names="date")
    frame.insert(0, "time_idx", np.arange(series.length))
    frame.insert(1, "group", group)
    return frame


def long_frame(series: Series) -> pd.DataFrame:
    """A long frame: ``time_idx``, ``date``, ``series`` (the name), ``value``; NaN rows kept."""
    frame = wide_frame(series).drop(columns="group")
    frame = frame.melt(id_vars=["time_idx", "date"], var_name="series", value_name="value")
    return frame  # series by series, each in time order


def forecasting_datasets(
    split: Split, encoder_length: int, layout: str = "wide", **dataset_options
) -> tuple[TimeSeriesDataSet, TimeSeriesDataSet]:
    """Training and test ``TimeSeriesDataSet``s of a split, in either layout.

    Parameters
    ----------
    split
        A training range and rolling test windows (e.g. ``exchange_rate_nips(path)``).
    encoder_length
        Past steps of every window (TimeGrad needs context + largest lag).
    layout
        "wide": one group, one target per series; "long": one group per series, target
        ``value`` (load it with ``batch_sampler="synchronized"``).
    **dataset_options
        Further ``TimeSeriesDataSet`` arguments.

    Returns
    -------
    tuple of TimeSeriesDataSet
        Windows inside the training range, and the split's test windows (one per window,
        in order, predicting the steps ``split.targets`` holds).
    """
    check_choice("layout", layout, ("wide", "long"))
    full = split.tests[-1]
    names = list(full.names)
    if layout == "wide":
        frame, target, group = wide_frame(full), names, "group"
    else:
        frame, target, group = long_frame(full), "value", "series"
    cut, horizon = split.train.length, split.prediction_length
    training = TimeSeriesDataSet(
        frame[frame.time_idx < cut],
        time_idx="time_idx",
        target=target,
        group_ids=[group],
        min_encoder_length=encoder_length,
        max_encoder_length=encoder_length,
        min_prediction_length=horizon,
        max_prediction_length=horizon,
        **{"time_varying_unknown_reals": names if layout == "wide" else [target]} | dataset_options,
    )
    # Every window predicting from the cut on, kept at the split's rolling test dates.
    test = TimeSeriesDataSet.from_dataset(
        training, frame, min_prediction_idx=cut, stop_randomization=True
    ).filter(lambda index: (index.time_idx_first_prediction - cut) % horizon == 0)
    return training, test
