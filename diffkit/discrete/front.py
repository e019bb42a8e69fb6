"""``diffkit.discrete.sample``: one call from a logits network and a masking schedule to tokens."""

from __future__ import annotations

import torch

from diffkit.discrete import guidance
from diffkit.discrete.base import mask_times, model_function
from diffkit.discrete.process import check_mask_id, check_tokens
from diffkit.discrete.registry import get_sampler
from diffkit.discrete.schedules import check_schedule
from diffkit.errors import ConfigError, ShapeError
from diffkit.sampling.front import check_finite_result, check_options
from diffkit.sampling.given import read_given

Tensor = torch.Tensor


def sample(
    model,
    shape_or_x_T,
    schedule,
    *,
    mask_id: int,
    sampler: str = "ancestral",
    steps: int | None = None,
    cond: dict | None = None,
    guidance_scale: float | None = None,
    null_cond: dict | None = None,
    known: Tensor | None = None,
    known_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    callback=None,
    device=None,
    **options,
) -> Tensor:
    """Run a masked-diffusion ``sampler`` from all-masked tokens to x_0 (B, L).

    Parameters
    ----------
    model
        Called as ``model(x_t, t, **cond)`` with x_t (B, L) long and t (B,) float; returns
        logits (B, L, V) over x_0, the mask token ``mask_id`` among the V.
    shape_or_x_T
        ``(B, L)`` to start from all masks, or x_T itself (unmasked tokens stay as they are).
    schedule
        A :class:`diffkit.discrete.schedules.MaskSchedule`.
    sampler, steps
        A name in :data:`diffkit.discrete.SAMPLERS` ("ancestral", "cached", "maskgit") and
        its number of steps, uniform in t (default L, one token a step on average).
    guidance_scale, null_cond
        Classifier-free guidance on logits (:func:`diffkit.discrete.guidance.cfg`): 0
        unconditional, 1 conditional, above 1 guided; ``null_cond`` replaces entries of ``cond``.
    known, known_mask
        Infilling: tokens where ``known_mask`` is True are given and never masked.
    temperature
        Tempers every draw: ``softmax(log p / temperature)``; 0 takes the argmax.
    options
        Passed to the sampler, e.g. ``confidence_noise=4.5`` for MaskGIT.

    Examples
    --------
    >>> s = diffkit.discrete.schedules.loglinear()
    >>> x0 = diffkit.discrete.sample(net, (16, 64), s, mask_id=0, sampler="cached", steps=256)
    """
    fn = get_sampler(sampler)
    options = {**read_given(fn, sampler, check_options), **options}  # --sampler-option
    check_options(fn, sampler, options)
    check_mask_id(mask_id)
    check_schedule(schedule)
    if cond is not None and not isinstance(cond, dict):
        raise ConfigError(f"cond must be a dict of keyword arguments, got {type(cond).__name__}.")
    if isinstance(shape_or_x_T, Tensor):
        x = check_tokens(shape_or_x_T, "x_T").to(device or shape_or_x_T.device)
    else:
        if len(tuple(shape_or_x_T)) != 2:
            raise ShapeError(f"the sample shape must be (B, L), got {tuple(shape_or_x_T)}.")
        x = torch.full(tuple(shape_or_x_T), mask_id, dtype=torch.long, device=device)
    if (known is None) != (known_mask is None):
        raise ConfigError("infilling needs both known and known_mask (True where known).")
    if known is not None:
        x = guidance.infill(x, known, known_mask, mask_id)
    times = mask_times(schedule, x.shape[1] if steps is None else steps)
    if guidance_scale is not None:
        model = guidance.cfg(model, guidance_scale, null_cond)
    model_fn = model_function(model, mask_id, cond)
    shared = {"mask_id": mask_id, "generator": generator, "callback": callback}
    with torch.no_grad():
        x = fn(model_fn, x, times, schedule, temperature=temperature, **shared, **options)
    check_finite_result(x, model_fn.outputs_finite(), sampler)
    return x if known is None else torch.where(known_mask.to(x.device).bool(), known.to(x), x)
