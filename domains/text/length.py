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
"""

from __future__ import annotations

import torch

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


def sample_counts(log_probs: Tensor, n: int, low: int, high: int, generator=None) -> Tensor:
    """``n`` token counts (n,) drawn from the prior restricted to ``low..high``."""
    probs = log_probs.double().exp().cpu()
    probs[:low], probs[high + 1 :] = 0.0, 0.0
    return torch.multinomial(probs, n, replacement=True, generator=generator)
