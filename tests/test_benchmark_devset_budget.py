"""benchmarks/text_masked_e2e.py: the decoding chosen to fit the devset's time budget, how
far a model's training got, and the two protocols' training and test pairs."""

import csv
import sys

import pytest

from diffkit.domains.text.data import read
from diffkit.domains.text.delex import delexicalise
from diffkit.domains.text.grammar import restaurants
from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

import text_masked_e2e
from text_masked_e2e import how_far, within_budget


def row(name: str, bleu: float, wall_s: float, mrs: int = 100) -> dict:
    return {"option": {"name": name}, "bleu": bleu, "wall_s": wall_s, "mrs": mrs}


def as_projected(rows: list[dict], n_mrs: int = 547, factor: float = 1.0):
    """A clock that measures each option at its scaled validation time times ``factor``."""
    seconds = {r["option"]["name"]: factor * r["wall_s"] * n_mrs / r["mrs"] for r in rows}
    return lambda option: seconds[option["name"]]


def pick(rows, budget_s, time_of=None) -> str:
    chosen, _ = within_budget(rows, 547, budget_s, time_of or as_projected(rows))
    return chosen["decoding"]["name"]


def test_the_best_bleu_whose_scaled_time_fits_is_chosen():
    rows = [row("slow", 60.0, 20.0), row("fast", 50.0, 2.0), row("mid", 55.0, 10.0)]
    # scaled to 547 texts: 109 s, 11 s, 55 s; 60 s admits "fast" and "mid".
    assert pick(rows, 60.0) == "mid"
    assert pick(rows, 120.0) == "slow"
    assert pick(rows, 5.0) == "fast"  # none fits: the fastest


def test_the_time_scales_with_the_rows_own_count_of_mrs():
    rows = [row("few", 60.0, 10.0, mrs=10), row("many", 50.0, 10.0, mrs=1000)]
    assert pick(rows, 60.0) == "many"  # "few" scales to 547 s


def test_a_pick_that_runs_over_on_the_devset_gives_way_to_the_next_best():
    rows = [row("slow", 60.0, 20.0), row("fast", 50.0, 2.0), row("mid", 55.0, 10.0)]
    clock = as_projected(rows, factor=1.15)  # the devset runs 15% slower: mid takes 63 s
    chosen, tries = within_budget(rows, 547, 60.0, clock)
    assert chosen == {"decoding": {"name": "fast"}, "devset_wall_s": pytest.approx(12.581)}
    assert [t["decoding"]["name"] for t in tries] == ["mid", "fast"]  # slow was never timed


def test_a_miss_stretches_the_rest_so_options_that_cannot_fit_are_not_timed():
    rows = [row("a", 60.0, 10.0), row("b", 58.0, 9.0), row("c", 50.0, 5.0)]  # 55, 49, 27 s
    clock = as_projected(rows, factor=1.5)  # a takes 82 s: b would take 74, so only c is timed
    chosen, tries = within_budget(rows, 547, 60.0, clock)
    assert [t["decoding"]["name"] for t in tries] == ["a", "c"]
    assert chosen["decoding"] == {"name": "c"}


def test_when_every_timed_option_runs_over_the_fastest_is_kept_and_timed_once():
    rows = [row("slow", 60.0, 10.0), row("fast", 50.0, 9.0)]  # 55 s and 49 s projected
    clock = as_projected(rows, factor=3.0)
    chosen, tries = within_budget(rows, 547, 60.0, clock)
    assert chosen["decoding"] == {"name": "fast"} and len(tries) == 2


def curve(*bits: float) -> list[dict]:
    return [{"step": 1000 * (i + 1), "bits_per_text": b} for i, b in enumerate(bits)]


def test_a_run_short_of_its_budget_says_whether_it_stopped_or_was_cut():
    assert how_far(curve(9, 8, 7), 3000) == "3000"
    assert how_far(curve(9, 8, 8.5, 8.4, 8.3, 8.2), 16000) == "6000"  # stalled (patience 4)
    assert how_far(curve(9, 8, 7), 16000) == "3000 (the run was cut short there)"


def write_pairs(corpus, path):
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["mr", "ref"])
        out.writerows(zip(corpus.conds, corpus.texts, strict=True))


@pytest.fixture
def e2e_like(tmp_path, monkeypatch):
    """A synthetic E2E folder (grammar pairs) in place of ../shared/data/e2e."""
    folder = tmp_path / "e2e"
    folder.mkdir()
    write_pairs(restaurants(300, seed=1), folder / "devset.csv")
    write_pairs(restaurants(40, seed=2), folder / "testset_w_refs.csv")
    monkeypatch.setattr(text_masked_e2e, "DATA", folder)
    return folder


def test_protocol_a_tests_on_devset_mrs_that_training_never_sees(e2e_like, tmp_path):
    path, test = text_masked_e2e.corpora("a", True, tmp_path / "work")
    train = read(path, "ref", "mr")
    dev = read(e2e_like / "devset.csv", "ref", "mr")
    assert len(train) + len(test) == len(dev)
    assert not set(delexicalise(test).conds) & set(train.conds)  # held out by MR
    assert set(test.conds) <= set(dev.conds)  # the test pairs keep their names
    assert all("XNAME" in mr for mr in train.conds if "name[" in mr)


def test_protocol_b_trains_on_the_whole_devset_and_tests_on_the_test_file(e2e_like, tmp_path):
    path, test = text_masked_e2e.corpora("b", False, tmp_path / "work")
    assert path == e2e_like / "devset.csv"
    assert test.conds == read(e2e_like / "testset_w_refs.csv", "ref", "mr").conds
    path, _ = text_masked_e2e.corpora("b", True, tmp_path / "work")
    assert len(read(path, "ref", "mr")) == 300
