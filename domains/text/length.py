"""The masked LM's length prior: ``p(k)``, the law of a text's token count, apart from the text.

A masked LM that models ``BOS text EOS PAD..`` whole pays, in its bound, for learning where
EOS falls under random masks: in one quick grammar run that share of the bound was larger
than the gap to the AR model (benchmarks/text_masked_gap.py). Factoring the length out,

    -log p(x) = -log p(k) - log p(x_1..x_k | k),

with ``k`` the tokens between BOS and the first EOS (``L - 1`` for a row cut without one),
leaves the network only the tokens given their count: BOS, the EOS and the PADs after it are
given, never masked, never paid for, and the sampler draws ``k`` first and fills a
``--length k`` template. Both terms are exact or upper bounds, so the sum is still an upper
bound on ``-log p(x)``, provided ``p(k)`` is a distribution: here the add-one (Laplace)
smoothed histogram of the training texts' counts over ``k = 0..L - 1``, so a held-out length
never seen in training costs a finite amount.

A conditional model (E2E's mr -> ref) uses ``p(k | c)`` instead, with ``c`` the condition's
token count: the counts of the training texts whose condition has ``c`` tokens, smoothed
toward the global law with the weight of :data:`STRENGTH` texts,

    p(k | c) = (n_c(k) + STRENGTH * p(k)) / (n_c + STRENGTH),

a distribution for every ``c`` (the null condition of classifier-free guidance gets ``p(k)``).
Training counts every batch it sees, so after E epochs ``n_c(k)`` is E times a pass's; the
counts are divided by E (:func:`passes`: the domain's ``prepare`` records the training set's
size as ``length_texts``) so that the weight stays STRENGTH texts. Without that, 8,000 steps
of batch 64 on E2E's devset (133 passes) left the weight of a quarter of a text, and the
token-count key did worse than no key at all, 5.28 bits of k against 5.10 on held-out MRs.
On E2E's devset (80/20 by MR) it costs 4.82 bits per text on the held-out MRs against 5.16
for ``p(k)``; counts per set of MR slots gave 4.84, a bag-of-condition-tokens softmax 4.84
(linear) and 4.74 (an early-stopped MLP, unstable), so the plain count table won on
simplicity (`python benchmarks/text_masked_cond.py --priors`; weights 0.5-128 tried: 32 best).

What ``c`` counts is ``model.mask_length_key`` (:func:`key_weights`, a weight per piece the
network keeps with its counts and the domain's ``prepare`` sets from the tokenizer):
``tokens`` (the default), ``words``, or ``slots``, an MR's ``[``. A value the training MRs
lack splits into more pieces than a seen one, so the token count reads a longer MR where
there is only a rarer word; the slot count does not. Held out by food value inside the
devset (E2E's test set has foods and eat types its devset lacks), ``slots`` cost 5.15 and
5.39 bits of k against 5.26 and 5.44 for ``tokens``, and on the split by MR 4.75 against
4.81 (``python benchmarks/text_length_key.py``); ``words`` did worst of the three.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffkit.errors import ConfigError, check_choice

Tensor = torch.Tensor


def token_counts(ids: Tensor, eos_id: int) -> Tensor:
    """``k`` per row (B,): the positions between BOS and the first EOS (``L - 1`` without one)."""
    length = ids.shape[1]
    is_eos = ids[:, 1:] == eos_id  # (B, L - 1)
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1), length - 1)
    return first.long()


def paid_keep(ids: Tensor, eos_id: int) -> Tensor:
    """(B, L) bool: True where the length prior's model is given the token (BOS, EOS, PAD)."""
    k = token_counts(ids, eos_id)  # (B,)
    positions = torch.arange(ids.shape[1], device=ids.device)[None]  # (1, L)
    return (positions == 0) | (positions > k[:, None])


def count_lengths(counts: Tensor, ids: Tensor, eos_id: int) -> Tensor:
    """``counts`` (L,) plus the histogram of ``ids``' token counts, in place; returns it."""
    k = token_counts(ids, eos_id)
    counts += torch.bincount(k, minlength=counts.shape[0]).to(counts)
    return counts


def length_log_probs(counts: Tensor) -> Tensor:
    """``log p(k)`` for ``k = 0..L - 1`` (L,), float64: the add-one smoothed histogram."""
    counts = counts.double() + 1.0
    return counts.log() - counts.sum().log()


