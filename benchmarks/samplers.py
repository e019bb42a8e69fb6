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
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

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

import diffkit
from diffkit import schedules, toy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import update_section

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


def make_scheduler(cls, config, spacing, schedule):
    sched = cls(beta_schedule="linear", timestep_spacing=spacing, **config)
    sched.alphas_cumprod = schedule.alphas_cumprod.clone()  # float64, before set_timesteps
    return sched


def diffusers_loop(sched, steps, x, eps_fn):
    """diffusers' sampling loop; ``eps_fn(x_in, t, step_index)`` is the model."""
    sched.set_timesteps(steps)
    x = x * sched.init_noise_sigma
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        x = sched.step(eps_fn(x_in, t, getattr(sched, "_step_index", None) or 0), t, x).prev_sample
    return x


def run_diffusers(cls, config, spacing, steps, mix, x, schedule):
    sched = make_scheduler(cls, config, spacing, schedule)

    def eps_fn(x_in, t, index):
        if hasattr(sched, "sigmas"):  # the scheduler's own VE sigma at the current index
            s_ve = float(sched.sigmas[index])
            alpha = (1 + s_ve**2) ** -0.5
            return mix.eps(x_in, torch.zeros(()), FixedNoise(alpha, s_ve * alpha))
        return mix.eps(x_in, t.double(), schedule)

    return diffusers_loop(sched, steps, x, eps_fn)


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


# diffkit sampler, its options, the diffusers scheduler computing the same, its config
OVERHEAD = [
    ("ddim", {}, DDIMScheduler, {}),
    ("euler", {}, EulerDiscreteScheduler, {}),
    ("dpmpp_2m", {}, DPMSolverMultistepScheduler, {}),
    ("unipc", {"order": 2}, UniPCMultistepScheduler, {"solver_order": 2}),
]


