"""``diffkit.sample``: one call from a network and a schedule to clean samples."""

from __future__ import annotations

import functools
import inspect

import torch

from diffkit import guidance  # a module reference: guidance itself imports sampling.base
from diffkit.errors import ConfigError, DataError
from diffkit.sampling.base import model_function, randn_like
from diffkit.sampling.calls import steps_for
from diffkit.sampling.given import read_given
from diffkit.sampling.registry import get_sampler
from diffkit.sampling.timesteps import resolve_times
from diffkit.schedules import Schedule

Tensor = torch.Tensor


def initial_noise(shape, schedule: Schedule, *, generator=None, device=None, dtype=None) -> Tensor:
    """x_T with the marginal's scale for unit-variance data: ``sqrt(alpha^2 + sigma^2)``."""
    alpha, sigma = schedule.alpha_sigma(torch.tensor(schedule.t_max))
    scale = float((alpha**2 + sigma**2).sqrt())
    x = torch.empty(tuple(shape), device=device, dtype=dtype or torch.float32)
    return scale * randn_like(x, generator)


@functools.cache
def option_names(fn) -> tuple[str, ...]:
    """The options of sampler ``fn``: its keyword parameters beyond the shared signature.

    Shared by the Gaussian and the masked samplers (whose signature adds ``mask_id``).
    """
    shared = {"model_fn", "x", "times", "schedule", "mask_id", "generator", "callback"}
    return tuple(p for p in inspect.signature(fn).parameters if p not in shared)


def check_options(fn, name: str, options: dict) -> None:
    """Raise a ConfigError naming any option the sampler ``name`` does not take."""
    valid = option_names(fn)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) or "none"
        raise ConfigError(f"sampler {name!r} has no option {unknown[0]!r}; its options: {listed}.")