def sample_counts(
    log_probs: Tensor, n: int, low: int, high: int, generator=None, temperature: float = 1.0
) -> Tensor:
    """``n`` token counts (n,) drawn from the prior (L,), or one row's prior each (n, L),
    restricted to ``low..high`` and tempered as the tokens are: ``p(k)^(1 / temperature)``,
    renormalised; 0 takes the most probable count (the first of ties)."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}.")
    log_probs = log_probs.double().cpu().clone()
    log_probs[..., :low], log_probs[..., high + 1 :] = -torch.inf, -torch.inf
    if temperature == 0:
        return log_probs.expand(n, -1).argmax(-1)
    probs = (log_probs / temperature).softmax(-1)
    if probs.ndim == 1:
        return torch.multinomial(probs, n, replacement=True, generator=generator)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


STRENGTH = 32.0  # the global law's weight in p(k | c), in training texts (chosen on E2E)


LENGTH_KEYS = ("tokens", "words", "slots")  # what c counts in p(k | c) (model.mask_length_key)
WORD_START = "\u2581"  # sentencepiece's mark of a piece that begins a word


def key_weights(pieces: Sequence[str], key: str) -> Tensor:
    """What each piece of the vocabulary adds to the key ``c`` of ``p(k | c)`` (V,), float:
    ``tokens`` 1 each (``c`` the condition's token count), ``words`` 1 for a piece that
    begins a word (the count of whitespace-separated words, which a value split into
    more pieces, as an unseen food or name is, does not change), ``slots`` the piece's
    ``[`` (an E2E MR's slot count, ``name[..], food[..]``)."""
    check_choice("model.mask_length_key", key, LENGTH_KEYS)
    if key == "tokens":
        return torch.ones(len(pieces))
    if key == "words":
        return torch.tensor([float(p.startswith(WORD_START)) for p in pieces])
    return torch.tensor([float(p.count("[")) for p in pieces])


def condition_sizes(net, cond_ids: Tensor, cond_pad: Tensor, null: Tensor | None = None):
    """``c`` per row (B,): the network's key weights (``cond_key_weights``; 1 each without
    them) summed over the condition's real tokens, at most its ``cond_length``; -1 for null
    rows (B,) bool."""
    pad = cond_pad.bool()
    weights = getattr(net, "cond_key_weights", None)
    if weights is None:
        c = pad.sum(-1).long()
    else:
        ids = torch.as_tensor(cond_ids).long().clamp(0, len(weights) - 1).to(weights.device)
        c = (weights[ids] * pad.to(weights.device)).sum(-1).round().long().to(pad.device)
    if getattr(net, "cond_length", None) is not None:
        c = c.clamp(max=net.cond_length)
    return c if null is None else torch.where(null, -1, c)


def count_batch(net, ids: Tensor, cond: dict | None = None) -> None:
    """Add a training batch's texts ``ids`` (B, L) to the network's length counts, with
    the true condition's keys (``cond_ids``, ``cond_pad``) for ``p(k | c)``; in place."""
    count_lengths(net.length_counts, ids, net.eos_id)
    if hasattr(net, "cond_length_counts") and cond and "cond_pad" in cond:
        c = condition_sizes(net, cond["cond_ids"], cond["cond_pad"])
        count_cond_lengths(net.cond_length_counts, ids, c, net.eos_id)


def recount(net, ids: Tensor, cond: dict | None = None, weights: Tensor | None = None) -> None:
    """The network's length counts made again from its training texts ``ids`` (and their
    condition), under new key ``weights`` (V,) if given: the prior is a statistic of the
    data, not of the weights, so a trained model can change what ``c`` counts."""
    if weights is not None:
        net.cond_key_weights.copy_(weights)
    net.length_counts.zero_()
    if hasattr(net, "cond_length_counts"):
        net.cond_length_counts.zero_()
    count_batch(net, ids, cond)


def count_cond_lengths(counts: Tensor, ids: Tensor, c: Tensor, eos_id: int) -> Tensor:
    """``counts`` (C + 1, L) plus the (c, k) histogram of the rows, in place; returns it."""
    k = token_counts(ids, eos_id)
    flat = torch.bincount(c * counts.shape[1] + k, minlength=counts.numel())
    counts += flat.view_as(counts).to(counts)
    return counts


def passes(net) -> float:
    """How many times training counted each of its texts: the network's counts over its
    ``length_texts`` (the training set's size, which the domain's ``prepare`` records), at
    least 1; 1 for a network that does not know the size (its counts are taken as they are)."""
    texts = float(getattr(net, "length_texts", 0.0))
    return max(float(net.length_counts.sum()) / texts, 1.0) if texts > 0 else 1.0


def cond_length_log_probs(
    counts: Tensor, c: Tensor, strength: float = STRENGTH, passes: float = 1.0
) -> Tensor:
    """``log p(k | c)`` (B, L), float64, for condition sizes ``c`` (B,) from the (C + 1, L)
    counts of ``passes`` passes over the training texts (divided by it, so ``strength`` is
    in texts whatever the epochs); a row with ``c = -1`` (the null condition) gets the
    global add-one law."""
    counts = counts.double() / passes
    prior = length_log_probs(counts.sum(0)).exp()  # (L,)
    rows = counts[c.clamp(min=0).to(counts.device)]  # (B, L)
    table = (rows + strength * prior) / (rows.sum(-1, keepdim=True) + strength)
    table = torch.where((c < 0).to(counts.device)[:, None], prior, table)
    return table.log()


# --- the prior of a network (its counts, the lengths of a template) ---------------------


def prior_log_probs(net, n: int, cond: dict | None = None, guidance=None) -> Tensor:
    """The length prior's ``log p(k)`` (L,), or ``log p(k | c)`` per row (n, L) for a
    conditional network given ``cond`` (null rows get ``p(k)``), float64. A guidance scale w
    gives ``p(k | c)^w p(k)^(1 - w)``, renormalised, as guidance does to the tokens' logits."""
    prior = length_log_probs(net.length_counts / passes(net))  # as the table's null rows
    if not hasattr(net, "cond_length_counts") or not cond or "cond_pad" not in cond:
        return prior
    ids, pad = cond["cond_ids"], cond["cond_pad"]
    null = (torch.as_tensor(ids) == net.null_cond_id).reshape(len(pad), -1).all(-1)  # (B,)
    c = condition_sizes(net, ids, pad, null).expand(n)
    log_p = cond_length_log_probs(net.cond_length_counts, c, passes=passes(net))  # (n, L)
    if guidance is None or guidance == 1:
        return log_p
    if guidance == 0:
        return prior  # the unconditional model's own law (and its random stream)
    mixed = guidance * log_p + (1 - guidance) * prior.to(log_p)  # -inf-free: both add-one
    return mixed.log_softmax(-1)


def length_nats(net, ids: Tensor, cond: dict | None = None) -> Tensor:
    """``-log p(k)`` (or ``-log p(k | c)``) per row (B,), float64 (0 with PADs)."""
    if getattr(net, "lengths", "pads") != "prior":
        return torch.zeros(ids.shape[0], dtype=torch.float64, device=ids.device)
    log_p = prior_log_probs(net, ids.shape[0], cond).to(ids.device)
    k = token_counts(ids, net.eos_id)
    return -(log_p[k] if log_p.ndim == 1 else log_p.gather(1, k[:, None])[:, 0])


def drawn_lengths(
    net, n: int, template, generator=None, cond=None, guidance=None, temperature: float = 1.0
):
    """``template`` with a length drawn from the prior for each row whose length it leaves
    open (EOS allowed at some unknown position): ``BOS ? x k EOS PAD..``, the ``--length``
    frame, with ``k`` from the prior (given each row's condition, under ``guidance``, at
    ``temperature``) on ``1..L - 2`` (a frame needs a token and its EOS)."""
    if getattr(net, "lengths", "pads") != "prior":
        return template
    length = template.ids.shape[-1]
    ids = template.ids.expand(n, length).clone()  # (n, L)
    known = template.known.expand(n, length).clone()
    allowed = template.allowed.expand(n, length, -1).clone()  # (n, L, V)
    open_rows = (allowed[..., net.eos_id] & ~known).any(1)  # (n,)
    if not open_rows.any():
        return template
    where = generator.device if generator is not None else "cpu"
    seed = int(torch.randint(2**62, (1,), generator=generator, device=where))
    no_end = torch.zeros(allowed.shape[-1], dtype=torch.bool)
    no_end[[net.pad_id, net.eos_id, int(ids[0, 0])]] = True  # nor BOS, the first id
    log_p = prior_log_probs(net, n, cond, guidance)  # (L,) or (n, L)
    fits = fitting_lengths(allowed & ~no_end, allowed[..., net.eos_id])  # (n, L)
    if not fits[:, 1 : length - 1].all():  # the template rules some out: per row, without them
        log_p = log_p.expand(n, length).masked_fill(~fits, -torch.inf)
        open_rows &= fits.any(1)
    k = sample_counts(log_p, n, 1, length - 2, torch.Generator().manual_seed(seed), temperature)
    positions = torch.arange(length)[None]  # (1, L)
    text = (positions >= 1) & (positions <= k[:, None]) & open_rows[:, None]  # (n, L)
    frame = (positions > k[:, None]) & open_rows[:, None]
    ids[frame] = net.pad_id
    ids[(positions == k[:, None] + 1) & open_rows[:, None]] = net.eos_id
    known = torch.where(text, False, known | frame)
    allowed[text] &= ~no_end
    return type(template)(ids, known, allowed)


def fitting_lengths(text_ok: Tensor, eos_ok: Tensor) -> Tensor:
    """(n, L) bool: True at k where positions 1..k may hold text (``text_ok`` (n, L, V)) and
    position k + 1 its EOS (``eos_ok`` (n, L)); k = 0 and k = L - 1 never fit."""
    prefix = text_ok.any(-1)[:, 1:].long().cummin(1).values.bool()  # (n, L - 1): 1..k all ok
    fits = torch.zeros_like(eos_ok)
    fits[:, 1:-1] = prefix[:, :-1] & eos_ok[:, 2:]
    return fits
