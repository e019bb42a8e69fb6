"""A distribution over short token sequences with its exact denoiser: the discrete test bed.

Every sequence of length L over V tokens is enumerated (V^L of them), so the exact posterior
of the masked tokens given the unmasked ones, ``q(x_0^i | x_t)``, is a sum over the
sequences that agree with x_t. For absorbing-state diffusion that posterior does not depend
on t, which is why a denoiser that ignores t is optimal and MDLM's cached sampler is exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from diffkit.discrete.process import check_tokens
from diffkit.errors import ConfigError, ShapeError

Tensor = torch.Tensor


@dataclass(frozen=True)
class TokenDistribution:
    """``probs[k]`` on ``sequences[k]`` (all V^L sequences); token id V is the mask."""

    sequences: Tensor = field(repr=False)  # (N, L) long
    probs: Tensor = field(repr=False)  # (N,) float64

    def __post_init__(self):
        if self.probs.shape != self.sequences.shape[:1] or (self.probs < 0).any():
            raise ShapeError("a token distribution needs one non-negative probability a sequence.")

    @property
    def length(self) -> int:
        return self.sequences.shape[1]

    @property
    def vocab(self) -> int:
        """Data tokens ``0..V-1``; the mask is ``V`` and the logits have ``V + 1`` entries."""
        return int(self.sequences.max()) + 1

    @property
    def mask_id(self) -> int:
        return self.vocab

    def entropy(self) -> float:
        """``H = -sum p log p`` in nats."""
        p = self.probs[self.probs > 0]
        return float(-(p * p.log()).sum())

    def index(self, x: Tensor) -> Tensor:
        """The row of each sequence of x (B, L) in :attr:`sequences` (B,)."""
        check_tokens(x)
        powers = self.vocab ** torch.arange(self.length - 1, -1, -1, device=x.device)  # (L,)
        return (x * powers).sum(-1)

    def nll(self, x: Tensor) -> Tensor:
        """``-log q(x)`` of each sequence, float64 (B,)."""
        return -self.probs.to(x.device)[self.index(x)].log()

    def sample(self, n: int, generator=None) -> Tensor:
        """``n`` exact samples (n, L)."""
        k = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return self.sequences[k]

    def histogram(self, x: Tensor) -> Tensor:
        """The empirical distribution of sequences x (B, L) over :attr:`sequences` (N,)."""
        counts = torch.bincount(self.index(x).cpu(), minlength=len(self.probs))
        return counts.double() / x.shape[0]

    def total_variation(self, x: Tensor) -> float:
        """``1/2 sum |q - empirical|`` between the distribution and samples x (B, L)."""
        return 0.5 * float((self.histogram(x) - self.probs).abs().sum())

    def posterior(self, x_t: Tensor) -> Tensor:
        """``q(x_0^i = v | x_t)`` for every position (B, L, V), float64; one-hot where unmasked."""
        check_tokens(x_t, "x_t")
        seqs = self.sequences.to(x_t.device)
        agree = (x_t[:, None, :] == self.mask_id) | (x_t[:, None, :] == seqs)  # (B, N, L)
        w = self.probs.to(x_t.device) * agree.all(-1)  # (B, N)
        onehot = torch.nn.functional.one_hot(seqs, self.vocab).double()  # (N, L, V)
        post = torch.einsum("bn,nlv->blv", w, onehot)
        return post / post.sum(-1, keepdim=True).clamp(min=1e-300)  # 0/0 for impossible x_t

    def denoiser(self):
        """The exact network ``net(x_t, t) -> logits (B, L, V + 1)``; it ignores t.

        Its answers are tabulated over all ``(V + 1)^L`` inputs on first use, so a call is one
        lookup; ``net.calls`` counts the calls.
        """
        return _ExactDenoiser(self)


class _ExactDenoiser(torch.nn.Module):
    def __init__(self, dist: TokenDistribution):
        super().__init__()
        self.dist, self.calls = dist, 0
        v, n = dist.vocab + 1, dist.length
        inputs = torch.tensor(list(itertools.product(range(v), repeat=n)))  # (v^n, L)
        post = dist.posterior(inputs).float()
        mask_column = torch.full((*post.shape[:2], 1), -torch.inf)
        self.register_buffer("table", torch.cat([post.log(), mask_column], -1), persistent=False)
        self.register_buffer("powers", v ** torch.arange(n - 1, -1, -1), persistent=False)

    def forward(self, x_t: Tensor, t: Tensor, **cond) -> Tensor:
        self.calls += 1
        return self.table[(x_t * self.powers).sum(-1)]  # (B, L, V + 1)


def enumerate_sequences(vocab: int, length: int) -> Tensor:
    """All ``vocab^length`` sequences in lexicographic order (N, L)."""
    if vocab < 1 or length < 1 or vocab**length > 1_000_000:
        raise ConfigError(f"enumerate at most 1e6 sequences; V={vocab}, L={length} is too many.")
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)))


def factorised(marginals: Tensor) -> TokenDistribution:
    """Independent tokens: position i takes value v with probability ``marginals[i, v]`` (L, V)."""
    length, vocab = marginals.shape
    marginals = marginals.double() / marginals.double().sum(-1, keepdim=True)
    seqs = enumerate_sequences(vocab, length)
    probs = marginals[torch.arange(length), seqs].prod(-1)  # (N,)
    return TokenDistribution(seqs, probs)


def random(vocab: int = 3, length: int = 4, *, concentration: float = 2.0, seed: int = 0):
    """A correlated distribution: ``softmax(concentration * z)`` over all sequences, z normal."""
    g = torch.Generator().manual_seed(seed)
    seqs = enumerate_sequences(vocab, length)
    z = torch.randn(len(seqs), generator=g, dtype=torch.float64)
    return TokenDistribution(seqs, torch.softmax(concentration * z, 0))
