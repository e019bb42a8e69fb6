"""diffkit's :class:`Series` / :class:`Split` as pytorch-forecasting ``TimeSeriesDataSet``s.

The layout :class:`~.forecasting.TimeGradForecaster` reads: a wide frame whose D columns
are the D targets of one group, ``time_idx`` counting steps from the first timestamp.
"""

import numpy as np
import pandas as pd
from pytorch_forecasting import TimeSeriesDataSet

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


def forecasting_datasets(
    split: Split, encoder_length: int, **dataset_options
) -> tuple[TimeSeriesDataSet, TimeSeriesDataSet]:
    """Training and test ``TimeSeriesDataSet``s of a split: one group, one target per series.

    Parameters
    ----------
    split
        A training range and rolling test windows (e.g. ``exchange_rate_nips(path)``).
    encoder_length
        Past steps of every window (TimeGrad needs context + largest lag).
    **dataset_options
        Further ``TimeSeriesDataSet`` arguments.

    Returns
    -------
    tuple of TimeSeriesDataSet
        Windows inside the training range, and the split's test windows (one per window,
        in order, predicting the steps ``split.targets`` holds).
    """
    full = split.tests[-1]
    frame = wide_frame(full)
    names = list(full.names)
    cut, horizon = split.train.length, split.prediction_length
    training = TimeSeriesDataSet(
        frame[frame.time_idx < cut],
        time_idx="time_idx",
        target=names,
        group_ids=["group"],
        min_encoder_length=encoder_length,
        max_encoder_length=encoder_length,
        min_prediction_length=horizon,
        max_prediction_length=horizon,
        **{"time_varying_unknown_reals": names, **dataset_options},
    )
    # Every window predicting from the cut on, kept at the split's rolling test dates.
    test = TimeSeriesDataSet.from_dataset(
        training, frame, min_prediction_idx=cut, stop_randomization=True
    ).filter(lambda index: (index.time_idx_first_prediction - cut) % horizon == 0)
    return training, test
