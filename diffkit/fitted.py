"""A checkpoint's fitted step schedules: fit them, store them, sample with them.

``diffkit fit-steps --checkpoint R --sampler dpmpp_2m --nfe 10`` fits the steps to the
checkpoint's own ``generate`` (its network, conditioning and domain, whatever they are) with
:func:`diffkit.sampling.fit.fit_times`, and stores them in that checkpoint's ``config.json``
under ``fitted_steps[sampler][str(nfe)]``, rewritten atomically (a kill leaves the old file
whole). ``--spacing fitted`` on ``sample``, ``evaluate`` and ``forecast`` reads them back.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from diffkit import checkpoint as ckpt
from diffkit.errors import ConfigError, DataError, check_choice
from diffkit.sampling.fit import REFERENCE_SAMPLER, FitResult, fit_times, reference_times
from diffkit.sampling.timesteps import FITTED, SPACINGS, fitted_entry, using_spacing

KEY = "fitted_steps"
CHOICES = (*SPACINGS, FITTED)


def stored(config: dict) -> dict:
    """``{sampler: {str(nfe): entry}}`` of a checkpoint config (empty when none was fitted)."""
    table = config.get(KEY) or {}
    return table if isinstance(table, dict) else {}


def spacing_context(found: ckpt.Checkpoint, spacing: str | None, sampler=None, steps=None):
    """A context in which the domain's ``sample()`` calls use ``spacing`` (None: unchanged).

    For ``"fitted"`` with a known ``sampler`` and ``steps`` (model calls), a missing entry
    is a ConfigError naming ``diffkit fit-steps`` before any work is done.
    """
    if spacing is None:
        return contextlib.nullcontext()
    check_choice("spacing", spacing, CHOICES)
    table, where = stored(found.config), str(found.path)
    if spacing == FITTED and (sampler is not None or not table):
        fitted_entry(table, sampler, steps, where)
    return using_spacing(spacing, table, where)


def store(ckpt_dir: Path, result: FitResult, nfe: int, **extra) -> Path:
    """Add ``result`` to the checkpoint's ``config.json`` (atomically); returns the file."""
    config = ckpt.read_config(ckpt_dir)
    table = stored(config)
    table.setdefault(result.sampler, {})[str(nfe)] = {**result.to_json(), **extra}
    config[KEY] = table
    path = Path(ckpt_dir) / "config.json"
    ckpt.write_json_atomic(path, config)
    return path


def fit_checkpoint(
    checkpoint: Path | str,
    *,
    sampler: str = "dpmpp_2m",
    nfe: int = 10,
    n: int = 1024,
    reference_steps: int = 500,
    seed: int = 0,
    ema: bool = True,
    max_evals: int | None = None,
    device="auto",
) -> tuple[Path, FitResult]:
    """Fit ``sampler``'s ``nfe``-call steps to a checkpoint and store them in it.

    The calibration batch is ``n`` samples of the domain's own ``generate`` with seed
    ``seed``: every candidate schedule and the reference (DPM-Solver++(3M) with
    ``reference_steps`` steps of :func:`~diffkit.sampling.fit.reference_times`) start from the
    same noise and conditioning.
    """
    from diffkit.devices import generator_on
    from diffkit.inference import _context

    if not 1 <= n <= 1_000_000:
        raise ConfigError(f"--n must lie in 1..1000000, got {n}.")
    if not 2 <= reference_steps <= 100_000:
        raise ConfigError(f"--reference-steps must lie in 2..100000, got {reference_steps}.")
    domain, net, schedule, found, common = _context(checkpoint, ema, device, seed)
    device = next(net.parameters()).device

    def run(times, name=sampler):
        with using_spacing(times):
            x = domain.generate(net, schedule, n, sampler=name, steps=len(times), options=None,
                                **{**common, "generator": generator_on(device, seed)})  # fmt: skip
        if not isinstance(x, torch.Tensor):
            raise DataError(
                f"domain {domain.name!r} does not sample tensors, so its steps cannot be "
                "fitted; fit-steps works for Gaussian samplers of tensor domains."
            )
        return x

    with torch.no_grad():
        reference = run(reference_times(schedule, reference_steps), REFERENCE_SAMPLER)
        result = fit_times(run, reference, schedule, sampler, nfe, max_evals=max_evals)
    path = store(found.path, result, nfe, n=n, seed=seed, reference_steps=reference_steps)
    return path, result
