"""Classifier-free guidance on logits and infilling for masked diffusion, as wrappers.

Guidance mixes log-probabilities, ``log p_uncond + s (log p_cond - log p_uncond)``, which is
``log p_cond + (s - 1)(log p_cond - log p_uncond)``, through :func:`diffkit.guidance.cfg`'s
one batched call. Infilling needs no wrapper around the network: a known token is simply
never masked, and the absorbing process never changes an unmasked token.
"""

from __future__ import annotations

import torch

from diffkit import guidance
from diffkit.discrete.process import check_keep, check_mask_id, check_tokens
from diffkit.errors import DataError, ShapeError

Tensor = torch.Tensor

# e^-1e4 is 0 in float32 and float64, so flooring changes no probability but keeps
# 0 * log 0 (an impossible token at scale 0 or 1) from becoming NaN.
LOG_FLOOR = -1e4


def cfg(net, scale: float, null_cond: dict):
    """Classifier-free guidance (Ho & Salimans 2022) on a logits network ``guided(x, t, **cond)``.

    Returns unnormalised log-probabilities ``log p_u + scale (log p_c - log p_u)`` (B, L, V):
    ``scale=0`` is the unconditional model, 1 the conditional one, above 1 guidance. Both
    halves run in one call on the doubled batch; ``null_cond`` replaces keywords of the
    second half as in :func:`diffkit.guidance.cfg`.

    Examples
    --------
    >>> guided = cfg(net, 2.0, {"prompt_mask": 0})
    >>> x0 = diffkit.discrete.sample(guided, (16, 64), s, mask_id=m, cond={"prompt_mask": pm})
    """

    def log_probs(x: Tensor, t: Tensor, **cond) -> Tensor:
        return torch.log_softmax(net(x, t, **cond).float(), dim=-1).clamp(min=LOG_FLOOR)

    return guidance.cfg(log_probs, scale, null_cond)


def infill(x_T: Tensor, known: Tensor, known_mask: Tensor, mask_id: int) -> Tensor:
    """x_T with the known tokens in place (``known_mask`` True) and masks elsewhere (B, L).

    Samplers only ever unmask, so the known tokens reach x_0 unchanged.
    """
    check_tokens(x_T, "x_T")
    check_mask_id(mask_id)
    known_mask = check_keep(known_mask, x_T, "known_mask")
    known = check_tokens(known, "known").to(x_T.device)
    if known.shape != x_T.shape:
        raise ShapeError(f"known has shape {tuple(known.shape)} but x_T {tuple(x_T.shape)}.")
    if (known_mask & (known == mask_id)).any():
        raise DataError(f"a known token equals the mask id {mask_id}; mark it unknown instead.")
    return torch.where(known_mask, known, torch.full_like(x_T, mask_id))
