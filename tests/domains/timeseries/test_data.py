import gzip
import json

import numpy as np
import pandas as pd
import pytest

from diffkit import ConfigError, DataError, MissingFileError, ShapeError
from diffkit.domains.timeseries import (
    Series,
    check_series,
    exchange_rate_nips,
    from_frame,
    from_gluonts,
    from_long,
    load,
    read_csv,
    read_jsonl,
    read_lstnet,
    rolling_windows,
)


@pytest.fixture
def series() -> Series:
    """12 business days x 3 series with two missing values (float32-exact numbers)."""
    values = np.arange(36, dtype=np.float64).reshape(12, 3) * 0.25 + 1.0
    values[2, 1] = values[7, 0] = np.nan
    index = pd.date_range("2024-01-01", periods=12, freq="B")
    return Series(values, index, ("0", "1", "2"), "B")


def long_frame(series: Series) -> pd.DataFrame:
    frame = series.to_frame().rename_axis("timestamp").reset_index()
    return frame.melt(id_vars="timestamp", var_name="item_id", value_name="value")


def test_wide_frame_and_csv_round_trip(series, tmp_path):
    assert from_frame(series.to_frame()) == series  # frequency inferred
    path = tmp_path / "wide.csv"
    series.to_frame().rename_axis("date").to_csv(path)
    assert read_csv(path) == series
    assert load(path) == series


def test_long_frame_and_csv_round_trip(series, tmp_path):
    # Rows in any time order; series keep the order of their first appearance.
    frame = long_frame(series).sort_values(["item_id", "timestamp"], ascending=[True, False])
    frame = frame[["item_id", "timestamp", "value"]]
    assert from_long(frame, "B") == series
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    assert read_csv(path) == series


def test_lstnet_matrix_round_trip(series, tmp_path):
    path = tmp_path / "matrix.txt.gz"
    with gzip.open(path, "wt") as f:
        series.to_frame().to_csv(f, header=False, index=False)
    assert read_lstnet(path, "B", "2024-01-01") == series
    assert load(path, freq="B", start="2024-01-01") == series
    with pytest.raises(ConfigError, match="--freq and --start"):
        load(path)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")  # GluonTS own
def test_gluonts_list_dataset_and_json_lines_round_trip(series, tmp_path):
    from gluonts.dataset.common import ListDataset

    def entries():  # ListDataset converts its dicts in place: a fresh list each time
        return [
            {"start": "2024-01-01", "target": series.values[:, d].tolist(), "item_id": name}
            for d, name in enumerate(series.names)
        ]

    assert from_gluonts(ListDataset(entries(), freq="B")) == series
    multivariate = ListDataset(
        [{"start": "2024-01-01", "target": series.values.T}], freq="B", one_dim_target=False
    )
    assert from_gluonts(multivariate) == series
    path = tmp_path / "data.json"
    with open(path, "w") as f:
        for e in entries():  # GluonTS writes NaN as the string "Nan"
            e = {**e, "target": ["Nan" if np.isnan(v) else v for v in e["target"]]}
            f.write(json.dumps(e) + "\n")
    assert read_jsonl(path, "B") == series
    assert load(path, freq="B") == series
    with pytest.raises(ConfigError, match="pass freq"):
        read_jsonl(path)


def test_missing_timestamps_become_nan_rows(series):
    frame = series.to_frame().drop(series.index[4])
    read = from_frame(frame, "B")
    assert read.length == 12 and np.isnan(read.values[4]).all()


def test_rolling_windows(series):
    split = rolling_windows(series, prediction_length=2, windows=3)
    assert split.train.length == 6
    assert [t.length for t in split.tests] == [8, 10, 12]
    np.testing.assert_array_equal(split.targets[1], series.values[8:10])
    assert split.histories[2] == series.head(10)
    assert rolling_windows(series, 2, 2, train_length=5).tests[-1].length == 9
    with pytest.raises(DataError, match="too few"):
        rolling_windows(series, 4, 3, train_length=2)


@pytest.mark.parametrize(
    ("edit", "error", "words"),
    [
        (lambda f: f.assign(**{"1": np.nan}), DataError, "no observed value"),
        (lambda f: f.assign(label="x"), DataError, "not numeric"),
        (lambda f: pd.concat([f, f.iloc[[3]]]).sort_index(), DataError, "more than once"),
        (lambda f: f.iloc[::-1], DataError, "not sorted"),
        (lambda f: f.set_axis(range(len(f))), DataError, "not timestamps"),
    ],
)
def test_bad_tables_raise_one_clear_error(series, edit, error, words):
    with pytest.raises(error, match=words):
        from_frame(edit(series.to_frame()), "B")


def test_bad_long_tables(series):
    frame = long_frame(series)
    with pytest.raises(DataError, match="more than one row"):
        from_long(pd.concat([frame, frame.iloc[[0]]]), "B")
    with pytest.raises(DataError, match="lacks column"):
        from_long(frame.drop(columns="value"), "B")
    saturday = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-06"])
    with pytest.raises(DataError, match="2024-01-06 00:00:00 is not on the 'B' grid"):
        from_frame(series.to_frame().iloc[:3].set_axis(saturday), "B")


def test_too_short_or_univariate_data_is_refused(series):
    assert check_series(series, 6, 6, min_dim=2) is series
    with pytest.raises(DataError, match="context 10 \\+ horizon 5 = 15"):
        check_series(series, 10, 5)
    univariate = Series(series.values[:, :1], series.index, ("0",), "B")
    with pytest.raises(ShapeError, match="needs at least 2"):
        check_series(univariate, 4, 4, min_dim=2)


@pytest.mark.parametrize("reader", [read_csv, load, read_jsonl, exchange_rate_nips])
def test_missing_files_are_named(reader, tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        reader(tmp_path / "absent.csv")
    with pytest.raises(MissingFileError):
        read_lstnet(tmp_path / "absent.txt.gz", "B", "2020-01-01")


def test_exchange_rate_nips_rebuild(exchange_file):
    path = exchange_file  # the real LSTNet file, or a synthetic one written in its layout
    split = exchange_rate_nips(path)
    assert exchange_rate_nips(path.parents[1]) == split  # found in a data folder too
    assert split.train.length == 6071 and split.train.dim == 8 and split.train.freq == "B"
    assert split.train.index[0] == pd.Timestamp("1990-01-01")
    assert [t.length for t in split.tests] == [6071 + 30 * k for k in range(1, 6)]
    assert split.prediction_length == 30 and all(t.shape == (30, 8) for t in split.targets)
    raw = pd.read_csv(path, header=None).to_numpy()
    np.testing.assert_array_equal(split.tests[-1].values, raw[: 6071 + 150])
