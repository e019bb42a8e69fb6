"""The toy domain's benchmark: every sampler on the exact Gaussian mixture, diffusers beside.

Both libraries sample with the *exact* eps of the noised mixture on DDPM's linear schedule
(T = 1000), so what differs is the sampler alone. diffusers' schedulers read the noise
level from their own tables (:mod:`diffkit.bench.diffusers_ref`). Scores: sliced
Wasserstein-1 (128 fixed directions) averaged over three exact sample sets of the same
size, and the mode-weight total variation; the floor is the same score of fresh exact
samples (mean of three draws).
"""

from __future__ import annotations

import time
from functools import partial

import torch

import diffkit
from diffkit import schedules, toy
from diffkit.bench import NOT_INSTALLED, Case, Context, Counted, fitted, result, row, steps_for
from diffkit.bench import diffusers_ref as ref

from . import overhead, targets, trained

SAMPLES = {"smoke": 2000, "quick": 6000, "full": 20_000}
FIT_NFES = (5, 10)  # the budgets whose steps are fitted (of those the run asks for)
# suite -> calibration samples of a fit, and its sampling runs per fitted step
FIT = {"smoke": (256, 12), "quick": (1024, 40), "full": (2048, 80)}
UNIT = "sliced W1 to exact samples (data units)"


