"""The sampler tables and the diffusers driver that ``benchmarks/fit_steps.py`` runs.

They were part of the old ``benchmarks/samplers.py``, which is now a thin caller of the toy
bench cases; ``fit_steps.py`` still compares every sampler variant and every diffusers
spacing, so it keeps them here until its study moves into the bench cases too. Scoring is
the toy case's (:func:`diffkit.domains.toy.bench.score`), the loop diffusers' own
(:func:`diffkit.bench.diffusers_ref.loop`).
"""

from __future__ import annotations

import os
import time

import diffusers
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)

from diffkit.bench.diffusers_ref import loop
from diffkit.domains.toy.bench import FixedNoise
from diffkit.domains.toy.bench import score as toy_score

# diffkit sampler -> (options, model calls for `steps` times)
DIFFKIT = {
    "ddpm": ({}, lambda n: n),
    "ddim": ({}, lambda n: n),
    "euler": ({}, lambda n: n),
    "heun": ({}, lambda n: 2 * n - 1),
    "dpmpp_2m": ({}, lambda n: n),
    "dpmpp_3m": ({}, lambda n: n),
    "dpmpp_2s": ({}, lambda n: 2 * n - 1),
    "dpm_solver-2": ({"order": 2}, lambda n: 2 * n - 1),
    "dpm_solver-3": ({"order": 3}, lambda n: 3 * n - 2),
    "unipc-2": ({"order": 2}, lambda n: n),
    "unipc-3": ({"order": 3}, lambda n: n),
    "sde_euler": ({}, lambda n: n),
    "pc": ({"n_corrector": 1}, lambda n: 2 * n),  # one predictor and one corrector call
    "langevin": ({"n_steps_each": 5}, lambda n: 5 * n + 1),  # plus the final denoising call
}
# name -> (scheduler class, config, model calls for `steps` steps, timestep spacings tried)
DIFFUSERS = {
    "DDPM": (DDPMScheduler, {}, lambda n: n, ("leading", "trailing")),
    "DDIM": (DDIMScheduler, {}, lambda n: n, ("leading", "trailing")),
    "Euler": (EulerDiscreteScheduler, {}, lambda n: n, ("linspace", "trailing")),
    "Heun": (HeunDiscreteScheduler, {}, lambda n: 2 * n - 1, ("linspace", "trailing")),
    "DPM++2M": (DPMSolverMultistepScheduler, {}, lambda n: n, ("linspace", "trailing")),
    "DPM++2M-karras": (
        DPMSolverMultistepScheduler,
        {"use_karras_sigmas": True},
        lambda n: n,
        ("linspace",),
    ),
    "UniPC": (UniPCMultistepScheduler, {}, lambda n: n, ("linspace", "trailing")),
}


def score(mix, x, exact_sets) -> tuple[float, float]:
    """(sliced W1, mode TV) of ``x``, as the toy bench case scores it."""
    s = toy_score(mix, x, exact_sets)
    return s["sw1"], s["mode_tv"]


def run_diffusers(cls, config, spacing, steps, mix, x, schedule):
    """diffusers' scheduler ``cls`` with ``timestep_spacing=spacing`` on the exact eps of ``mix``;
    the model reads the scheduler's own VE sigma where it has them, else ``alphas_cumprod[t]``."""
    sched = cls(beta_schedule="linear", timestep_spacing=spacing, **config)
    sched.alphas_cumprod = schedule.alphas_cumprod.clone()  # float64, before set_timesteps
    sched.set_timesteps(steps)

    def eps_fn(x_in, t):
        if hasattr(sched, "sigmas"):
            s_ve = float(sched.sigmas[sched.step_index or 0])
            alpha = (1 + s_ve**2) ** -0.5
            return mix.eps(x_in, torch.zeros(()), FixedNoise(alpha, s_ve * alpha))
        return mix.eps(x_in, t.double(), schedule)

    return loop(sched, eps_fn, x)


def environment() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "load": [os.getloadavg()[0]],
    }
