"""MDLM's continuous-time bound (Sahoo et al. 2024, eq. 10) as a per-example loss, and the
NLL bound in nats and bits per token.

For x_t ~ q(x_t | x_0) the negative ELBO of one sequence is

    -log p(x_0) <= int_0^1 -alpha'(t) / (1 - alpha(t)) E_q [ sum_{i masked} -log p(x_0^i | x_t) ] dt

With the exact denoiser ``p(x_0^i | x_t) = q(x_0^i | unmasked tokens of x_t)`` the bound is
tight, for every x_0: it equals the average over token orders of an any-order
autoregressive factorisation, each of which is exact (Ou et al. 2024; Hoogeboom et al. 2022).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from diffkit.discrete.process import check_keep, check_mask_id, check_tokens, q_sample, rand
from diffkit.discrete.schedules import check_schedule
from diffkit.errors import ConfigError, ShapeError, check_choice

Tensor = torch.Tensor


def masked_cross_entropy(logits: Tensor, x0: Tensor, x_t: Tensor, mask_id: int) -> Tensor:
    """Sum over masked positions of ``-log p(x_0^i | x_t)`` with the mask logit at -inf (B,)."""
    if logits.ndim != 3 or logits.shape[:2] != x0.shape:
        raise ShapeError(
            f"the model returned logits of shape {tuple(logits.shape)} for tokens of shape "
            f"{tuple(x0.shape)}; it must return (B, L, V)."
        )
    check_mask_id(mask_id, logits.shape[-1])
    logits = logits.masked_fill(
        torch.arange(logits.shape[-1], device=logits.device) == mask_id, -torch.inf
    )  # zero masking probabilities (MDLM's SUBS)
    nll = -torch.log_softmax(logits.float(), dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    return torch.where(x_t == mask_id, nll, 0.0).sum(-1)  # (B,)


def sample_t(batch: int, generator=None, device=None) -> Tensor:
    """Times uniform on (0, 1], one per example (float64): ``t = 0`` would weigh 0 by inf."""
    return 1 - rand((batch,), generator, device)


def stratified_t(batch: int, generator=None, device=None) -> Tensor:
    """Times ``1 - (u + i) / B`` for one uniform u (B,): each still uniform on (0, 1], but one
    per stratum, which lowers the variance of a batch's mean loss (MDLM's antithetic
    sampling; Kingma et al. 2021's low-discrepancy sampler)."""
    u = rand((1,), generator, device)
    return 1 - (u + torch.arange(batch, device=device, dtype=torch.float64)) / batch


def masked_diffusion_loss(
    net,
    x0: Tensor,
    schedule,
    *,
    mask_id: int,
    t: Tensor | None = None,
    keep: Tensor | None = None,
    cond: dict | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The continuous-time bound of each sequence at one sampled time, in nats (B,).

    Parameters
    ----------
    net
        Called as ``net(x_t, t, **cond)`` with x_t (B, L) and t (B,) float32; returns
        logits (B, L, V) for x_0. Only its logits at masked positions are used.
    x0
        Clean tokens (B, L).
    schedule
        A :class:`diffkit.discrete.schedules.MaskSchedule`.
    t
        Times (B,) in (0, 1]; default independent uniform draws (:func:`sample_t`), or pass
        :func:`stratified_t` for a lower-variance batch.
    keep
        Optional bool (B, L): positions never masked (padding, prompt); they cost nothing.

    Returns
    -------
    Tensor
        ``-alpha'(t) / (1 - alpha(t)) * sum_{masked i} -log p(x_0^i | x_t)`` (B,): an unbiased
        estimate of the sequence's negative ELBO. Divide by the token count for per-token nats.
    """
    check_tokens(x0, "x0")
    check_schedule(schedule)
    if t is None:
        t = sample_t(x0.shape[0], generator, x0.device)
    t = schedule.check_t(t).to(x0.device).expand(x0.shape[0])  # (B,)
    x_t = q_sample(x0, t, schedule, mask_id, generator, keep)
    logits = net(x_t, t.float(), **(cond or {}))
    cross_entropy = masked_cross_entropy(logits, x0, x_t, mask_id)  # (B,)
    return schedule.weight(t).to(cross_entropy) * cross_entropy


class NLLBound(NamedTuple):
    """The bound per sequence: ``nats`` (B,), ``bits_per_token`` (B,) and ``tokens`` (B,).

    ``tokens`` counts the positions outside ``keep``; a corpus's bound per token is
    ``nats.sum() / tokens.sum()`` (its perplexity bound the exp of that), not a mean of
    per-sequence ratios.
    """

    nats: Tensor
    bits_per_token: Tensor
    tokens: Tensor


def nll_bound(
    net,
    x0: Tensor,
    schedule,
    *,
    mask_id: int,
    num_t: int = 16,
    masks_per_t: int = 1,
    method: str = "quadrature",
    keep: Tensor | None = None,
    cond: dict | None = None,
    generator: torch.Generator | None = None,
) -> NLLBound:
    """Estimate each sequence's negative ELBO: an upper bound on ``-log p(x_0)``.

    ``method="quadrature"`` integrates over t with ``num_t`` Gauss-Legendre nodes (exact in t
    for the linear schedule once ``2 num_t >= L``) and ``masks_per_t`` mask draws per node;
    ``"mc"`` averages ``num_t * masks_per_t`` uniform times. Without a generator it draws
    from one seeded 0, so repeated calls agree. Costs ``num_t * masks_per_t`` network calls.

    Returns
    -------
    NLLBound
        ``nats`` (B,), ``bits_per_token = nats / (tokens ln 2)`` (B,) and ``tokens`` (B,),
        the positions outside ``keep``.
    """
    check_tokens(x0, "x0")
    check_choice("bound method", method, ("quadrature", "mc"))
    for name, value in (("num_t", num_t), ("masks_per_t", masks_per_t)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}.")
    keep = check_keep(keep, x0)
    generator = generator or torch.Generator().manual_seed(0)
    b = x0.shape[0]
    if method == "quadrature":
        nodes, weights = np.polynomial.legendre.leggauss(num_t)  # on [-1, 1]
        times = [(float(n) + 1) / 2 for n in nodes]
        weights = [float(w) / 2 / masks_per_t for w in weights]
    else:
        times, weights = [None] * num_t, [1.0 / (num_t * masks_per_t)] * num_t
    options = {"mask_id": mask_id, "keep": keep, "cond": cond, "generator": generator}
    nats = torch.zeros(b, dtype=torch.float64, device=x0.device)
    with torch.no_grad():
        for t, w in zip(times, weights, strict=True):
            t_b = None if t is None else torch.full((b,), t, dtype=torch.float64)
            for _ in range(masks_per_t):
                nats += w * masked_diffusion_loss(net, x0, schedule, t=t_b, **options).double()
    tokens = x0.new_full((b,), x0.shape[1]) if keep is None else (~keep).sum(-1)
    return NLLBound(nats, nats / (tokens.clamp(min=1).double() * math.log(2)), tokens)
