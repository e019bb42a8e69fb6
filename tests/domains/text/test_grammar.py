"""The built-in grammar: exact probabilities that sum to one, unambiguous, sampled at its law."""

import math
import re
from collections import Counter
from fractions import Fraction

import pytest

from diffkit.domains.text.grammar import SLOTS, TEMPLATES, Grammar, format_mr, realise, restaurants


@pytest.fixture(scope="module")
def grammar():
    return Grammar()


def test_the_tables_are_distributions_exactly():
    for _, law in (*SLOTS, ("template", TEMPLATES)):
        assert sum(Fraction(str(p)) for _, p in law) == 1


def test_probabilities_sum_to_one_over_the_enumerated_sentences(grammar):
    expected = math.prod(len(law) for _, law in SLOTS) * len(TEMPLATES)
    assert len(grammar.derivations) == expected == 3240
    assert math.fsum(math.exp(d.log_prob) for d in grammar.derivations) == pytest.approx(
        1, abs=1e-12
    )


def test_every_sentence_has_one_derivation(grammar):
    refs = Counter(d.ref for d in grammar.derivations)
    assert refs.most_common(1)[0][1] == 1


def test_log_prob_is_the_product_of_the_choices(grammar):
    text = "There is a cheap French pub called The Mill by the riverside."
    # name The Mill .3, pub .3, French .3, cheap .3, riverside .4, near absent .6, "there" .4
    expected = math.log(0.3**4 * 0.4 * 0.6 * 0.4)
    assert grammar.log_prob(text) == pytest.approx(expected, abs=1e-12)
    mr = "name[The Mill], eatType[pub], food[French], priceRange[cheap], area[riverside]"
    assert grammar.log_prob(text, mr) == pytest.approx(math.log(0.4), abs=1e-12)
    assert grammar.log_prob(text, "name[The Eagle], eatType[pub]") == -math.inf
    assert grammar.accepts(text)
    assert not grammar.accepts(text.replace("pub", "bar"))
    assert grammar.log_prob("The Eagle is a.") == -math.inf


def test_realise_articles_and_optional_slots():
    slots = {"name": "Zizzi", "eatType": "coffee shop", "food": "Indian", "near": "The Ranch"}
    assert realise(slots, "is") == "Zizzi is an Indian coffee shop near The Ranch."
    assert format_mr(slots) == "name[Zizzi], eatType[coffee shop], food[Indian], near[The Ranch]"


def test_entropy_is_exact(grammar):
    h = -sum(math.exp(d.log_prob) * d.log_prob for d in grammar.derivations)
    assert grammar.entropy_per_text() == pytest.approx(h)

    # Slots and template are independent: H(ref) is the sum of their entropies, H(ref | mr)
    # is the template's.
    def entropy(law):
        return -sum(p * math.log(p) for _, p in law)

    assert h == pytest.approx(sum(entropy(law) for _, law in SLOTS) + entropy(TEMPLATES))
    assert grammar.entropy_per_text(conditional=True) == pytest.approx(entropy(TEMPLATES))


def test_sampled_frequencies_match_the_law(grammar):
    n = 20_000
    corpus = grammar.sample(n, seed=3)
    assert len(corpus) == n and corpus.conditional
    assert all(grammar.accepts(t) for t in corpus.texts[:500])
    # Chi-square over the food slot (5 cells, 4 degrees of freedom: P(X > 18.5) < 0.001).
    foods = [re.search(r"food\[(.*?)\]", mr) for mr in corpus.conds]
    counts = Counter(match and match.group(1) for match in foods)
    chi2 = sum((counts[v] - n * p) ** 2 / (n * p) for v, p in SLOTS[2][1])
    assert chi2 < 18.5
    there = sum(t.startswith("There is") for t in corpus.texts) / n
    assert abs(there - 0.4) < 4 * math.sqrt(0.24 / n)


def test_sampling_is_seeded():
    assert restaurants(50, seed=1) == restaurants(50, seed=1)
    assert restaurants(50, seed=1) != restaurants(50, seed=2)
