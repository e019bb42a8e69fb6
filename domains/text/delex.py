"""Delexicalising E2E's open-class slots: ``name`` and ``near`` values become placeholders.

E2E's published test set names restaurants and landmarks the devset never shows, so a model
trained on the devset can only invent a name it knows (Dušek et al. 2020, "Evaluating the
state-of-the-art of End-to-End Natural Language Generation", sec. 4: most systems
delexicalise). :func:`delexicalise` replaces each slot's value in the MR and, where it
occurs verbatim, in the text by a placeholder (``XNAME``, ``XNEAR``); the model learns to
copy the placeholder; :func:`relexicalise` puts the MR's values back into generated texts,
which are then scored against the original references.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .data import Corpus
from .metrics import parse_mr

SLOTS = {"name": "XNAME", "near": "XNEAR"}


def _slot(mr: str, key: str) -> str | None:
    return next((v for k, v in parse_mr(mr).items() if k.lower() == key and v), None)


def delexicalise_pair(mr: str, text: str) -> tuple[str, str]:
    """``(mr, text)`` with each of :data:`SLOTS`' values replaced by its placeholder."""
    for key, placeholder in SLOTS.items():
        value = _slot(mr, key)
        if value is None:
            continue
        pattern = re.compile(rf"(?<=\[){re.escape(value)}(?=\])")
        mr = pattern.sub(placeholder, mr, count=1)
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", placeholder, text)
    return mr, text


def delexicalise(corpus: Corpus) -> Corpus:
    """A conditional corpus with ``name`` and ``near`` delexicalised in MRs and texts."""
    if not corpus.conditional:
        raise ValueError("delexicalising needs the MRs: pass a corpus with conditions.")
    pairs = [delexicalise_pair(m, t) for m, t in zip(corpus.conds, corpus.texts, strict=True)]
    return Corpus(tuple(t for _, t in pairs), tuple(m for m, _ in pairs))


def relexicalise(texts: Sequence[str], mrs: Sequence[str]) -> list[str]:
    """Generated ``texts`` with each placeholder replaced by the value its (original) MR
    gives; a placeholder whose slot the MR lacks is dropped."""
    out = []
    for text, mr in zip(texts, mrs, strict=True):
        for key, placeholder in SLOTS.items():
            text = text.replace(placeholder, _slot(mr, key) or "")
        out.append(re.sub(r" {2,}", " ", text).strip())
    return out