class FixedNoise:
    """A schedule stand-in with one (alpha, sigma), to evaluate the exact eps there."""

    def __init__(self, alpha: float, sigma: float):
        self.alpha, self.sigma = alpha, sigma

    def alpha_sigma(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.full_like(t, self.alpha), torch.full_like(t, self.sigma)


def score(mix: toy.GaussianMixture, x, exact: list) -> dict[str, float]:
    """Mean sliced W1 to each exact set (the same 128 directions every time), and mode TV."""
    sw = [toy.sliced_wasserstein(x, e, 128, torch.Generator().manual_seed(1)) for e in exact]
    return {"sw1": sum(sw) / len(sw), "mode_tv": mix.mode_tv(x)}


def spacings(sampler: str) -> list[str]:
    """diffkit's step placements to run: trailing, plus those diffusers has a variant for."""
    return ["trailing", *(s for m, s in ref.VARIANTS if m == sampler)]


def exact(mix, schedule, context: Context) -> tuple:
    """The mixture's exact eps: ``(net, eps_at, extra)``, with ``eps_at(x, alpha, sigma)``
    read at a diffusers scheduler's own noise level (no rounding to a time step)."""

    def eps_at(x, alpha, sigma):
        return mix.eps(x, torch.zeros(()), FixedNoise(alpha, sigma))

    return mix.denoiser(schedule), eps_at, {}


def run_mixture(make, n: int, context: Context, network=exact) -> dict:
    """Every (sampler, spacing, NFE) of both libraries on the mixture ``make()``, sampling
    the model ``network(mix, schedule, context)`` builds (:func:`exact` or a trained one)."""
    mix, schedule = make(), schedules.linear()
    g = torch.Generator().manual_seed(context.seed)
    exact = [mix.sample(n, g) for _ in range(3)]
    floors = [score(mix, mix.sample(n, g), exact) for _ in range(3)]
    floor = {k: sum(f[k] for f in floors) / 3 for k in floors[0]}
    x_T = torch.randn(n, mix.dim, generator=g)
    net, eps_at, extra = network(mix, schedule, context)
    have_ref = ref.installed()
    rows = []
    for sampler in context.samplers:
        for spacing in spacings(sampler):
            method = sampler if spacing == "trailing" else f"{sampler} ({spacing})"
            for nfe in context.nfes:
                steps = steps_for(sampler, nfe, schedule.T)
                counted, t0 = Counted(net), time.perf_counter()
                x = diffkit.sample(
                    counted,
                    x_T,
                    schedule,
                    sampler=sampler,
                    steps=steps,
                    spacing=spacing,
                    generator=torch.Generator().manual_seed(context.seed + 2),
                )
                wall = time.perf_counter() - t0
                rows.append(
                    row(
                        "diffkit",
                        method,
                        counted.calls,
                        nfe_budget=nfe,
                        steps=steps,
                        wall_s=wall,
                        **score(mix, x, exact),
                    )
                )
                if have_ref and sampler in ref.COUNTERPARTS:
                    rows.append(
                        reference_row(
                            sampler, spacing, method, nfe, eps_at, mix, x_T, exact, context
                        )
                    )
                context.advance()
    notes = fitted_rows(rows, mix, schedule, net, x_T, exact, context)
    references = {"diffusers": "ok" if have_ref else NOT_INSTALLED, "exact samples": "ok"}
    model = "exact eps" if not extra else f"the toy MLP trained {extra['train']['steps']} steps"
    setup = (
        f"{n} samples of {mix.dim}-D mixture of {len(mix.weights)}, linear schedule T=1000, "
        f"{model}; diffkit and diffusers both 'trailing' unless the method names a spacing "
        f"(diffusers {ref.version() or 'not installed'}: use_lu_lambdas for logsnr, "
        "use_karras_sigmas for karras)."
    )
    return result(
        rows,
        references,
        floor=floor,
        setup=setup,
        floor_label="exact samples",
        notes=notes,
        **extra,
    )


def fitted_rows(rows, mix, schedule, net, x_T, exact, context) -> list[str]:
    """Add every fixed spacing's and the fitted steps' rows of :data:`fitted.SAMPLER` at
    :data:`FIT_NFES` to ``rows`` (the fit on its own calibration noise); returns the notes."""
    sampler, seed = fitted.SAMPLER, context.seed + 2
    if sampler not in context.samplers:
        return []
    g = torch.Generator().manual_seed(context.seed + fitted.CALIBRATION_SEED)
    size, evals = FIT[context.suite]
    calibration = torch.randn(size, mix.dim, generator=g)

    def evaluate(spacing, steps, name=sampler):
        counted = Counted(net)
        x = diffkit.sample(counted, x_T, schedule, sampler=name, steps=steps, spacing=spacing,
                           generator=torch.Generator().manual_seed(seed))  # fmt: skip
        return counted.calls, score(mix, x, exact)

    notes = []
    for nfe in (n for n in FIT_NFES if n in context.nfes):
        steps = steps_for(sampler, nfe, schedule.T)
        fit = fitted.fit(net, schedule, sampler=sampler, nfe=nfe, x_T=calibration, seed=seed,
                         max_evals=evals * steps)  # fmt: skip
        rows += fitted.compare(evaluate, fit, rows, sampler=sampler, nfe=nfe, steps=steps,
                               target=schedule)  # fmt: skip
        notes.append(fitted.note(rows, "sw1", sampler=sampler, nfe=nfe))
    return notes


def reference_row(sampler, spacing, method, nfe, eps_at, mix, x_T, exact, context) -> dict:
    """diffusers' counterpart of ``sampler`` (and ``spacing``) on the same start noise."""
    steps, schedule = ref.steps_for(sampler, nfe), schedules.linear()
    counted, t0 = Counted(eps_at), time.perf_counter()
    name = ref.COUNTERPARTS[sampler][0]
    try:
        x = ref.sample(
            sampler,
            counted,
            x_T,
            schedule.alphas_cumprod,
            steps,
            variant=ref.VARIANTS.get((sampler, spacing)),
            generator=torch.Generator().manual_seed(context.seed + 2),
        )
        values = score(mix, x, exact)
    except Exception as e:  # a setting a scheduler refuses: recorded, not fatal
        values = {"sw1": None, "mode_tv": None, "error": f"{type(e).__name__}: {e}"}
    wall = time.perf_counter() - t0
    return row(
        "diffusers",
        method,
        counted.calls,
        nfe_budget=nfe,
        steps=steps,
        scheduler=name,
        wall_s=wall,
        **values,
    )


def cases(suite: str) -> list[Case]:
    """The toy cases of ``suite``: the 2-D ring always; beyond smoke the 16-D mixture, the
    ring sampled through a trained MLP (:mod:`.trained`) and the per-step overhead."""
    problems = {"ring": ("8-mode 2-D ring, exact denoiser", toy.ring, exact)}
    if suite != "smoke":
        problems["mixture16"] = (
            "16-D mixture of 8, exact denoiser",
            partial(toy.random_mixture, 16, 8),
            exact,
        )
        steps = trained.STEPS[suite]
        problems["ring-mlp"] = (
            f"8-mode 2-D ring, the toy MLP trained {steps} steps",
            toy.ring,
            partial(trained.mlp, steps),
        )

    def run(make, network):
        run = partial(run_mixture, make, SAMPLES[suite], network=network)
        return targets.noted(run) if network is exact else run  # targets: the exact eps

    return [
        Case(
            domain="toy",
            name=name,
            title=title,
            metric="sw1",
            unit=UNIT,
            references=("diffusers", "exact samples"),
            run=run(make, network),
            metrics=("mode_tv",),
            labels={"mode_tv": "mode-weight total variation (fraction of samples)"},
        )
        for name, (title, make, network) in problems.items()
    ] + ([overhead.case(suite)] if suite != "smoke" else [])
