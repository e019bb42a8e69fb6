"""The masking (absorbing-state) forward process and MDLM's parameterisation of its reverse.

``q(x_t | x_0)`` keeps each token with probability ``alpha_t`` and replaces it by ``mask_id``
otherwise, independently per position (Austin et al. 2021; Sahoo et al. 2024, eq. 2). A
network sees x_t and returns logits over the vocabulary for x_0 at every position;
:func:`carry_over` turns them into MDLM's "SUBS" distribution: the mask token is never
predicted (zero masking probabilities) and unmasked tokens are copied (carry-over unmasking).
"""

from __future__ import annotations

import torch

from diffkit.discrete.schedules import check_schedule
from diffkit.errors import ConfigError, DataError, ShapeError

Tensor = torch.Tensor


def check_mask_id(mask_id: int, vocab_size: int | None = None) -> int:
    """``mask_id`` if it is a whole number in ``[0, vocab_size)``, else a ConfigError."""
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise ConfigError(f"mask_id must be a token id >= 0, got {mask_id!r}.")
    if vocab_size is not None and mask_id >= vocab_size:
        raise ConfigError(
            f"mask_id={mask_id} is outside the model's vocabulary of {vocab_size} logits; "
            "reserve a mask token inside the vocabulary."
        )
    return mask_id


def check_tokens(x: Tensor, what: str = "tokens") -> Tensor:
    """``x`` if it is an integer tensor of shape (B, L), else a ShapeError."""
    if not isinstance(x, Tensor) or x.ndim != 2 or x.dtype.is_floating_point or x.is_complex():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"{what} must be an integer tensor of shape (B, L), got {shape}.")
    return x


def check_keep(keep: Tensor | None, x: Tensor, what: str = "keep") -> Tensor | None:
    """``keep`` as a bool tensor of x's shape (or None), else a ShapeError."""
    if keep is None:
        return None
    if keep.shape != x.shape:
        raise ShapeError(f"{what} has shape {tuple(keep.shape)} but the tokens {tuple(x.shape)}.")
    return keep.to(device=x.device, dtype=torch.bool)


def rand(shape, generator: torch.Generator | None, device) -> Tensor:
    """Uniform [0, 1) float64 numbers drawn on the generator's device, then moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float64).to(device)


def q_sample(
    x0: Tensor,
    t: Tensor,
    schedule,
    mask_id: int,
    generator: torch.Generator | None = None,
    keep: Tensor | None = None,
) -> Tensor:
    """Draw x_t from q(x_t | x_0): each token masked with probability ``1 - alpha_t``.

    Parameters
    ----------
    x0
        Clean tokens (B, L); none may equal ``mask_id``.
    t
        Times in [0, 1], one per example (B,) or one for all.
    schedule
        A :class:`diffkit.discrete.schedules.MaskSchedule`.
    keep
        Optional bool (B, L): positions never masked (padding, known infill tokens).

    Returns
    -------
    Tensor
        x_t (B, L), x0's dtype, with ``mask_id`` at the masked positions.
    """
    check_tokens(x0, "x0")
    check_mask_id(mask_id)
    check_schedule(schedule)
    keep = check_keep(keep, x0)
    if (x0 == mask_id).any():
        raise DataError(f"x0 already contains the mask id {mask_id}; pass clean tokens.")
    masked_share = schedule.masked(t).to(x0.device)
    if masked_share.ndim == 1 and masked_share.shape[0] != x0.shape[0]:
        raise ShapeError(f"t has {masked_share.shape[0]} times for {x0.shape[0]} sequences.")
    masked_share = masked_share.reshape(-1, 1) if masked_share.ndim == 1 else masked_share  # (B, 1)
    masked = rand(x0.shape, generator, x0.device) < masked_share  # (B, L)
    if keep is not None:
        masked &= ~keep
    return torch.where(masked, torch.full_like(x0, mask_id), x0)


def carry_over(logits: Tensor, x_t: Tensor, mask_id: int) -> Tensor:
    """MDLM's SUBS parameterisation: log-probabilities of x_0 from logits (B, L, V).

    The mask token gets probability 0 (its logit is set to -inf) and every unmasked token of
    x_t is copied with probability 1, so the logits at unmasked positions are irrelevant.
    """
    masked_logits = logits.clone()
    masked_logits[..., mask_id] = -torch.inf
    log_probs = torch.log_softmax(masked_logits, dim=-1)  # (B, L, V)
    copied = torch.full_like(log_probs, -torch.inf)
    copied.scatter_(-1, x_t.unsqueeze(-1), 0.0)  # log 1 at the unmasked token
    return torch.where((x_t == mask_id).unsqueeze(-1), log_probs, copied)
