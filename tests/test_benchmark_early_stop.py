"""benchmarks/text_masked_gap.py's early stop: when a run's validation curve has stalled."""

import sys

import pytest

from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

from text_masked_gap import stalled


def curve(*bits: float) -> list[dict]:
    return [{"step": 1000 * (i + 1), "bits_per_text": b} for i, b in enumerate(bits)]


@pytest.mark.parametrize(
    ("bits", "patience", "expected"),
    [
        ((9, 8, 8.5, 8.2), 2, True),  # two checks since the best at 8
        ((9, 8, 8.5, 7.9), 2, False),  # the last beat it
        ((9, 8, 8.0, 8.0), 2, True),  # a tie is no improvement
        ((9, 8, 8.5), 3, False),  # not enough checks yet to tell
        ((9, 8, 8.5, 8.6), None, False),  # no patience: never stops
        ((9, 8, 8.5, 8.6), 0, False),
    ],
)
def test_stalled_only_after_patience_checks_without_a_better_bound(bits, patience, expected):
    assert stalled(curve(*bits), patience) is expected
