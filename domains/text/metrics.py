"""Text metrics as pure functions over lists of strings; the only module importing sacrebleu.

Scales: BLEU, self-BLEU and ROUGE-L are 0..100 (sacrebleu's convention); distinct-n, the
copy rate, slot error and exact match are shares in 0..1.

- :func:`corpus_bleu`: multi-reference corpus BLEU (Papineni et al. 2002) by sacrebleu with
  its default ``13a`` tokenisation; :func:`group_references` makes the reference lists from
  (condition, reference) pairs, as E2E scores one output per MR against all its references.
- :func:`rouge_l`: ROUGE-L (Lin 2004) from the longest common subsequence of lowercased
  word/punctuation tokens, with the E2E / COCO multi-reference rule: the best precision and
  the best recall over the references, combined as an F-measure with beta 1.2.
- :func:`distinct_n` (Li et al. 2016), :func:`self_bleu` (Zhu et al. 2018, Texygen),
  :func:`copy_rate`: diversity and memorisation of samples; :func:`consensus_bleu`, the
  per-text scores behind self-BLEU, ranks candidates for one input (minimum Bayes risk).
- :func:`slot_error`: the share of MR slot values a text fails to mention (rule below).
- :func:`infill_exact_match`, :func:`infill_bleu`: filled spans against the true spans.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from diffkit.errors import ShapeError

_MR_SLOT = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_13A = Tokenizer13a()

# Surface forms that count as mentioning a slot value (after normalisation), beyond the
# value itself: the common paraphrases of E2E's price, rating, area and venue values.
SURFACE_FORMS: dict[str, tuple[str, ...]] = {
    "cheap": ("cheap", "inexpensive", "low price", "low cost", "affordable"),
    "moderate": ("moderate", "average price", "mid price", "reasonabl"),
    "high": ("high", "expensive", "pricey"),
    "less than £20": ("less than £20", "under £20", "cheap", "low price", "inexpensive"),
    "£20-25": ("£20-25", "£20-£25", "20-25", "average price", "moderate"),
    "more than £30": ("more than £30", "over £30", "above £30", "expensive", "high price"),
    "1 out of 5": ("1 out of 5", "1 star", "one star"),
    "3 out of 5": ("3 out of 5", "3 star", "three star"),
    "5 out of 5": ("5 out of 5", "5 star", "five star"),
    "city centre": ("city centre", "city center", "centre of the city", "center of the city"),
    "riverside": ("riverside", "river"),
    "coffee shop": ("coffee shop", "coffeeshop", "cafe", "café"),
    "english": ("english", "british"),
}
UNCHECKED_SLOTS = ("familyfriendly",)  # yes/no values are not words of the text


def _check_pairs(hyps: Sequence, refs: Sequence, what: str) -> None:
    if len(hyps) != len(refs):
        raise ShapeError(f"{len(hyps)} texts but {len(refs)} {what}; pass one per text.")


def words(text: str) -> list[str]:
    """Lowercased word and punctuation tokens (the unit of ROUGE-L and distinct-n)."""
    return _TOKEN.findall(text.lower())


def group_references(conds: Sequence[str], refs: Sequence[str]):
    """Group references by condition, in first-seen order.

    Returns
    -------
    (keys, refs_lists)
        The distinct conditions and, for each, the list of its references.
    """
    _check_pairs(refs, conds, "conditions")
    groups: dict[str, list[str]] = {}
    for cond, ref in zip(conds, refs, strict=True):
        groups.setdefault(cond, []).append(ref)
    return list(groups), list(groups.values())


def corpus_bleu(hyps: Sequence[str], refs_lists: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0..100) of ``hyps[i]`` against the references ``refs_lists[i]``."""
    _check_pairs(hyps, refs_lists, "reference lists")
    if not hyps:
        return 0.0
    most = max(len(r) for r in refs_lists)
    streams = [[r[k] if k < len(r) else None for r in refs_lists] for k in range(most)]
    return BLEU().corpus_score(list(hyps), streams).score


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row)."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(hyps: Sequence[str], refs_lists: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """Mean sentence ROUGE-L F-measure (0..100) over ``hyps`` (module docstring)."""
    _check_pairs(hyps, refs_lists, "reference lists")
    scores = []
    for hyp, refs in zip(hyps, refs_lists, strict=True):
        h = words(hyp)
        best_p = best_r = 0.0
        for ref in refs:
            r = words(ref)
            common = _lcs(h, r)
            best_p = max(best_p, common / len(h) if h else 0.0)
            best_r = max(best_r, common / len(r) if r else 0.0)
        f = 0.0
        if best_p and best_r:
            f = (1 + beta**2) * best_p * best_r / (best_r + beta**2 * best_p)
        scores.append(f)
    return 100.0 * sum(scores) / len(scores) if scores else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of ``texts`` (0..1; 0 when there are none)."""
    grams = [g for text in texts for g in _ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str], max_order: int = 4) -> float:
    """Mean sentence BLEU (0..100) of each text against all the others as references."""
    if len(texts) < 2:
        return 0.0
    scores = consensus_bleu(texts, max_order)
    return sum(scores) / len(scores)


