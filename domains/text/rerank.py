"""Choosing one text per input from several drafts: minimum Bayes risk under BLEU.

Sampling k drafts for an input and keeping the one the other drafts support most
(:func:`metrics.consensus_bleu`) trades k times the sampling for the mode of the model's
text distribution rather than one draw from it (Kumar & Byrne 2004; Freitag et al. 2022
for neural MT). The drafts of one input are ranked only against each other.

Given the inputs' E2E meaning representations, the choice can first keep the drafts that
leave out the fewest of the MR's slot values (:func:`metrics.missing_slots`), as the
slot-error rerankers of data-to-text systems do (Dušek & Jurčíček 2016, "Sequence-to-Sequence
Generation for Spoken Dialogue via Deep Syntax Trees and Strings"; Juraska et al. 2018,
"A Deep Ensemble Model with Slot Alignment for Sequence-to-Sequence Natural Language
Generation"), and then their consensus; every draft still votes in the consensus.
"""

from __future__ import annotations

from collections.abc import Sequence

from diffkit.errors import ShapeError

from . import metrics


def consensus_pick(
    drafts: Sequence[Sequence[str]], conds: Sequence[str] | None = None
) -> list[str]:
    """``drafts[k][i]``, the k-th draft for input i, reduced to one text per input: the
    draft with the highest BLEU against the input's other drafts (the first on ties); with
    ``conds`` (one MR per input), the highest among the drafts missing the fewest slots."""
    if not drafts or len({len(d) for d in drafts}) != 1:
        raise ShapeError("drafts must be k >= 1 lists of one text per input, all the same length")
    if conds is not None and len(conds) != len(drafts[0]):
        raise ShapeError(f"{len(conds)} conditions for {len(drafts[0])} inputs; give one each")
    if len(drafts) == 1:
        return list(drafts[0])
    picks = []
    for i, column in enumerate(zip(*drafts, strict=True)):
        scores = metrics.consensus_bleu(column)
        if conds is None:
            kept = range(len(column))
        else:
            missing = [metrics.missing_slots(conds[i], text) for text in column]
            kept = [k for k, m in enumerate(missing) if m == min(missing)]
        picks.append(column[max(kept, key=scores.__getitem__)])
    return picks


def consensus_of(
    texts: Sequence[str], drafts: int, conds: Sequence[str] | None = None
) -> list[str]:
    """:func:`consensus_pick` of ``drafts`` drafts laid out draft-major: ``texts[k * n + i]``
    is the k-th draft for input i of n (the layout of sampling ``inputs * drafts``)."""
    if drafts < 1 or len(texts) % drafts:
        raise ShapeError(f"{len(texts)} texts are not {drafts} drafts of the same inputs")
    n = len(texts) // drafts
    return consensus_pick([texts[k * n : (k + 1) * n] for k in range(drafts)], conds)
