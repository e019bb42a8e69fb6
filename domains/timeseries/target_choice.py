"""``target="auto"``: the level target, or differences where the level moves too little.

TimeGrad's level target divides each series by its context's mean |x|. Its conditional
spread is then about the series' typical one-step change over that scale: on exchange
rates about 0.003 (0.165 on ETTh1), below the reference schedule's smallest noise (sigma
0.01 at its first step), so the last denoising steps shrink it and the paths come out too
narrow. There the
difference target (the change from the previous step over the context's mean |change|),
whose spread is near 1, is taken. Elsewhere the level target is kept: its paths revert to
the level by themselves, where summed differences wander (ETTh1's four validation weeks:
CRPS-sum 0.196 for level against 0.199 for differences at 1,000 steps, 0.181 against 0.194
at 3,000; ``benchmarks/results/timeseries-tune.md``).

The rule reads the validation windows' histories (without validation windows, the end of
the training range), never the test windows, and costs a pass over their numbers. The
seasonal target is not a candidate: it won ETTh1's one validation week by the naive
forecast's error and then lost on four weeks (0.212) and on the test week.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diffkit.schedules import from_config

from .series import Split

AUTO = "auto"
SPREAD_FLOOR = 3.0  # level only where its spread is this many times the smallest noise


def choice_windows(split: Split, needed: int) -> list[np.ndarray]:
    """Histories (T, D) of the validation windows, else of the training range's end.

    ``needed`` is the history the rule reads; windows with less are skipped.
    """
    Th = split.prediction_length
    if split.validation:
        ends = [w.length for w in split.validation]
        values = split.validation[-1].values
    else:  # as many windows as fit, at most 5, at the end of the training range
        values = split.train.values
        count = min(5, (len(values) - needed) // Th)
        ends = [len(values) - k * Th for k in range(count - 1, -1, -1)]
    return [values[: e - Th] for e in ends if e - Th >= needed]


def level_spread(split: Split, context: int) -> float:
    """The median, over choice windows and series, of the context's mean |one-step change|
    over its mean |value|: the level target's typical step in its own (scaled) units."""
    ratios = []
    for history in choice_windows(split, context + 1):
        past = history[-context - 1 :]  # (context + 1, D)
        with np.errstate(invalid="ignore", divide="ignore"):
            change = np.nanmean(np.abs(np.diff(past, axis=0)), axis=0)  # (D,)
            ratios.append(change / np.nanmean(np.abs(past), axis=0))
    ratios = np.concatenate(ratios) if ratios else np.array([])
    ratios = ratios[np.isfinite(ratios)]
    return float(np.median(ratios)) if ratios.size else float("inf")


def smallest_noise(schedule: dict) -> float:
    """The noise standard deviation of ``schedule`` (``Schedule.config()`` data) at its first
    step, the least the sampler's last step leaves."""
    s = from_config(schedule)
    return float(s.alpha_sigma_at(s.t_min)[1])


def choose_target(split: Split, context: int, sigma_min: float) -> tuple[str, dict[str, float]]:
    """The target: differences where the level's spread is under ``SPREAD_FLOOR *
    sigma_min``, else the level; and the two numbers compared."""
    spread, floor = level_spread(split, context), SPREAD_FLOOR * sigma_min
    return ("difference" if spread < floor else "level"), {"spread": spread, "floor": floor}


def describe_choice(target: str, numbers: dict[str, float]) -> str:
    """One line for the training log: what was chosen and on which numbers."""
    side = "below" if target == "difference" else "at least"
    return (
        f"target: {target}, since the scaled level's typical one-step change "
        f"{numbers['spread']:.3g} is {side} {SPREAD_FLOOR:g}x the schedule's smallest noise "
        f"({numbers['floor']:.3g}) on the validation windows; --target picks another."
    )


def chosen_target(config, split: Split):
    """``(config, record)``: the domain ``config`` with its network's target chosen by
    :func:`choose_target` on ``split``, and ``{"target", "spread", "floor"}`` for the run's
    settings. The choice is printed (one line)."""
    net = config.network
    target, numbers = choose_target(split, net.context_length, smallest_noise(net.schedule))
    print(describe_choice(target, numbers), flush=True)
    network = dataclasses.replace(net, target=target)
    return dataclasses.replace(config, network=network), {"target": target, **numbers}
