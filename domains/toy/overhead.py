"""The toy domain's overhead case: what a sampling step costs beyond the network, diffusers beside.

The model returns zeros, so a sampling call costs only the sampler's own work: computing its
times and coefficients and updating x. Each point is the CPU time of this process for one
whole call divided by its steps, the median of ``reps`` repeats interleaved with the
diffusers counterpart's so both see the same load. diffusers' side is ``set_timesteps`` and
its step loop (:func:`diffkit.bench.diffusers_ref.loop`) on a scheduler built once on the
same schedule; diffkit's is one ``diffkit.sample`` call. Target: diffkit at most half of
diffusers' time per step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

import diffkit
from diffkit import schedules
from diffkit.bench import NOT_INSTALLED, Case, Context, Counted, result, row, steps_for
from diffkit.bench import diffusers_ref as ref

BATCHES = (1, 64)
REPS = {"smoke": 5, "quick": 15, "full": 31}
TARGET = 0.5  # diffkit's CPU time per step over diffusers'


def zero_eps(x: torch.Tensor, t) -> torch.Tensor:
    """A free model: eps = 0 for every x_t."""
    return torch.zeros_like(x)


def cpu_seconds(fn: Callable[[], object]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def interleaved(
    runs: dict[str, Callable[[], object]], reps: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """CPU seconds of each run, ``reps`` times in turn so every run sees the same load, and
    each run's wall seconds in all."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    walls = dict.fromkeys(runs, 0.0)
    for _ in range(reps):
        for name, run in runs.items():
            t0 = time.perf_counter()
            times[name].append(cpu_seconds(run))
            walls[name] += time.perf_counter() - t0
    return times, walls


def measure(sampler: str, nfe: int, batch: int, reps: int, have_ref: bool) -> dict[str, dict]:
    """Median µs per step, all repeats, steps and counted calls of each library at one point."""
    schedule = schedules.linear()
    x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(0))  # (B, 2)
    steps = {"diffkit": steps_for(sampler, nfe, schedule.T)}

    def ours(model=zero_eps):
        diffkit.sample(
            model, x, schedule, sampler=sampler, steps=steps["diffkit"], spacing="trailing"
        )

    runs = {"diffkit": ours}
    counted = {"diffkit": Counted(zero_eps)}
    if have_ref:
        steps["diffusers"] = ref.steps_for(sampler, nfe)
        sched = ref.scheduler(sampler, schedule.alphas_cumprod, steps["diffusers"])

        def theirs(model=zero_eps):
            sched.set_timesteps(steps["diffusers"])  # also resets a multistep history
            ref.loop(sched, model, x)

        runs["diffusers"], counted["diffusers"] = theirs, Counted(zero_eps)
    for name, run in runs.items():  # warm-up, counting the model calls
        run(counted[name])
    times, walls = interleaved(runs, reps)
    return {
        name: {
            "us": 1e6 * statistics.median(times[name]) / steps[name],
            "all_us": [1e6 * s / steps[name] for s in times[name]],
            "steps": steps[name],
            "calls": counted[name].calls,
            "wall_s": walls[name],
        }
        for name in runs
    }


def key(batch: int) -> str:
    return f"us_per_step_b{batch}"


def run_overhead(reps: int, context: Context, batches: tuple[int, ...] = BATCHES) -> dict:
    """diffkit's and diffusers' µs per step for each benched sampler with a counterpart."""
    have_ref = ref.installed()
    samplers = [s for s in context.samplers if s in ref.COUNTERPARTS]
    rows = []
    for sampler in samplers:
        for nfe in context.nfes:
            points = {b: measure(sampler, nfe, b, reps, have_ref) for b in batches}
            for library in points[batches[0]]:
                values = {}
                for b, point in points.items():
                    values[key(b)] = point[library]["us"]
                    values[f"all_us_b{b}"] = point[library]["all_us"]
                    if library == "diffkit" and have_ref:
                        values[f"ratio_b{b}"] = point["diffkit"]["us"] / point["diffusers"]["us"]
                extra = {"scheduler": ref.COUNTERPARTS[sampler][0]} if library != "diffkit" else {}
                first = points[batches[0]][library]
                wall = sum(point[library]["wall_s"] for point in points.values())
                rows.append(
                    row(library, sampler, first["calls"], nfe_budget=nfe, steps=first["steps"])
                    | {"wall_s": wall}
                    | extra
                    | values
                )
            context.advance()
    setup = (
        f"Zero-cost model (returns zeros), x of shape (B, 2) for B in "
        f"{', '.join(map(str, batches))}, linear schedule T=1000, 'trailing' steps on both "
        f"sides; CPU time of this process for a whole sampling call over its steps, median of "
        f"{reps} interleaved repeats, {torch.get_num_threads()} torch thread(s) (diffusers "
        f"{ref.version() or 'not installed'}). Target: diffkit / diffusers <= {TARGET}."
    )
    references = {"diffusers": "ok" if have_ref else NOT_INSTALLED}
    notes = [ratio_table(rows, batches, context.nfes)] if have_ref else []
    return result(rows, references, setup=setup, notes=notes)


def ratio_table(rows: list[dict], batches: tuple[int, ...], nfes: tuple[int, ...]) -> str:
    """Markdown: diffkit / diffusers time per step by batch, sampler and NFE, with the verdict."""
    ours = [r for r in rows if r["library"] == "diffkit"]
    theirs = {r["method"]: r["scheduler"] for r in rows if r["library"] == "diffusers"}
    lines = [
        f"Ratio diffkit / diffusers, CPU time per step (target <= {TARGET}):",
        "",
        "| batch | sampler | diffusers scheduler | "
        + " | ".join(f"NFE {n}" for n in nfes)
        + " | target |",
        "|---|---|---|" + "---|" * len(nfes) + "---|",
    ]
    for b in batches:
        for method in dict.fromkeys(r["method"] for r in ours):
            ratios = {r["nfe_budget"]: r[f"ratio_b{b}"] for r in ours if r["method"] == method}
            cells = " | ".join(f"{ratios[n]:.2f}" if n in ratios else "—" for n in nfes)
            verdict = "met" if all(v <= TARGET for v in ratios.values()) else "**missed**"
            lines.append(f"| {b} | {method} | {theirs[method]} | {cells} | {verdict} |")
    return "\n".join(lines)


def case(suite: str) -> Case:
    """The overhead case of ``suite`` (more repeats in the larger suites)."""
    return Case(
        domain="toy",
        name="overhead",
        title="per-step overhead with a zero-cost model, diffkit vs diffusers' schedulers",
        metric=key(BATCHES[0]),
        unit=f"CPU µs per sampling step, batch {BATCHES[0]} (zero-cost model)",
        references=("diffusers",),
        run=partial(run_overhead, REPS[suite]),
        metrics=tuple(key(b) for b in BATCHES[1:]),
        labels={key(b): f"CPU µs per sampling step, batch {b} (zero-cost model)" for b in BATCHES},
        nfe_label="network calls per sample (NFE; the model returns zeros)",
    )
