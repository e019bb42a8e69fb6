"""Where the model is evaluated: ``timesteps(schedule, steps, spacing) -> times`` (descending).

For discrete schedules the spacings are diffusers' (``leading``, ``linspace``,
``trailing``; "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2);
for continuous ones every spacing is uniform in t from ``t_max`` down to ``t_min``.
"""

from __future__ import annotations

import numpy as np
import torch

from diffkit.errors import ConfigError, check_choice
from diffkit.schedules import Schedule

SPACINGS = ("leading", "linspace", "trailing")


def check_steps(schedule: Schedule, steps: int) -> int:
    """``steps`` if it is a whole number in range for ``schedule``, else a ConfigError."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be a positive whole number, got {steps!r}.")
    if schedule.discrete and steps > schedule.T:
        raise ConfigError(
            f"steps={steps} exceeds the schedule's T={schedule.T} training steps; "
            f"pass steps <= {schedule.T}."
        )
    return int(steps)


def timesteps(schedule: Schedule, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """``steps`` evaluation times from noisiest to cleanest, float64."""
    check_choice("spacing", spacing, SPACINGS)
    n = check_steps(schedule, steps)
    if not schedule.discrete:
        return torch.linspace(schedule.t_max, schedule.t_min, n, dtype=torch.float64)
    T = schedule.T
    if spacing == "leading":
        t = np.arange(0, n) * (T // n)
    elif spacing == "linspace":
        t = np.linspace(0, T - 1, n).round()
    else:  # trailing
        t = np.round(np.arange(T, 0, -T / n)) - 1
    t = np.sort(t)[::-1].copy()
    if len(np.unique(t)) != n:
        raise ConfigError(f"{spacing!r} spacing repeats a step for steps={n}; use 'trailing'.")
    return torch.from_numpy(t).to(torch.float64)
