"""benchmarks/text_masked_e2e.py: the decoding chosen to fit the devset's time budget, and
how far a model's training got."""

import sys

from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

from text_masked_e2e import how_far, within_budget


def row(name: str, bleu: float, wall_s: float, mrs: int = 100) -> dict:
    return {"option": {"name": name}, "bleu": bleu, "wall_s": wall_s, "mrs": mrs}


def test_the_best_bleu_whose_scaled_time_fits_is_chosen():
    rows = [row("slow", 60.0, 20.0), row("fast", 50.0, 2.0), row("mid", 55.0, 10.0)]
    # scaled to 547 texts: 109 s, 11 s, 55 s; 60 s admits "fast" and "mid".
    assert within_budget(rows, 547, 60.0) == {"name": "mid"}
    assert within_budget(rows, 547, 120.0) == {"name": "slow"}
    assert within_budget(rows, 547, 5.0) == {"name": "fast"}  # none fits: the fastest


def test_the_time_scales_with_the_rows_own_count_of_mrs():
    rows = [row("few", 60.0, 10.0, mrs=10), row("many", 50.0, 10.0, mrs=1000)]
    assert within_budget(rows, 547, 60.0) == {"name": "many"}  # "few" scales to 547 s


def curve(*bits: float) -> list[dict]:
    return [{"step": 1000 * (i + 1), "bits_per_text": b} for i, b in enumerate(bits)]


def test_a_run_short_of_its_budget_says_whether_it_stopped_or_was_cut():
    assert how_far(curve(9, 8, 7), 3000) == "3000"
    assert how_far(curve(9, 8, 8.5, 8.4, 8.3, 8.2), 16000) == "6000"  # stalled (patience 4)
    assert how_far(curve(9, 8, 7), 16000) == "3000 (the run was cut short there)"
