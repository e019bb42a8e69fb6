"""The built-in text data: a small probabilistic grammar of E2E-like restaurant descriptions.

Each draw picks a meaning representation (MR) slot by slot, independently, then one of two
sentence templates that realise it (Novikova et al. 2017 give the real E2E data this shape):

    mr  = "name[The Eagle], eatType[pub], food[French], area[riverside]"
    ref = "The Eagle is a French pub by the riverside."

Slot laws (``None`` = slot absent from the MR; probabilities in :data:`SLOTS`):

- ``name``       The Eagle .5, The Mill .3, Alimentum .2 (always present)
- ``eatType``    restaurant .5, pub .3, coffee shop .2 (always present)
- ``food``       absent .2, French .3, Italian .2, Chinese .2, Indian .1
- ``priceRange`` absent .4, cheap .3, moderate .2, high .1
- ``area``       absent .3, riverside .4, city centre .3
- ``near``       absent .6, The Ranch .25, Café Sicilia .15

Templates (``[...]`` only when the slot is present), "is" with probability .6, "there" .4:

- is:    ``{name} is a[n] [{price}] [{food}] {eatType}[ {area}][ near {near}].``
- there: ``There is a[n] [{price}] [{food}] {eatType} called {name}[ {area}][ near {near}].``

with price words "cheap" / "moderately priced" / "expensive" and area phrases "by the
riverside" / "in the city centre". The grammar is unambiguous (every sentence has one
derivation; a test checks it), so a sentence's probability is the product of the choices
that made it. Its 3,240 sentences are enumerated once, which makes every probability and
the entropy exact: the entropy is the NLL floor an evaluation can report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from .data import Corpus

# Slot -> ((value or None, probability), ...), in E2E's MR order.
SLOTS: tuple[tuple[str, tuple[tuple[str | None, float], ...]], ...] = (
    ("name", (("The Eagle", 0.5), ("The Mill", 0.3), ("Alimentum", 0.2))),
    ("eatType", (("restaurant", 0.5), ("pub", 0.3), ("coffee shop", 0.2))),
    ("food", ((None, 0.2), ("French", 0.3), ("Italian", 0.2), ("Chinese", 0.2), ("Indian", 0.1))),
    ("priceRange", ((None, 0.4), ("cheap", 0.3), ("moderate", 0.2), ("high", 0.1))),
    ("area", ((None, 0.3), ("riverside", 0.4), ("city centre", 0.3))),
    ("near", ((None, 0.6), ("The Ranch", 0.25), ("Café Sicilia", 0.15))),
)
TEMPLATES: tuple[tuple[str, float], ...] = (("is", 0.6), ("there", 0.4))
PRICE_WORDS = {"cheap": "cheap", "moderate": "moderately priced", "high": "expensive"}
AREA_PHRASES = {"riverside": "by the riverside", "city centre": "in the city centre"}


def _logaddexp(a: float, b: float) -> float:
    hi = max(a, b)
    return hi if hi == -math.inf else hi + math.log(math.exp(a - hi) + math.exp(b - hi))


def format_mr(slots: dict[str, str]) -> str:
    """An MR string ``key[value], ...`` from present slots, in the order of :data:`SLOTS`."""
    return ", ".join(f"{key}[{slots[key]}]" for key, _ in SLOTS if key in slots)


def realise(slots: dict[str, str], template: str) -> str:
    """The sentence that ``template`` ("is" or "there") makes of the present ``slots``."""
    words = [PRICE_WORDS[slots["priceRange"]]] if "priceRange" in slots else []
    words += [slots["food"]] if "food" in slots else []
    words.append(slots["eatType"])
    noun = " ".join(words)
    noun = ("an " if noun[0] in "aeiouAEIOU" else "a ") + noun
    tail = f" {AREA_PHRASES[slots['area']]}" if "area" in slots else ""
    tail += f" near {slots['near']}" if "near" in slots else ""
    if template == "is":
        return f"{slots['name']} is {noun}{tail}."
    return f"There is {noun} called {slots['name']}{tail}."


@dataclass(frozen=True)
class Derivation:
    """One sentence of the grammar with its MR and exact log-probabilities (nats)."""

    mr: str
    ref: str
    log_prob: float  # log p(mr, ref) = log p(ref): the MR is a function of the sentence
    log_prob_mr: float  # log p(mr)


@dataclass(frozen=True)
class Grammar:
    """The restaurant grammar (module docstring); tables default to :data:`SLOTS` and
    :data:`TEMPLATES`."""

    slots: tuple = SLOTS
    templates: tuple = TEMPLATES

    @cached_property
    def derivations(self) -> tuple[Derivation, ...]:
        """Every sentence with its probabilities, in a fixed order (the sampling order)."""
        mrs: list[tuple[dict[str, str], float]] = [({}, 0.0)]
        for key, law in self.slots:
            mrs = [
                ({**s, key: v} if v is not None else s, lp + math.log(p))
                for s, lp in mrs
                for v, p in law
            ]
        return tuple(
            Derivation(format_mr(s), realise(s, name), lp + math.log(q), lp)
            for s, lp in mrs
            for name, q in self.templates
        )

    @cached_property
    def _table(self) -> dict[str, tuple[float, dict[str, float]]]:
        # ref -> (log p(ref), {mr: log p(ref | mr)}); sums over derivations if any coincide.
        table: dict[str, tuple[float, dict[str, float]]] = {}
        for d in self.derivations:
            total, by_mr = table.get(d.ref, (-math.inf, {}))
            cond = d.log_prob - d.log_prob_mr
            by_mr[d.mr] = _logaddexp(by_mr.get(d.mr, -math.inf), cond)
            table[d.ref] = (_logaddexp(total, d.log_prob), by_mr)
        return table

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is a sentence of the grammar (exact string match)."""
        return text in self._table

    def log_prob(self, text: str, mr: str | None = None) -> float:
        """Exact ``log p(text)`` in nats, or ``log p(text | mr)`` given an MR; -inf outside."""
        total, by_mr = self._table.get(text, (-math.inf, {}))
        return total if mr is None else by_mr.get(mr, -math.inf)

    def entropy_per_text(self, conditional: bool = False) -> float:
        """Exact entropy in nats per text: H(ref), or H(ref | mr) when ``conditional``.

        This is the expected NLL of the true law, the floor for any model's NLL per text.
        """
        h = -sum(math.exp(d.log_prob) * d.log_prob for d in self.derivations)
        if not conditional:
            return h
        mr_law: dict[str, float] = {}
        for d in self.derivations:
            mr_law[d.mr] = d.log_prob_mr
        return h + sum(math.exp(lp) * lp for lp in mr_law.values())  # H(ref, mr) - H(mr)

    def sample(self, n: int, seed: int = 0) -> Corpus:
        """``n`` independent (mr, ref) draws as a conditional :class:`Corpus`, seeded."""
        generator = torch.Generator().manual_seed(seed)
        probs = torch.tensor([math.exp(d.log_prob) for d in self.derivations], dtype=torch.float64)
        index = torch.multinomial(probs, n, replacement=True, generator=generator).tolist()
        chosen = [self.derivations[i] for i in index]
        return Corpus(texts=tuple(d.ref for d in chosen), conds=tuple(d.mr for d in chosen))


def restaurants(n: int = 5000, seed: int = 0) -> Corpus:
    """The default text data set: ``n`` draws from the built-in :class:`Grammar`."""
    return Grammar().sample(n, seed)
