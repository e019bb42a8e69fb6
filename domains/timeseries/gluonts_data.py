"""diffkit's :class:`Series` / :class:`Split` as GluonTS datasets, in GluonTS's own layout.

``gluonts_datasets(split)`` gives what ``gluonts.dataset.repository.get_dataset`` gives for
the multivariate benchmarks: univariate training entries (one per series) and test
entries window by window, ready for ``MultivariateGrouper`` as in GluonTS's tutorials.
"""

from gluonts.dataset.common import ListDataset

from .series import Series, Split


def gluonts_entries(series: Series) -> list[dict]:
    """One univariate ``{"start", "target", "item_id"}`` entry per series (NaN kept)."""
    start = series.index[0]
    return [
        {"start": start, "target": series.values[:, d], "item_id": name}
        for d, name in enumerate(series.names)
    ]


def gluonts_datasets(split: Split) -> tuple[ListDataset, ListDataset]:
    """Training and test ``ListDataset``s of a split, as GluonTS's dataset repository.

    Parameters
    ----------
    split
        A training range and rolling test windows (e.g. ``exchange_rate_nips(path)``).

    Returns
    -------
    tuple of ListDataset
        The training entries (one per series) and the test entries (one per series and
        window, window by window), with ``split.train.freq``.
    """
    freq = split.train.freq
    train = ListDataset(gluonts_entries(split.train), freq=freq)
    test = ListDataset([e for test in split.tests for e in gluonts_entries(test)], freq=freq)
    return train, test