def sample(
    model,
    x_T_or_shape,
    schedule: Schedule,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    nfe: int | None = None,
    spacing=None,
    times: Tensor | None = None,
    prediction: str = "eps",
    cond: dict | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback=None,
    device=None,
    dtype=None,
    guidance_scale: float | None = None,
    null_cond: dict | None = None,
    known: Tensor | None = None,
    mask: Tensor | None = None,
    x0_transform=None,
    **options,
) -> Tensor:
    """Run ``sampler`` from noise to data and return x_0.

    Parameters
    ----------
    model
        Called as ``model(x_t, t, **cond)`` with ``t`` of shape (B,); returns a
        ``prediction``-type tensor ("eps", "x0", "v" or "score") with x_t's shape.
    x_T_or_shape
        The starting noise, or a shape to draw it for (scaled to the schedule's x_T).
    steps, spacing, times
        How many evaluation times and where (see :func:`timesteps`); default all T steps
        of a discrete schedule, 1000 for a continuous one. ``spacing`` is a name or
        explicit times (a fitted schedule); None takes :func:`using_spacing`'s, else
        ``trailing``. ``times`` overrides both. A time is one network call for DDPM, DDIM,
        Euler, DPM-Solver++ 2M/3M, UniPC and the reverse SDE; Heun and DPM-Solver++ 2S make
        ``2 * steps - 1`` calls, DPM-Solver of order k ``k * (steps - 1) + 1``, the
        predictor-corrector ``n_corrector + 1`` per time, annealed Langevin
        ``n_steps_each`` per time plus one, RePaint one per step down
        (:mod:`diffkit.sampling.calls`).
    nfe
        A budget of network calls instead of ``steps``: the most times whose calls stay
        within it, so samplers with several calls per step get the same compute.
    guidance_scale, null_cond
        Classifier-free guidance (:func:`diffkit.guidance.cfg`): 0 unconditional, 1
        conditional, above 1 guided; ``null_cond`` replaces entries of ``cond``.
    known, mask
        Inpainting / imputation (:func:`diffkit.guidance.with_known`): entries where
        ``mask`` is 1 are fixed to ``known``; ``sampler="repaint"`` adds RePaint's jumps.
    x0_transform
        A function applied to every x0 prediction, e.g.
        :func:`diffkit.guidance.dynamic_threshold` or a clamp.
    options
        Passed to the sampler, e.g. ``eta=0.5`` for DDIM.

    Everything runs on x's device (``device``, or that of ``x_T``), and no step asks the host
    for a value: the only synchronisations are the NaN checks of x_T and, once at the end, of
    the result and of the model's outputs (a flag kept on the device). A ``generator`` on
    x's device draws the noise there; one on another device (a CPU generator for results
    that agree across devices) draws there and copies each draw.

    Examples
    --------
    >>> x0 = diffkit.sample(net, (16, 2), diffkit.schedules.linear(), sampler="ddim", steps=50)
    """
    fn = get_sampler(sampler)
    options = {**read_given(fn, sampler, check_options), **options}  # --sampler-option
    check_options(fn, sampler, options)
    if cond is not None and not isinstance(cond, dict):
        raise ConfigError(f"cond must be a dict of keyword arguments, got {type(cond).__name__}.")
    if isinstance(x_T_or_shape, Tensor):
        x = x_T_or_shape.to(device=device or x_T_or_shape.device, dtype=dtype or x_T_or_shape.dtype)
        if not torch.isfinite(x).all():
            raise DataError("the starting noise x_T contains NaN or inf; pass finite values.")
    else:
        x = initial_noise(x_T_or_shape, schedule, generator=generator, device=device, dtype=dtype)
    if nfe is not None:
        if steps is not None or times is not None:
            raise ConfigError("pass one of steps, nfe or times, not several; drop the others.")
        cap = schedule.T if schedule.discrete else None
        steps = steps_for(sampler, nfe, cap, **options)
    if times is None:
        times = resolve_times(schedule, sampler, steps, spacing)
    else:
        times = schedule.check_t(times).cpu()  # the samplers read them as floats
    if guidance_scale is not None:
        model = guidance.cfg(model, guidance_scale, null_cond)
    model_fn = network_fn = model_function(model, schedule, prediction, cond, at=times, like=x)
    if x0_transform is not None:
        model_fn = guidance.with_x0_transform(model_fn, schedule, x0_transform)
    if (known is None) != (mask is None):
        raise ConfigError("inpainting needs both known and mask (1 where known); pass both.")
    if known is not None:
        known, mask = guidance.broadcast_known(known.to(x), mask.to(x), x.shape)
        model_fn = guidance.with_known(model_fn, schedule, known, mask, generator)
    if progress:
        callback = _with_progress_bar(callback, len(times), sampler)
    with torch.no_grad():
        x = fn(model_fn, x, times, schedule, generator=generator, callback=callback, **options)
    check_finite_result(x, network_fn.outputs_finite(), sampler)
    return x if known is None else mask * known + (1 - mask) * x


def check_finite_result(x: Tensor, outputs_finite: Tensor | None, sampler: str) -> None:
    """A DataError naming ``sampler`` if ``x`` or any model output holds NaN or inf: one
    host synchronisation per sampling call (the steps themselves never sync)."""
    ok = torch.isfinite(x).all()
    if outputs_finite is not None:
        ok = ok & outputs_finite
    if bool(ok):
        return
    if outputs_finite is not None and not bool(outputs_finite):
        raise DataError(
            f"sampler {sampler!r} got NaN or inf predictions from the model during sampling; "
            "check the model's weights and inputs (cond, guidance scale), or retrain it."
        )
    raise DataError(
        f"sampler {sampler!r} ended with NaN or inf values though the model's outputs were "
        "finite: the steps diverged; use more steps or another sampler or spacing."
    )


def _with_progress_bar(callback, total: int, label: str):
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(f"sampling ({label})", total=total)
    bar.start()

    def advance(state):
        bar.advance(task)
        if state["i"] == total - 1:
            bar.stop()
        if callback is not None:
            callback(state)

    return advance
