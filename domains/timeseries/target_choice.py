"""``target="auto"``: pick the level, difference or seasonal target on the validation windows.

Each target is the residual of a naive point forecast: "difference" of the last value
(a random walk), "seasonal" of the value one season earlier, "level" of nothing but the
context's mean (the scaled level). The target whose naive forecast errs least on the
validation windows, by the sum of absolute errors over the sum of absolute values (the
weighting of CRPS and ND), leaves the diffusion the least to model, and is chosen. It costs
a pass over the windows' numbers, no training. Without validation windows the last windows
of the training range stand in for them; the test windows are never read.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .series import Split

AUTO = "auto"
MARGIN = 0.1  # the relative error a target reaching further back must save


def naive_forecast(history: np.ndarray, target: str, horizon: int, season: int, context: int):
    """The point forecast (Th, D) whose residual ``target`` is, after ``history`` (T, D)."""
    if target == "level":
        mean = np.nanmean(history[-context:], axis=0)  # (D,)
        return np.repeat(mean[None], horizon, axis=0)
    lag = 1 if target == "difference" else season
    past = history[-lag:]  # (lag, D)
    return np.stack([past[h % lag] for h in range(horizon)])  # (Th, D)


def choice_windows(split: Split, needed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(history, target) pairs of the validation windows, else of the training range's end.

    ``needed`` is the history the naive forecasts read; windows with less are skipped.
    """
    Th = split.prediction_length
    if split.validation:
        ends = [w.length for w in split.validation]
        values = split.validation[-1].values
    else:  # as many windows as fit, at most 5, at the end of the training range
        values = split.train.values
        count = min(5, (len(values) - needed) // Th)
        ends = [len(values) - k * Th for k in range(count - 1, -1, -1)]
    return [(values[: e - Th], values[e - Th : e]) for e in ends if e - Th >= needed]


def naive_errors(split: Split, season: int, context: int) -> dict[str, float]:
    """Relative absolute error of each target's naive forecast on the choice windows.

    "seasonal" is left out for a season of 1 (it is then "difference") and wherever the
    windows' histories are shorter than a season.
    """
    targets = ["level", "difference"] + (["seasonal"] if season > 1 else [])
    needed = max(context, season if season > 1 else 1)
    windows = choice_windows(split, needed)
    if not windows and season > 1:
        targets, windows = targets[:2], choice_windows(split, context)
    errors = {}
    for target in targets:
        error = scale = 0.0
        for history, actual in windows:
            guess = naive_forecast(history, target, len(actual), season, context)
            ok = np.isfinite(actual) & np.isfinite(guess)
            error += float(np.abs(actual - guess)[ok].sum())
            scale += float(np.abs(actual)[ok].sum())
        errors[target] = error / scale if scale > 0 else float("inf")
    return errors


def choose_target(split: Split, season: int, context: int) -> tuple[str, dict[str, float]]:
    """The target with the smallest naive error, and the errors.

    Level, difference and seasonal measure from ever further back; a later one is taken
    only where its naive error is at least ``MARGIN`` below the best of those before it,
    so a near tie (a random walk's value a week earlier errs about as little as its last
    value) keeps the simpler target.
    """
    errors = naive_errors(split, season, context)
    chosen = "level"
    for target in errors:
        if errors[target] < (1 - MARGIN) * errors[chosen]:
            chosen = target
    return chosen, errors


def describe_choice(target: str, errors: dict[str, float], season: int) -> str:
    """One line for the training log: what was chosen and on which numbers."""
    named = {"seasonal": f"seasonal ({season} steps)"}
    shown = ", ".join(f"{named.get(k, k)} {v:.4g}" for k, v in errors.items())
    return (
        f"target: {named.get(target, target)}, whose naive forecast errs least on the "
        f"validation windows (relative absolute error: {shown}); --target picks another."
    )


def chosen_target(config, split: Split):
    """``(config, record)``: the domain ``config`` with its network's target chosen by
    :func:`choose_target` on ``split``, and ``{"target", "errors"}`` for the run's settings.
    The choice is printed (one line)."""
    net = config.network
    target, errors = choose_target(split, net.season, net.context_length)
    print(describe_choice(target, errors, net.season), flush=True)
    network = dataclasses.replace(net, target=target)
    return dataclasses.replace(config, network=network), {"target": target, "errors": errors}
