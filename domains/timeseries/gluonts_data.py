"""diffkit's :class:`Series` / :class:`Split` as GluonTS datasets, in GluonTS's own layout.

``gluonts_datasets(split)`` gives what ``gluonts.dataset.repository.get_dataset`` gives for
the multivariate benchmarks: univariate training entries (one per series) and test
entries window by window, ready for ``MultivariateGrouper`` as in GluonTS's tutorials;
:class:`CovariateGrouper` groups them keeping their covariates.
"""

import numpy as np
from gluonts.core.component import validated
from gluonts.dataset.common import ListDataset
from gluonts.dataset.field_names import FieldName
from gluonts.dataset.multivariate_grouper import MultivariateGrouper

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


class CovariateGrouper(MultivariateGrouper):
    """GluonTS's ``MultivariateGrouper`` that keeps the series' covariates with the target.

    GluonTS's grouper stacks ``feat_dynamic_real`` unaligned (and, for test data, from
    every test date at once) and replaces the static features by ``feat_static_cat = [0]``.
    This one groups the targets the same way and builds each grouped entry's covariates
    from the series it holds (the last ``max_target_dim``, as GluonTS keeps):

    - ``feat_dynamic_real`` (D K, T'): each series' (K, T_i) features placed at its start
      on the grouped time axis (0 where a series has none), over the features' own length,
      which for prediction runs past the target; with ``shared_dynamic_real`` the features
      are the same for every series (holidays, weather) and kept once: (K, T');
    - ``feat_static_real`` (D S,) and ``feat_static_cat`` (D C,): the series' static
      features one after the other (the estimator's ``cardinality`` repeats per series).

    Parameters
    ----------
    max_target_dim, num_test_dates, train_fill_rule, test_fill_rule
        As ``MultivariateGrouper``'s.
    shared_dynamic_real
        Keep the first series' dynamic features only.
    """

    @validated()
    def __init__(
        self,
        max_target_dim: int | None = None,
        num_test_dates: int | None = None,
        train_fill_rule=np.mean,
        test_fill_rule=lambda x: 0.0,
        shared_dynamic_real: bool = False,
    ) -> None:
        super().__init__(max_target_dim, num_test_dates, train_fill_rule, test_fill_rule)
        self.shared_dynamic_real = shared_dynamic_real

    def _group_all(self, dataset):
        grouped = list(super()._group_all(dataset))
        entries = list(dataset)
        per_date = len(entries) // len(grouped)
        out = []
        for j, entry in enumerate(grouped):
            members = entries[j * per_date : (j + 1) * per_date]
            if self.max_target_dimension is not None:
                members = members[-self.max_target_dimension :]
            out.append({**entry, **self._covariates(members)})
        return ListDataset(out, freq=self.frequency, one_dim_target=False)

    def _covariates(self, members: list[dict]) -> dict:
        out = {}
        first = members[0]
        if FieldName.FEAT_DYNAMIC_REAL in first:
            sources = members[:1] if self.shared_dynamic_real else members
            blocks = [np.atleast_2d(np.asarray(m[FieldName.FEAT_DYNAMIC_REAL])) for m in sources]
            offsets = [(m[FieldName.START] - self.first_timestamp).n for m in sources]
            length = max(o + b.shape[1] for o, b in zip(offsets, blocks, strict=True))
            stacked = []
            for offset, block in zip(offsets, blocks, strict=True):
                aligned = np.zeros((block.shape[0], length), dtype=np.float32)  # (K, T')
                aligned[:, offset : offset + block.shape[1]] = block
                stacked.append(aligned)
            out[FieldName.FEAT_DYNAMIC_REAL] = np.vstack(stacked)  # (D K or K, T')
        for name in (FieldName.FEAT_STATIC_REAL, FieldName.FEAT_STATIC_CAT):
            if name in first:
                out[name] = np.concatenate([np.atleast_1d(m[name]) for m in members])
        if FieldName.FEAT_STATIC_CAT not in first:
            out[FieldName.FEAT_STATIC_CAT] = np.array([0])  # as MultivariateGrouper sets it
        return out
