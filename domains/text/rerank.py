"""Choosing one text per input from several drafts: minimum Bayes risk under BLEU.

Sampling k drafts for an input and keeping the one the other drafts support most
(:func:`metrics.consensus_bleu`) trades k times the sampling for the mode of the model's
text distribution rather than one draw from it (Kumar & Byrne 2004; Freitag et al. 2022
for neural MT). The drafts of one input are ranked only against each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from diffkit.errors import ShapeError

from . import metrics


def consensus_pick(drafts: Sequence[Sequence[str]]) -> list[str]:
    """``drafts[k][i]``, the k-th draft for input i, reduced to one text per input: the
    draft with the highest BLEU against the input's other drafts (the first on ties)."""
    if not drafts or len({len(d) for d in drafts}) != 1:
        raise ShapeError("drafts must be k >= 1 lists of one text per input, all the same length")
    if len(drafts) == 1:
        return list(drafts[0])
    picks = []
    for column in zip(*drafts, strict=True):
        scores = metrics.consensus_bleu(column)
        picks.append(column[max(range(len(column)), key=scores.__getitem__)])
    return picks


def consensus_of(texts: Sequence[str], drafts: int) -> list[str]:
    """:func:`consensus_pick` of ``drafts`` drafts laid out draft-major: ``texts[k * n + i]``
    is the k-th draft for input i of n (the layout of sampling ``inputs * drafts``)."""
    if drafts < 1 or len(texts) % drafts:
        raise ShapeError(f"{len(texts)} texts are not {drafts} drafts of the same inputs")
    n = len(texts) // drafts
    return consensus_pick([texts[k * n : (k + 1) * n] for k in range(drafts)])
