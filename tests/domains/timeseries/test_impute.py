"""``diffkit impute``: missing values drawn given the observed ones, table + chart, bad inputs."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffkit.domains.timeseries import synthetic
from diffkit.domains.timeseries.impute import gaps, impute_paths
from diffkit.domains.timeseries.series import Series
from diffkit.inference import load_model

from .test_domain import run, run_dir  # noqa: F401 (the trained tiny run: synthetic, D=8)


def holey(path, hide):
    """The run's synthetic series (200 days, 8 series) with the cells ``hide`` (T, D) emptied."""
    series = synthetic(200)
    values = series.values.copy()
    values[hide] = np.nan
    frame = pd.DataFrame(values, index=series.index, columns=list(series.names))
    frame.rename_axis("date").to_csv(path)
    return series, values


def mask(*cells):
    hide = np.zeros((200, 8), dtype=bool)
    for rows, cols in cells:
        hide[rows, cols] = True
    return hide


def test_gaps_are_the_runs_of_rows_with_a_missing_value():
    observed = np.ones((10, 2), dtype=bool)
    observed[[2, 3, 4], 0] = False
    observed[4, 1] = observed[9, 1] = False
    assert gaps(observed) == [(2, 5), (9, 10)]
    assert gaps(np.ones((4, 2), dtype=bool)) == []


def test_impute_fills_only_the_missing_cells_and_writes_quantiles_and_a_chart(
    run_dir,  # noqa: F811 (the fixture imported above)
    tmp_path,
    capsys,
):
    hide = mask((slice(120, 130), slice(None)), (slice(150, 152), [2, 5]), (40, 0))
    series, values = holey(tmp_path / "holes.csv", hide)
    out = tmp_path / "filled.csv"
    args = ["impute", "--checkpoint", run_dir, "--data", tmp_path / "holes.csv", "--out", out]
    code, text, err = run(capsys, *args, "--sampler", "ddim", "--steps", "4", "--num-samples", "12")
    assert code == 0, err
    assert f"saved {out}" in text and out.with_suffix(".png").stat().st_size > 1000
    frame = pd.read_csv(out, parse_dates=["timestamp"])
    assert len(frame) == 200 * 8 and list(frame.columns[:5]) == [
        "series", "timestamp", "observed", "value", "mean",
    ]  # fmt: skip
    table = frame.pivot(index="timestamp", columns="series", values="value")[list(series.names)]
    filled = table.to_numpy()
    # observed cells kept (up to pandas' CSV float parsing, 1 ulp)
    np.testing.assert_allclose(filled[~hide], values[~hide], rtol=1e-14)
    assert np.isfinite(filled).all() and (frame["observed"] == ~hide.T.reshape(-1)).all()
    q = frame[[c for c in frame.columns if c.startswith("q")]].to_numpy()
    assert q.shape[1] == 19 and (np.diff(q, axis=1) >= 0).all()
    spread = q[:, -1] - q[:, 0]
    assert (spread[~frame["observed"]] > 0).all() and (spread[frame["observed"]] == 0).all()
    # seeded: the same command gives the same table (the existing file needs --overwrite)
    code, _, err = run(capsys, *args, "--sampler", "ddim", "--steps", "4", "--num-samples", "12")
    assert code == 2 and "exists; pass --overwrite" in err and err.count("\n") == 1, err
    again = tmp_path / "again.csv"
    more = ["--sampler", "ddim", "--steps", "4", "--num-samples", "12", "--overwrite"]
    assert run(capsys, *args[:-1], again, *more)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(again, parse_dates=["timestamp"]), frame)


def test_a_partly_observed_step_keeps_its_observed_series(run_dir):  # noqa: F811
    _, net, _, _ = load_model(run_dir)
    series = synthetic(200)
    values = series.values.copy()
    values[100:104, :4] = np.nan  # half the series missing for 4 steps
    holes = Series(values, series.index, series.names, series.freq)
    g = torch.Generator().manual_seed(0)
    for resample in (False, True):
        paths = impute_paths(
            net, holes, num_samples=6, sampler="ddim", steps=3, generator=g, resample=resample
        )
        assert paths.shape == (6, 200, 8)
        np.testing.assert_array_equal(
            paths[:, 100:104, 4:], np.broadcast_to(values[100:104, 4:], (6, 4, 4))
        )
        assert np.isfinite(paths).all() and paths[:, 100:104, :4].std(axis=0).min() > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "SAME"], "--out names the --data file"),
        (["--out", "x.xlsx"], "--out must end in .csv or .parquet"),
        (["--num-samples", "0"], "--num-samples must lie in"),
        (["--data", "FULL"], "has no missing value"),
        (["--data", "NARROW"], "holds 3 series but the model was trained on 8"),
        (["--data", "NONE"], "does not exist"),
    ],
)
def test_bad_impute_inputs_are_one_line_and_write_nothing(
    run_dir,  # noqa: F811 (the fixture imported above)
    tmp_path,
    capsys,
    extra,
    message,
):
    holes = tmp_path / "holes.csv"
    holey(holes, mask((50, 1)))
    full = tmp_path / "full.csv"
    synthetic(200).to_frame().rename_axis("date").to_csv(full)
    narrow = tmp_path / "narrow.csv"
    days = pd.date_range("2021-01-01", periods=60)
    three = pd.DataFrame({"a": [1.0, np.nan] * 30, "b": 1.0, "c": 2.0}, index=days)
    three.rename_axis("date").to_csv(narrow)
    names = {"SAME": holes, "FULL": full, "NARROW": narrow, "NONE": tmp_path / "none.csv"}
    extra = [str(names.get(e, e)) for e in extra]
    if "--out" in extra and extra[1] == "x.xlsx":
        extra[1] = str(tmp_path / "x.xlsx")
    args = ["impute", "--checkpoint", run_dir, "--data", holes, "--out", tmp_path / "f.csv"]
    code, _, err = run(capsys, *args, "--steps", "2", *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "f.csv").exists()
