"""benchmarks/shared_rows.py: rows shared by a scorer and a helper beside it meet in the
middle, each key computed once, and a row older than its checkpoint is computed again."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from shared_rows import cached_row, rows_of, save_row, wait_for_rows


def counting(calls, who):
    def compute(key):
        calls.append((who, key["i"]))
        return {"value": key["i"] * 10, "by": who}

    return compute


def test_a_helper_from_the_end_and_a_scorer_from_the_start_share_the_rows(tmp_path):
    since = tmp_path / "model.pt"
    since.write_text("weights")
    keys = [{"i": i} for i in range(5)]
    calls = []
    # the scorer has done the first two rows when the helper starts from the end
    rows_of(tmp_path / "rows", keys[:2], counting(calls, "scorer"), since)
    helper = rows_of(tmp_path / "rows", keys, counting(calls, "helper"), since, helper=True)
    assert [i for who, i in calls if who == "helper"] == [4, 3, 2]  # stopped at row 1, saved
    assert helper[:2] == [None, None] and helper[2]["by"] == "helper"
    rows = rows_of(tmp_path / "rows", keys, counting(calls, "scorer"), since)
    assert [r["value"] for r in rows] == [0, 10, 20, 30, 40]
    assert len(calls) == 5  # each key computed once in all
    assert wait_for_rows(tmp_path / "rows", keys, since, poll_s=0.01) == rows


def test_rows_older_than_the_checkpoint_or_of_another_key_are_not_taken(tmp_path):
    since = tmp_path / "model.pt"
    since.write_text("weights")
    save_row(tmp_path, {"option": {"t": 1.0}}, {"bleu": 1.0})
    assert cached_row(tmp_path, {"option": {"t": 1.0}}, since) == {"bleu": 1.0}
    assert cached_row(tmp_path, {"option": {"t": 0.7}}, since) is None
    later = since.stat().st_mtime + 5
    os.utime(since, (later, later))  # retrained after the row was saved
    assert cached_row(tmp_path, {"option": {"t": 1.0}}, since) is None
    calls = []
    rows = rows_of(None, [{"i": 3}], counting(calls, "alone"), None)  # no folder: no sharing
    assert rows == [{"value": 30, "by": "alone"}] and calls == [("alone", 3)]
