"""Masked (absorbing-state) diffusion: the discrete process beside the Gaussian one.

The Gaussian process blurs x_0 into noise, ``x_t = alpha_t x_0 + sigma_t eps``. The masking
process erases it token by token: at time ``t in [0, 1]`` each token of x_0 (B, L) is kept
with probability ``alpha_t`` and replaced by a mask token otherwise, independently per
position, until everything is masked at ``t = 1`` (D3PM's absorbing state, Austin et al.
2021, in MDLM's continuous time, Sahoo et al. 2024). The pieces mirror the Gaussian ones:

- a **schedule** is nothing but ``t -> alpha_t`` (:mod:`.schedules`: ``linear``,
  ``loglinear``, ``cosine``), with ``alpha'`` in closed form;
- a **network** is ``net(x_t, t, **cond) -> logits (B, L, V)`` over x_0, the mask id one of
  the V; :func:`carry_over` makes it MDLM's SUBS distribution (the mask is never predicted,
  unmasked tokens are copied), so only its logits at masked positions matter;
- the **loss** is the continuous-time bound, a cross-entropy on the masked positions weighed
  by ``-alpha'(t) / (1 - alpha_t)`` (:func:`masked_diffusion_loss`, per example, in nats);
  :func:`nll_bound` integrates it over t into an NLL bound in nats and bits per token;
- **samplers** unmask from all-masks to x_0 with one signature and a registry
  (``ancestral``, ``cached``, ``maskgit``) behind a :func:`sample` front door with
  classifier-free guidance on logits and infilling (known tokens are never masked).

Nothing here knows what a token means: a domain brings the vocabulary, the mask id and the
network. :mod:`.toy` has small token distributions with their exact denoisers for tests.
"""

from diffkit.discrete import ancestral, maskgit, schedules, toy  # noqa: F401  (register samplers)
from diffkit.discrete.base import mask_times, model_function
from diffkit.discrete.front import sample
from diffkit.discrete.guidance import cfg, infill
from diffkit.discrete.loss import (
    NLLBound,
    masked_cross_entropy,
    masked_diffusion_loss,
    nll_bound,
    stratified_t,
)
from diffkit.discrete.process import carry_over, q_sample
from diffkit.discrete.registry import SAMPLERS, get_sampler, register
from diffkit.discrete.schedules import MaskSchedule, get_schedule

__all__ = [
    "SAMPLERS",
    "MaskSchedule",
    "NLLBound",
    "carry_over",
    "cfg",
    "get_sampler",
    "get_schedule",
    "infill",
    "mask_times",
    "masked_cross_entropy",
    "masked_diffusion_loss",
    "model_function",
    "nll_bound",
    "q_sample",
    "register",
    "sample",
    "schedules",
    "stratified_t",
    "toy",
]