def cpu_seconds(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def overhead(schedule, batches=(1, 64), steps=50, reps=31):
    """CPU seconds per step with a model that returns zeros, for (B, 2) batches: the median of
    ``reps`` interleaved runs of a whole sampling call each (ours: ``diffkit.sample``;
    theirs: ``set_timesteps`` and the step loop of a scheduler built once, as our schedule)."""
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    rows = []
    for b in batches:
        x = torch.randn(b, 2, generator=torch.Generator().manual_seed(0))
        for ours, options, cls, config in OVERHEAD:
            sched = make_scheduler(cls, config, "trailing", schedule)

            def run_ours(ours=ours, options=options, x=x):
                diffkit.sample(zero, x, schedule, sampler=ours, steps=steps, **options)

            def run_theirs(sched=sched, x=x):
                diffusers_loop(sched, steps, x, lambda x_in, t, i: torch.zeros_like(x_in))

            run_ours(), run_theirs()  # warm-up
            a, c = [], []
            for _ in range(reps):  # interleaved, so both see the same load
                a.append(cpu_seconds(run_ours) / steps)
                c.append(cpu_seconds(run_theirs) / steps)
            rows.append({"batch": b, "sampler": ours, "scheduler": cls.__name__,
                         "diffkit_s": statistics.median(a), "diffusers_s": statistics.median(c),
                         "diffkit_all_s": a, "diffusers_all_s": c})  # fmt: skip
    return {"steps": steps, "reps": reps, "shape": "(B, 2)", "rows": rows}


def overhead_markdown(res, command: str, note: str) -> str:
    o = res["overhead"]
    lines = [
        f"Command: `{command}`; output `benchmarks/results/samplers-overhead.{{json,md}}` "
        f"(run {res['date']}, torch {res['torch']}, diffusers {res['diffusers']}, one thread, "
        f"load average {res['load'][0]:.1f} before and {res['load'][1]:.1f} after).",
        "",
        f"Zero-cost model, x of shape {o['shape']}, {o['steps']} steps, CPU time per step of a "
        f"whole sampling call, median of {o['reps']} interleaved repeats; target ratio <= 0.5.",
    ]
    lines += ["", note.strip(), ""] if note.strip() else [""]
    lines += ["| batch | sampler | diffkit µs/step | diffusers scheduler | diffusers µs/step "
              "| ratio | target |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in o["rows"]:
        ours, theirs = 1e6 * r["diffkit_s"], 1e6 * r["diffusers_s"]
        ok = "met" if ours <= 0.5 * theirs else "**missed**"
        lines.append(
            f"| {r['batch']} | {r['sampler']} | {ours:.1f} | {r['scheduler']} | {theirs:.1f} | "
            f"{ours / theirs:.2f} | {ok} |"
        )
    return "\n".join(lines) + "\n"


def best(rows, library, nfe):
    cands = [r for r in rows if r["library"] == library and r["nfe_budget"] == nfe]
    return min(cands, key=lambda r: r["sw1"])


def targets_markdown(results) -> str:
    """The accuracy targets, judged from the run's own rows."""
    probs = results["problems"]

    def cell(nfe, judge):
        out = []
        for res in probs.values():
            a, b = best(res["rows"], "diffkit", nfe), best(res["rows"], "diffusers", nfe)
            ratio = a["sw1"] / (res["floor"]["sw1"] if judge == "floor" else b["sw1"])
            out.append((ratio, f"{ratio:.2f}x ({a['sampler']}, {a['spacing']})"))
        return out

    lines = ["| target | " + " | ".join(probs) + " | verdict |", "|---|" + "---|" * len(probs)
             + "---|"]  # fmt: skip
    for nfe, judge, limit, text in [
        (10, "diffusers", 0.8, "10 NFE: diffkit best <= 0.8x diffusers best"),
        (20, "diffusers", 1.0, "20 NFE: no worse than diffusers best"),
        (50, "floor", 1.2, "50 NFE: within 1.2x of the noise floor"),
    ]:
        if nfe not in results["nfes"]:
            continue
        cells = cell(nfe, judge)
        verdict = "met" if all(r <= limit for r, _ in cells) else "**missed**"
        lines.append(f"| {text} | " + " | ".join(c for _, c in cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def markdown(results, command: str) -> str:
    setup = f"{results['n']} samples, linear schedule T=1000, float32 samples, exact eps"
    lines = [f"Command: `{command}` ({setup}; {results['seconds']:.0f} s); output "
             f"`benchmarks/results/{results['name']}.{{json,md}}`.", ""]  # fmt: skip
    lines += ["#### Targets", "", targets_markdown(results)]
    for label, res in results["problems"].items():
        rows, floor = res["rows"], res["floor"]
        lines += [f"#### {label}", "", f"Noise floor: sliced W1 {floor['sw1']:.4f}, "
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
    return "\n".join(lines) + "\n"


def environment() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "load": [os.getloadavg()[0]],
    }


def history_markdown(out: Path) -> str:
    """The ratios of earlier overhead runs kept as ``samplers-overhead-*.json`` (e.g. before
    and between changes), one row per file, so a table of them is never pasted by hand."""
    files = sorted(out.glob("samplers-overhead-*.json"))
    if not files:
        return ""
    runs = [(f.name, json.loads(f.read_text())) for f in files]
    keys = [(r["batch"], r["sampler"]) for r in runs[0][1]["overhead"]["rows"]]
    lines = ["", "Earlier runs of the same measurement (ratio diffkit / diffusers by batch):",
             "", "| JSON | date | load | " + " | ".join(f"{n} {b}" for b, n in keys) + " | what |",
             "|---|---|---|" + "---|" * len(keys) + "---|"]  # fmt: skip
    for name, res in runs:
        ratio = {(r["batch"], r["sampler"]): r["diffkit_s"] / r["diffusers_s"]
                 for r in res["overhead"]["rows"]}  # fmt: skip
        cells = " | ".join(f"{ratio[k]:.2f}" if k in ratio else "" for k in keys)
        load = "-".join(f"{v:.1f}" for v in res["load"])
        lines.append(f"| `{name}` | {res['date']} | {load} | {cells} | {res['note']} |")
    return "\n".join(lines) + "\n"


def run_overhead(args, schedule, command):
    res = environment()
    res["overhead"] = overhead(schedule, reps=args.reps)
    res["load"].append(os.getloadavg()[0])
    res["note"] = args.note
    (args.out / "samplers-overhead.json").write_text(json.dumps(res, indent=1))
    md = overhead_markdown(res, command, args.note) + history_markdown(args.out)
    (args.out / "samplers-overhead.md").write_text(md)
    update_section("samplers-overhead", md)
    print(md)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 samples instead of 20,000")
    parser.add_argument("--samples", type=int, default=None, help="override the sample count")
    parser.add_argument("--overhead-only", action="store_true", help="only the overhead table")
    parser.add_argument("--reps", type=int, default=31, help="overhead repeats (median)")
    parser.add_argument("--note", default="", help="a sentence on the machine's load, for the md")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    schedule = schedules.linear()
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    run_overhead(args, schedule, command)
    if args.overhead_only:
        return
    n = args.samples or (4000 if args.quick else 20000)
    name = "samplers-quick" if args.quick else "samplers"
    problems = {"2-D ring, 8 modes": toy.ring(), "16-D mixture of 8": toy.random_mixture(16, 8)}
    t0 = time.time()
    results = {**environment(), "name": name, "n": n, "nfes": list(NFES), "problems": {}}
    for label, mix in problems.items():
        results["problems"][label] = benchmark_problem(label, mix, n, schedule, NFES)
    results["seconds"] = time.time() - t0
    results["load"].append(os.getloadavg()[0])
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    md = markdown(results, command)
    if args.note:
        md = args.note.strip() + "\n\n" + md
    (args.out / f"{name}.md").write_text(md)
    update_section(name, md)
    print(md)
    print(f"took {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
