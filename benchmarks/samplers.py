"""Every diffkit sampler and diffusers' schedulers on the exact Gaussian mixture, side by side.

    python benchmarks/samplers.py            # 20,000 samples per run (~30 min, shared 2-core CPU)
    python benchmarks/samplers.py --quick    # 4,000 samples (about 5 min)
    python benchmarks/samplers.py --samples 10000   # about 12 min: the run in RESULTS.md

Both sides sample the 2-D ring (8 modes, std 0.15) and a 16-D mixture of 8 with the *exact*
eps of the noised mixture on DDPM's linear schedule (T = 1000), so what differs is the
sampler alone. diffusers' schedulers are driven by a model that reads alpha and sigma from
the scheduler's own table at the current index (its own ``sigmas`` where it has them, else
``alphas_cumprod[t]``), so neither side is penalised by rounding time steps. Scores: sliced
Wasserstein-1 (128 fixed directions) averaged over three exact sample sets of the same size,
and the mode-weight total variation; the noise floor is the same score for fresh exact
samples (mean of three draws). Per-step overhead uses a model returning
zeros. Writes ``benchmarks/results/samplers.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)

import diffkit
from diffkit import schedules, toy

NFES = (10, 20, 50, 100)
SPACINGS = ("logsnr", "karras")  # plus "trailing" for DDPM and DDIM, as in diffusers
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


def steps_for(nfe: int, calls) -> int:
    """The most steps whose model calls stay within ``nfe``."""
    return max(n for n in range(1, nfe + 1) if calls(n) <= nfe)


class FixedNoise:
    """A schedule-like stand-in returning one (alpha, sigma), to evaluate the exact eps there."""

    def __init__(self, alpha: float, sigma: float):
        self.alpha, self.sigma = alpha, sigma

    def alpha_sigma(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.full_like(t, self.alpha), torch.full_like(t, self.sigma)


def run_diffusers(cls, config, spacing, steps, mix, x, schedule, zero_model=False):
    sched = cls(beta_schedule="linear", timestep_spacing=spacing, **config)
    sched.alphas_cumprod = schedule.alphas_cumprod.clone()  # float64, before set_timesteps
    sched.set_timesteps(steps)
    x = x * sched.init_noise_sigma
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        if zero_model:
            eps = torch.zeros_like(x_in)
        elif hasattr(sched, "sigmas"):  # the scheduler's own VE sigma at the current index
            s_ve = float(sched.sigmas[sched.step_index or 0])
            alpha = (1 + s_ve**2) ** -0.5
            eps = mix.eps(x_in, torch.zeros(()), FixedNoise(alpha, s_ve * alpha))
        else:
            eps = mix.eps(x_in, t.double(), schedule)
        x = sched.step(eps, t, x).prev_sample
    return x


def run_diffkit(name, spacing, steps, net, x, schedule, g):
    options = DIFFKIT[name][0]
    sampler = name.split("-")[0]
    return diffkit.sample(
        net, x, schedule, sampler=sampler, steps=steps, spacing=spacing, generator=g, **options
    )


def score(mix, x, exact_sets):
    """Mean sliced W1 to each exact set (the same 128 directions every time), and mode TV."""
    sw = [toy.sliced_wasserstein(x, e, 128, torch.Generator().manual_seed(1)) for e in exact_sets]
    return sum(sw) / len(sw), mix.mode_tv(x)


def benchmark_problem(label, mix, n, schedule, nfes):
    g = torch.Generator().manual_seed(0)
    exact = [mix.sample(n, g) for _ in range(3)]
    # Noise floor: the same score for fresh exact samples, averaged over three draws.
    floors = [score(mix, mix.sample(n, g), exact) for _ in range(3)]
    floor = tuple(sum(f[i] for f in floors) / 3 for i in range(2))
    x_T = torch.randn(n, mix.dim, generator=g)
    net = mix.denoiser(schedule)
    rows = []
    for nfe in nfes:
        for name, (_, calls) in DIFFKIT.items():
            steps = steps_for(nfe, calls)
            for spacing in SPACINGS + (("trailing",) if name in ("ddpm", "ddim") else ()):
                x = run_diffkit(
                    name, spacing, steps, net, x_T, schedule, torch.Generator().manual_seed(2)
                )
                rows.append(("diffkit", name, spacing, nfe, calls(steps), *score(mix, x, exact)))
        for name, (cls, config, calls, spacings) in DIFFUSERS.items():
            steps = steps_for(nfe, calls)
            for spacing in spacings:
                torch.manual_seed(2)  # DDPM's noise: diffusers draws it from the global generator
                try:
                    x = run_diffusers(cls, config, spacing, steps, mix, x_T, schedule)
                except Exception as e:  # a spacing a scheduler refuses: record and go on
                    print(f"  diffusers {name} {spacing} failed: {type(e).__name__}: {e}")
                    continue
                rows.append(("diffusers", name, spacing, nfe, calls(steps), *score(mix, x, exact)))
        print(f"{label} NFE {nfe}: done", flush=True)
    keys = ("library", "sampler", "spacing", "nfe_budget", "nfe", "sw1", "mode_tv")
    return {
        "floor": {"sw1": floor[0], "mode_tv": floor[1]},
        "rows": [dict(zip(keys, r, strict=True)) for r in rows],
    }


def overhead(schedule, steps=100, reps=7):
    """Seconds per step with a model that returns zeros, for a (16, 2) batch; the best of
    ``reps`` interleaved runs, since other processes share the cores."""
    x = torch.randn(16, 2)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    out = {}
    pairs = [
        ("ddim", DDIMScheduler, {}),
        ("dpmpp_2m", DPMSolverMultistepScheduler, {}),
        ("unipc", UniPCMultistepScheduler, {"order": 2}),
        ("euler", EulerDiscreteScheduler, {}),
    ]
    for ours, cls, options in pairs:
        best_ours = best_theirs = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            diffkit.sample(zero, x, schedule, sampler=ours, steps=steps, **options)
            best_ours = min(best_ours, (time.perf_counter() - t0) / steps)
            t0 = time.perf_counter()
            run_diffusers(cls, {}, "trailing", steps, None, x, schedule, zero_model=True)
            best_theirs = min(best_theirs, (time.perf_counter() - t0) / steps)
        out[ours] = {"diffkit_s": best_ours, "diffusers_s": best_theirs, "scheduler": cls.__name__}
    return out


def best(rows, library, nfe):
    cands = [r for r in rows if r["library"] == library and r["nfe_budget"] == nfe]
    return min(cands, key=lambda r: r["sw1"])


def markdown(results, args) -> str:
    command = "python benchmarks/samplers.py" + (" --quick" if args.quick else "")
    command += f" --samples {args.samples}" if args.samples else ""
    setup = f"{results['n']} samples, linear schedule T=1000, float32 samples, exact eps"
    lines = [f"Command: `{command}` ({setup}).", ""]
    for label, res in results["problems"].items():
        rows, floor = res["rows"], res["floor"]
        lines += [f"### {label}", "", f"Noise floor: sliced W1 {floor['sw1']:.4f}, "
                  f"mode TV {floor['mode_tv']:.4f}.", ""]  # fmt: skip
        lines += ["| NFE | diffkit best (sampler, spacing) | SW1 | diffusers best | SW1 | ratio | "
                  "vs floor |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for nfe in results["nfes"]:
            a, b = best(rows, "diffkit", nfe), best(rows, "diffusers", nfe)
            lines.append(
                f"| {nfe} | {a['sampler']}, {a['spacing']} ({a['nfe']}) | {a['sw1']:.4f} | "
                f"{b['sampler']}, {b['spacing']} ({b['nfe']}) | {b['sw1']:.4f} | "
                f"{a['sw1'] / b['sw1']:.2f} | {a['sw1'] / floor['sw1']:.2f} |"
            )
        lines += ["", "All runs (SW1 / mode TV; best spacing per sampler):", "",
                  "| library | sampler | " + " | ".join(f"NFE {n}" for n in results["nfes"]) + " |",
                  "|---|---|" + "---|" * len(results["nfes"])]  # fmt: skip
        names = dict.fromkeys((r["library"], r["sampler"]) for r in rows)
        for lib, name in names:
            cells = []
            for nfe in results["nfes"]:
                cands = [
                    r
                    for r in rows
                    if (r["library"], r["sampler"], r["nfe_budget"]) == (lib, name, nfe)
                ]
                r = min(cands, key=lambda r: r["sw1"])
                cells.append(f"{r['sw1']:.4f} / {r['mode_tv']:.3f} ({r['spacing']})")
            lines.append(f"| {lib} | {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Per-step overhead (zero-cost model, batch (16, 2), 100 steps)", "",
              "| sampler | diffkit µs/step | diffusers scheduler | diffusers µs/step | ratio |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, o in results["overhead"].items():
        ours, theirs = 1e6 * o["diffkit_s"], 1e6 * o["diffusers_s"]
        lines.append(
            f"| {name} | {ours:.0f} | {o['scheduler']} | {theirs:.0f} | {ours / theirs:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 samples instead of 20,000")
    parser.add_argument("--samples", type=int, default=None, help="override the sample count")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.samples or (4000 if args.quick else 20000)
    schedule = schedules.linear()
    problems = {"2-D ring, 8 modes": toy.ring(), "16-D mixture of 8": toy.random_mixture(16, 8)}
    t0 = time.time()
    results = {"n": n, "nfes": list(NFES), "problems": {}, "overhead": overhead(schedule)}
    for label, mix in problems.items():
        results["problems"][label] = benchmark_problem(label, mix, n, schedule, NFES)
    results["seconds"] = time.time() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "samplers.json").write_text(json.dumps(results, indent=1))
    md = markdown(results, args)
    (args.out / "samplers.md").write_text(md)
    print(md)
    print(f"took {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
