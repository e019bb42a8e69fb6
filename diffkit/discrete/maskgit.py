"""Confidence-ordered unmasking: MaskGIT's few-step parallel decoding."""

from __future__ import annotations

import math

import torch

from diffkit.discrete.base import draw, report, trajectory
from diffkit.discrete.process import rand
from diffkit.discrete.registry import register


@register("maskgit")
def maskgit(
    model_fn,
    x,
    times,
    schedule,
    *,
    mask_id,
    generator=None,
    callback=None,
    temperature=1.0,
    confidence_noise=0.0,
):
    """MaskGIT's iterative decoding (Chang et al. 2022, sec. 3.2): keep the most confident.

    Each step draws every masked token, then re-masks the least confident ones so that a
    share ``(1 - alpha_s) / (1 - alpha_T)`` of the initially masked tokens stays masked (at
    least one token is unmasked a step). Confidence is the draw's log-probability plus
    ``confidence_noise * (1 - step / steps)`` times Gumbel noise (MaskGIT's annealed
    ``choice_temperature``); ``temperature`` tempers the draws, 0 takes the argmax.
    """
    alphas = trajectory(schedule, times)
    start = (x == mask_id).sum(-1, keepdim=True)  # (B, 1) masked tokens at the start
    for i, t in enumerate(times):
        masked = x == mask_id  # (B, L)
        logits = model_fn(x, t)  # (B, L, V)
        at_masked = logits[masked]  # (n, V): only the masked positions are read
        u = rand(x.shape, generator, x.device)[masked]
        drawn, log_prob = draw(at_masked, mask_id, temperature, u)  # (n,), (n,)
        tokens = x.masked_scatter(masked, drawn)  # (B, L)
        confidence = torch.full(x.shape, math.inf, dtype=torch.float64, device=x.device)
        confidence[masked] = log_prob  # the draw's untempered log-probability; unmasked: inf
        noise = confidence_noise * (1 - (i + 1) / len(times))
        if noise > 0:
            gumbel = -torch.log(-torch.log(rand(x.shape, generator, x.device).clamp(min=1e-300)))
            confidence = confidence + noise * gumbel
        share = (1 - alphas[i + 1]) / (1 - alphas[0])
        remain = torch.floor(start * share + 1e-6).long()  # (B, 1) masked after this step
        remain = torch.minimum(remain, (masked.sum(-1, keepdim=True) - 1).clamp(min=0))
        rank = confidence.argsort(dim=-1, stable=True).argsort(dim=-1)  # 0 = least confident
        x = torch.where(masked & (rank >= remain), tokens, x)
        report(callback, i, t, x, logits)
    return x
