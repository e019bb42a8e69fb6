"""The held-out inputs every text benchmark row is scored on (``text.py``, ``text_masked.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from diffkit.domains.text import metrics
from diffkit.domains.text.data import Corpus, Encoded, encode_corpus


@dataclass(frozen=True)
class HeldOut:
    """Texts for the likelihood (encoded, with token and character counts) and test MRs."""

    texts: list[str]
    encoded: Encoded
    tokens: list[int]  # tokens per text after BOS, EOS included
    chars: list[int]
    mrs: list[str]
    refs: list[list[str]]


def held_out(test: Corpus, tokenizer, max_length: int, s: dict) -> HeldOut:
    """The first ``s["nll_texts"]`` test texts and the first ``s["mrs"]`` MRs with their refs."""
    texts = list(test.texts[: s["nll_texts"]])
    enc = encode_corpus(tokenizer, texts, max_length)
    mrs, refs = metrics.group_references(test.conds, test.texts)
    return HeldOut(
        texts,
        enc,
        (enc.pad.sum(1) - 1).tolist(),
        [len(t) for t in texts],
        list(mrs)[: s["mrs"]],
        list(refs)[: s["mrs"]],
    )
