"""Text metrics against values computed by hand (or by sacrebleu directly, for self-BLEU)."""

import pytest
import sacrebleu

from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.metrics import (
    copy_rate,
    corpus_bleu,
    distinct_n,
    group_references,
    infill_bleu,
    infill_exact_match,
    parse_mr,
    rouge_l,
    self_bleu,
    slot_error,
)
from diffkit.errors import ShapeError


def test_bleu_of_identical_corpora_is_100_and_a_hand_computed_case():
    texts = ["The Eagle is a pub.", "There is a cheap pub called The Mill."]
    assert corpus_bleu(texts, [[t] for t in texts]) == pytest.approx(100)
    # 5 tokens each, one wrong at the end: precisions 4/5, 3/4, 2/3, 1/2, brevity penalty 1.
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert corpus_bleu(["a b c d e"], [["a b c d f"]]) == pytest.approx(expected)
    # Multi-reference with a variable number: an exact match of any reference scores 100.
    assert corpus_bleu(["a b c d e", "v w x y z"], [["q r s", "a b c d e"], ["v w x y z"]]) == (
        pytest.approx(100)
    )
    assert corpus_bleu([], []) == 0.0


def test_group_references_by_condition():
    keys, refs = group_references(["m1", "m2", "m1"], ["a", "b", "c"])
    assert keys == ["m1", "m2"] and refs == [["a", "c"], ["b"]]


def test_rouge_l_hand_computed():
    # LCS("a b c", "a x b y c z") = 3: P = 1, R = 1/2, F = (1 + b^2) P R / (R + b^2 P), b = 1.2
    f = 2.44 * 0.5 / (0.5 + 1.44)
    assert rouge_l(["a b c"], [["a x b y c z"]]) == pytest.approx(100 * f)
    assert rouge_l(["The cat sat on the mat."], [["the cat was on the mat ."]]) == (
        pytest.approx(100 * 6 / 7)  # 7 tokens each with the full stop, LCS 6: P = R = 6/7
    )
    # Best precision (1, from "a b c d") and best recall (1, from "a") over the references,
    # taken separately: 100, where the best single reference would give F(1/2, 1) = 70.9.
    assert rouge_l(["a b"], [["a", "a b c d"]]) == pytest.approx(100)
    assert rouge_l(["a b"], [["a"]]) == pytest.approx(100 * 2.44 * 0.5 / (1 + 1.44 * 0.5))
    assert rouge_l(["same"], [["same"]]) == pytest.approx(100)
    assert rouge_l(["x"], [["y"]]) == 0.0


def test_distinct_n_of_a_known_list():
    texts = ["a b a", "a b"]
    assert distinct_n(texts, 1) == pytest.approx(2 / 5)  # a b a a b
    assert distinct_n(texts, 2) == pytest.approx(2 / 3)  # (a b) (b a) (a b)
    assert distinct_n(["a"], 2) == 0.0


def test_self_bleu_equals_the_mean_sentence_bleu_against_the_rest():
    texts = list(restaurants(40, seed=1).texts)
    expected = sum(
        sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)
    ) / len(texts)
    assert self_bleu(texts) == pytest.approx(expected, abs=1e-9)
    assert self_bleu(["same text here ok", "same text here ok"]) == pytest.approx(100)
    assert self_bleu(["only one"]) == 0.0


def test_copy_rate():
    assert copy_rate(["x", " y ", "z"], ["y", "x"]) == pytest.approx(2 / 3)
    assert copy_rate([], ["x"]) == 0.0


def test_slot_error_of_a_known_mr_and_text():
    mr = "name[The Eagle], eatType[pub], priceRange[high], familyFriendly[yes], near[Café Sicilia]"
    assert parse_mr(mr)["near"] == "Café Sicilia" and len(parse_mr(mr)) == 5
    # familyFriendly is not checked; "high" is mentioned as "expensive"; near is missing: 1 of 4.
    assert slot_error([mr], ["The Eagle is an expensive pub."]) == pytest.approx(1 / 4)
    assert slot_error([mr], ["THE EAGLE, an expensive pub near café-sicilia!"]) == 0.0
    corpus = restaurants(500, seed=0)
    assert slot_error(corpus.conds, corpus.texts) == 0.0  # the grammar realises every slot


def test_infill_metrics():
    assert infill_exact_match(["Hello  world", "x"], ["hello world", "y"]) == pytest.approx(0.5)
    assert infill_bleu(["a b c d"], ["a b c d"]) == pytest.approx(100)


def test_mismatched_lengths_are_a_shape_error():
    with pytest.raises(ShapeError, match="2 texts but 1 reference lists"):
        corpus_bleu(["a", "b"], [["a"]])
    with pytest.raises(ShapeError, match="MRs"):
        slot_error(["name[x]"], [])
