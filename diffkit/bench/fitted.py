"""Fitted step schedules in a bench case: one fit, scored beside every fixed spacing.

A case fits one sampler's steps (:func:`diffkit.sampling.fit.fit_times`) on a *calibration*
batch, whose noise is drawn with a seed different from the evaluation x_T, so the fit never
sees the noise it is scored on. :func:`fit` (a model function) or :func:`fit_run` (any
``run(times) -> samples``, e.g. a forecaster that samples once per forecast step) time the
fit in CPU seconds (``time.process_time``) and wall seconds. :func:`compare` then scores,
through the case's own ``evaluate``, every fixed spacing of :data:`SPACINGS` the case has no
row for yet, and the fitted times, as rows ``"<sampler> (<spacing>)"`` and
``"<sampler> fitted"``; :func:`note` says in one markdown line how the fitted row does
against the best fixed spacing at that NFE, and what the fit cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from diffkit.bench.case import row
from diffkit.errors import ConfigError
from diffkit.sampling.fit import REFERENCE_SAMPLER, fit_times, reference_spacing, reference_times
from diffkit.sampling.timesteps import SPACINGS
from diffkit.schedules import Schedule

Tensor = torch.Tensor
SAMPLER = "dpmpp_2m"  # the sampler whose steps the cases fit
REFERENCE_STEPS = 200  # steps of the reference solve (DPM-Solver++(3M), fit.reference_times)
SPACING_WORDS = {"logsnr": "log-SNR", "trailing": "integer"}  # of the reference's times
CALIBRATION_SEED = 1000  # added to the case's seed: never the evaluation noise's


@dataclass(frozen=True)
class Fitted:
    """Fitted evaluation times (descending) and what the fit cost."""

    times: list[float]
    cpu_s: float
    wall_s: float
    record: dict[str, Any] = field(default_factory=dict)  # sampler, nfe, error, start, ...


def method(sampler: str, spacing: str) -> str:
    """A row's method name: the sampler alone for ``trailing`` (every case's default)."""
    return sampler if spacing == "trailing" else f"{sampler} ({spacing})"


def fitted_method(sampler: str) -> str:
    return f"{sampler} fitted"


def fit(
    model: Callable,
    schedule: Schedule,
    *,
    sampler: str,
    nfe: int,
    x_T: Tensor,
    cond: dict | None = None,
    prediction: str = "eps",
    reference_steps: int = REFERENCE_STEPS,
    max_evals: int | None = None,
    seed: int = 0,
) -> Fitted:
    """Fit ``sampler``'s ``nfe``-call steps to ``model(x, t, **cond)`` from calibration ``x_T``.

    ``x_T`` must be drawn with a seed different from the evaluation noise (see
    :data:`CALIBRATION_SEED`); ``seed`` seeds the sampler's generator on every run.
    """
    from diffkit.sampling.front import sample

    def run(times, name=sampler):
        g = torch.Generator(device=x_T.device).manual_seed(seed)
        return sample(model, x_T, schedule, sampler=name, spacing=times, prediction=prediction,
                      cond=cond, generator=g)  # fmt: skip

    return fit_run(
        run, schedule, sampler=sampler, nfe=nfe, reference_steps=reference_steps,
        max_evals=max_evals,
    )  # fmt: skip


def fit_run(
    run: Callable[..., Tensor],
    schedule: Schedule,
    *,
    sampler: str,
    nfe: int,
    reference_steps: int = REFERENCE_STEPS,
    max_evals: int | None = None,
) -> Fitted:
    """Fit the steps of ``run(times, name=sampler) -> samples`` on its calibration batch.

    ``run`` must start every call from the same calibration noise and conditioning; it is
    called once with ``name=REFERENCE_SAMPLER`` on ``reference_times(schedule,
    reference_steps)`` for the reference, then with ``sampler``'s candidate times.
    """
    ref_times = reference_times(schedule, reference_steps)
    cpu, wall = time.process_time(), time.perf_counter()
    with torch.no_grad():
        reference = run(ref_times, name=REFERENCE_SAMPLER)
        res = fit_times(run, reference, schedule, sampler, nfe, max_evals=max_evals)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    record = {k: v for k, v in res.to_json().items() if k not in ("times", "seconds")}
    record["reference_steps"] = len(ref_times)
    record["reference_spacing"] = reference_spacing(schedule)
    return Fitted(times=res.times, cpu_s=cpu, wall_s=wall, record=record)


def compare(
    evaluate: Callable[[Any, int], tuple[int, dict]],
    fitted: Fitted,
    rows: list[dict],
    *,
    sampler: str,
    nfe: int,
    steps: int,
    target: Schedule | None = None,
) -> list[dict]:
    """The rows of each fixed spacing ``rows`` lacks at ``nfe``, and the fitted row.

    ``evaluate(spacing, steps, name=sampler) -> (model calls, metric values)`` samples the
    case's own evaluation x_T with sampler ``name`` and ``spacing`` (a name of
    :data:`SPACINGS`, or explicit times) and scores the result; ``steps`` is the fixed
    spacings' step count for ``nfe``. A spacing the schedule refuses at that count (a
    ConfigError) gets no row. With ``target`` (the schedule) the fitted row also holds the
    scores of the fit's target, the reference solve, on the evaluation noise (``target``):
    what the fitted steps approach.
    """
    have = {(r["library"], r["method"], r.get("nfe_budget")) for r in rows}
    out = []
    for spacing in SPACINGS:
        if ("diffkit", method(sampler, spacing), nfe) in have:
            continue
        try:
            calls, values = _timed(evaluate, spacing, steps)
        except ConfigError:
            continue
        out.append(row("diffkit", method(sampler, spacing), calls, nfe_budget=nfe, steps=steps,
                       spacing=spacing, **values))  # fmt: skip
    calls, values = _timed(evaluate, fitted.times, len(fitted.times))
    if target is not None:
        n = fitted.record["reference_steps"]
        _, aim = evaluate(reference_times(target, n), n, name=REFERENCE_SAMPLER)
        spacing = fitted.record.get("reference_spacing", "logsnr")
        values["target"] = {"sampler": REFERENCE_SAMPLER, "steps": n, "spacing": spacing, **aim}
    out.append(
        row(
            "diffkit",
            fitted_method(sampler),
            calls,
            nfe_budget=nfe,
            steps=len(fitted.times),
            spacing="fitted",
            times=fitted.times,
            fit_cpu_s=fitted.cpu_s,
            fit_wall_s=fitted.wall_s,
            fit=fitted.record,
            **values,
        )
    )
    return out


def _timed(evaluate, spacing, steps) -> tuple[int, dict]:
    t0 = time.perf_counter()
    calls, values = evaluate(spacing, steps)
    return calls, {"wall_s": time.perf_counter() - t0, **values}


def note(rows: list[dict], metric: str, *, sampler: str, nfe: int) -> str:
    """One markdown line: the fitted row against the best fixed spacing of ``sampler`` at
    ``nfe`` (lower ``metric`` is better), and the fit's cost."""
    names = {fitted_method(sampler): "fitted", **{method(sampler, s): s for s in SPACINGS}}
    mine = {
        names[r["method"]]: r
        for r in rows
        if r["library"] == "diffkit"
        and r.get("nfe_budget") == nfe
        and r["method"] in names
        and r.get(metric) is not None
    }
    if "fitted" not in mine:
        return f"Fitted steps, {sampler} at NFE {nfe}: no fitted row."
    fitted = mine.pop("fitted")
    if not mine:
        return f"Fitted steps, {sampler} at NFE {nfe}: no fixed spacing to compare with."
    best = min(mine, key=lambda s: mine[s][metric])
    ratio = fitted[metric] / mine[best][metric]
    verdict = (
        f"fitted {ratio:.2f}x the best fixed ({best})"
        if ratio < 1
        else f"does not beat the best fixed ({best}): {ratio:.2f}x"
    )
    fit, aim = fitted.get("fit", {}), fitted.get("target", {})
    if metric in aim:
        verdict += (
            f"; the fit's target, the model's own ODE solution ({aim['sampler']}, "
            f"{aim['steps']} {SPACING_WORDS[aim.get('spacing', 'logsnr')]} steps), scores "
            f"{aim[metric]:.4g}"
        )
    return (
        f"Fitted steps, {sampler} at NFE {nfe}: {metric} {fitted[metric]:.4g} against "
        f"{mine[best][metric]:.4g}, {verdict}; the fit cost {fitted['fit_cpu_s']:.1f} CPU s "
        f"({fitted['fit_wall_s']:.1f} s wall, {fit.get('evaluations', '?')} sampling runs on "
        "calibration noise the scores never use)."
    )
