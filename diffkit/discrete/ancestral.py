"""Ancestral unmasking: draw from the posterior q(x_s | x_t, x0_hat) at each step.

For a masked token, q(x_s | x_t, x_0) unmasks it to x_0 with probability
``(alpha_s - alpha_t) / (1 - alpha_t)`` and keeps the mask otherwise (Austin et al. 2021;
Sahoo et al. 2024, eq. 7); unmasked tokens never change. Both samplers draw the same
uniforms in the same order, so for one seed they agree whenever the network ignores t.
"""

from __future__ import annotations

from diffkit.discrete.base import draw, report, trajectory
from diffkit.discrete.process import rand
from diffkit.discrete.registry import register


@register("ancestral")
def ancestral(
    model_fn, x, times, schedule, *, mask_id, generator=None, callback=None, temperature=1.0
):
    """D3PM / MDLM ancestral sampler (Sahoo et al. 2024, eq. 7), one network call a step."""
    alphas = trajectory(schedule, times)
    for i, t in enumerate(times):
        a_t, a_s = alphas[i], alphas[i + 1]
        logits = model_fn(x, t)  # (B, L, V)
        x = unmask_some(x, logits, (a_s - a_t) / (1 - a_t), mask_id, temperature, generator)
        report(callback, i, t, x, logits)
    return x


@register("cached")
def cached(
    model_fn, x, times, schedule, *, mask_id, generator=None, callback=None, temperature=1.0
):
    """MDLM's cached ancestral sampler (Sahoo et al. 2024, sec. 3.3): no call while x is unchanged.

    Exact for a network that ignores t (as MDLM's does). It calls the network only after a
    step that changed some token of the batch, so at most ``B * L + 1`` times however many
    steps; with many steps and a small batch most steps change nothing.
    """
    alphas = trajectory(schedule, times)
    logits, changed = None, True
    for i, t in enumerate(times):
        a_t, a_s = alphas[i], alphas[i + 1]
        if changed:
            logits = model_fn(x, t)  # (B, L, V)
        new = unmask_some(x, logits, (a_s - a_t) / (1 - a_t), mask_id, temperature, generator)
        changed, x = bool((new != x).any()), new
        report(callback, i, t, x, logits)
    return x


def unmask_some(x, logits, chance: float, mask_id: int, temperature: float, generator):
    """Unmask each masked token with probability ``chance``, drawing it from ``logits``.

    The uniforms are drawn for every position whatever happens, so the random stream does
    not depend on the probabilities; the categorical draws run on the unmasked ones only.
    """
    unmask = (x == mask_id) & (rand(x.shape, generator, x.device) < chance)  # (B, L)
    u = rand(x.shape, generator, x.device)  # (B, L)
    if not unmask.any():
        return x
    x = x.clone()
    x[unmask] = draw(logits[unmask], mask_id, temperature, u[unmask])[0]  # (n,) from (n, V)
    return x
