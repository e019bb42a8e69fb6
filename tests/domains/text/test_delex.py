"""Delexicalising E2E's name and near slots: placeholders in, the MR's values back out."""

import pytest

from diffkit.domains.text.data import Corpus
from diffkit.domains.text.delex import delexicalise, delexicalise_pair, relexicalise

MR = "name[The Eagle], eatType[coffee shop], near[Burger King]"
TEXT = "The Eagle is a coffee shop near Burger King; The Eagleton is not."


def test_values_become_placeholders_in_the_mr_and_at_word_boundaries_of_the_text():
    mr, text = delexicalise_pair(MR, TEXT)
    assert mr == "name[XNAME], eatType[coffee shop], near[XNEAR]"
    assert text == "XNAME is a coffee shop near XNEAR; The Eagleton is not."  # not inside a word


def test_relexicalising_a_delexicalised_text_gives_the_text_back():
    _, text = delexicalise_pair(MR, TEXT)
    assert relexicalise([text], [MR]) == [TEXT]


def test_a_placeholder_the_mr_cannot_fill_is_dropped_and_other_slots_are_left_alone():
    mr = "name[Aromi], food[Chinese]"
    assert delexicalise_pair(mr, "Aromi serves Chinese food.") == (
        "name[XNAME], food[Chinese]",
        "XNAME serves Chinese food.",
    )
    assert relexicalise(["XNAME is near XNEAR ."], [mr]) == ["Aromi is near ."]


def test_a_corpus_is_delexicalised_pair_by_pair_and_needs_its_mrs():
    corpus = delexicalise(Corpus((TEXT, "Aromi is nice."), (MR, "name[Aromi]")))
    assert corpus.texts[1] == "XNAME is nice." and corpus.conds[1] == "name[XNAME]"
    with pytest.raises(ValueError, match="needs the MRs"):
        delexicalise(Corpus(("a text",)))