def consensus_bleu(texts: Sequence[str], max_order: int = 4) -> list[float]:
    """Each text's sentence BLEU (0..100) against all the others as references.

    Equals ``sacrebleu.sentence_bleu(text, others)`` (13a tokens, exp smoothing, effective
    order) and runs in time linear in the number of texts: the clipping count of an n-gram
    against "all others" is the largest count among the other texts, which the two largest
    counts over all texts give. The text the others support most is the minimum-Bayes-risk
    choice under BLEU (Kumar & Byrne 2004); at least two texts.
    """
    if len(texts) < 2:
        raise ShapeError(f"consensus needs at least two texts, got {len(texts)}")
    tokens = [_13A(text.strip()).split() for text in texts]
    counts = [Counter(g for n in range(1, max_order + 1) for g in _ngrams(t, n)) for t in tokens]
    top: dict[tuple, list[tuple[int, int]]] = {}  # n-gram -> two largest (count, text index)
    for i, counter in enumerate(counts):
        for gram, c in counter.items():
            best = top.setdefault(gram, [])
            best.append((c, i))
            if len(best) > 2:
                best.sort(reverse=True)
                best.pop()
    lengths = Counter(len(t) for t in tokens)
    scores = []
    for i, counter in enumerate(counts):
        correct, total = [0] * max_order, [0] * max_order
        for gram, c in counter.items():
            others = [k for k, j in top[gram] if j != i]
            correct[len(gram) - 1] += min(c, max(others, default=0))
            total[len(gram) - 1] += c
        own = len(tokens[i])
        lengths[own] -= 1
        ref_len = min((k for k, m in lengths.items() if m), key=lambda k: (abs(k - own), k))
        lengths[own] += 1
        stats = BLEU.compute_bleu(correct, total, own, ref_len, "exp", effective_order=True)
        scores.append(stats.score)
    return scores


def copy_rate(samples: Sequence[str], train_texts: Sequence[str]) -> float:
    """Share of samples that equal a training text exactly (after stripping whitespace)."""
    seen = {t.strip() for t in train_texts}
    return sum(s.strip() in seen for s in samples) / len(samples) if samples else 0.0


def parse_mr(mr: str) -> dict[str, str]:
    """The ``key[value]`` pairs of an E2E meaning representation, in order."""
    return {key.strip(): value.strip() for key, value in _MR_SLOT.findall(mr)}


def _normalise(text: str) -> str:
    return " " + " ".join(re.sub(r"[^\w£]+", " ", text.lower()).split()) + " "


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` mentions a slot ``value`` (rule of :func:`slot_error`)."""
    normal = _normalise(text)
    forms = (*SURFACE_FORMS.get(value.lower(), ()), value)
    return any(_normalise(form).rstrip() in normal for form in forms)


def slot_error(mrs: Sequence[str], texts: Sequence[str]) -> float:
    """Share (0..1) of the MRs' slot values that their texts do not mention.

    Rule: text and value are lowercased, every run of characters other than letters,
    digits and "£" becomes one space, and the value (or one of its :data:`SURFACE_FORMS`)
    must occur starting at a word boundary. Slots in :data:`UNCHECKED_SLOTS` (yes/no
    values) are skipped. Only omissions count, not added or repeated slots.
    """
    _check_pairs(texts, mrs, "MRs")
    missing = sum(missing_slots(mr, text) for mr, text in zip(mrs, texts, strict=True))
    total = sum(len(checked_values(mr)) for mr in mrs)
    return missing / total if total else 0.0


def checked_values(mr: str) -> list[str]:
    """The MR's slot values that :func:`slot_error` checks (not :data:`UNCHECKED_SLOTS`)."""
    return [v for k, v in parse_mr(mr).items() if k.lower() not in UNCHECKED_SLOTS and v]


def missing_slots(mr: str, text: str) -> int:
    """How many of the MR's checked slot values ``text`` does not mention."""
    return sum(not mentions(text, value) for value in checked_values(mr))


def infill_exact_match(filled: Sequence[str], targets: Sequence[str]) -> float:
    """Share (0..1) of filled spans equal to their targets, ignoring case and spacing."""
    _check_pairs(filled, targets, "targets")
    same = sum(words(f) == words(t) for f, t in zip(filled, targets, strict=True))
    return same / len(filled) if filled else 0.0


def infill_bleu(filled: Sequence[str], targets: Sequence[str]) -> float:
    """Corpus BLEU (0..100) of filled spans against their single true spans."""
    return corpus_bleu(filled, [[t] for t in targets])
