"""Fitted step schedules against every fixed spacing and diffusers' schedulers, exact denoiser.

    python benchmarks/fit_steps.py            # 20,000 scored samples (~40 min, shared 2-core CPU)
    python benchmarks/fit_steps.py --quick    # 4,000 samples, two samplers fitted (~8 min)

On the 2-D ring (8 modes) and the 16-D mixture of 8 of ``benchmarks/samplers.py``, with the
exact eps on DDPM's linear schedule (T = 1000): for each NFE budget, ``fit_steps`` fits each
of a few deterministic samplers on a calibration batch of 2,048 x_T (seed 10), and every
schedule is then scored on fresh x_T (seed 0) that the fit never saw: sliced Wasserstein-1
(128 fixed directions) averaged over three exact sample sets, as in ``samplers.py``. Beside
them: every diffkit sampler with every fixed spacing at the same NFE, and diffusers'
schedulers with their spacing options (``linspace``, ``trailing``, ``use_karras_sigmas``,
``use_lu_lambdas``). Writes ``benchmarks/results/fit-steps/fit-steps.{json,md,png}`` and the
``fit-steps`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

import diffkit
from diffkit import schedules, toy
from diffkit.sampling import SPACINGS, fit_steps_report
from diffkit.sampling.fit import steps_within

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_steps_tables import DIFFKIT, DIFFUSERS, environment, run_diffusers, score
from results_md import publish

NFES = (5, 10)
FIT = ("dpmpp_2m", "dpmpp_3m", "unipc-2", "unipc-3")
QUICK_FIT = ("dpmpp_2m", "unipc-3")
# diffusers' spacing options beyond samplers.py's table: Lu's lambdas and Karras' sigmas
MORE_DIFFUSERS = {
    "DPM++2M-lu": (
        DPMSolverMultistepScheduler,
        {"use_lu_lambdas": True},
        lambda n: n,
        ("linspace", "trailing"),
    ),
    "DPM++2M-karras-trailing": (
        DPMSolverMultistepScheduler,
        {"use_karras_sigmas": True},
        lambda n: n,
        ("trailing",),
    ),
    "DPM++3M": (
        DPMSolverMultistepScheduler,
        {"solver_order": 3},
        lambda n: n,
        ("linspace", "trailing"),
    ),
    "UniPC-karras": (
        UniPCMultistepScheduler,
        {"use_karras_sigmas": True},
        lambda n: n,
        ("linspace", "trailing"),
    ),
    "Euler-karras": (
        EulerDiscreteScheduler,
        {"use_karras_sigmas": True},
        lambda n: n,
        ("linspace", "trailing"),
    ),
}


def split(name: str) -> tuple[str, dict]:
    """``unipc-3`` -> ("unipc", {"order": 3}), from samplers.py's table."""
    return name.split("-")[0], DIFFKIT[name][0]


def problem(label, mix, n, schedule, nfes, fit_names, calib):
    g = torch.Generator().manual_seed(0)
    exact = [mix.sample(n, g) for _ in range(3)]
    floors = [score(mix, mix.sample(n, g), exact) for _ in range(3)]
    floor = sum(f[0] for f in floors) / 3
    x_T = torch.randn(n, mix.dim, generator=g)  # the scored noise: never seen by the fit
    x_cal = torch.randn(calib, mix.dim, generator=torch.Generator().manual_seed(10))
    net = mix.denoiser(schedule)
    rows, fits = [], []
    for nfe in nfes:
        for name, (_, calls) in DIFFKIT.items():  # every fixed spacing of every sampler
            sampler, options = split(name)
            if calls(1) > nfe:  # annealed Langevin's 6 calls for one level
                continue
            steps = max(k for k in range(1, nfe + 1) if calls(k) <= nfe)
            for spacing in SPACINGS:
                try:
                    x = diffkit.sample(
                        net,
                        x_T,
                        schedule,
                        sampler=sampler,
                        steps=steps,
                        spacing=spacing,
                        generator=torch.Generator().manual_seed(2),
                        **options,
                    )
                    sw = score(mix, x, exact)[0]
                except (ValueError, RuntimeError):  # a spacing refused or a run that diverged
                    sw = float("inf")
                rows.append(
                    {
                        "library": "diffkit",
                        "sampler": name,
                        "spacing": spacing,
                        "nfe_budget": nfe,
                        "nfe": calls(steps),
                        "sw1": sw,
                    }
                )
        for name, (cls, config, calls, spacings) in {**DIFFUSERS, **MORE_DIFFUSERS}.items():
            steps = max(k for k in range(1, nfe + 1) if calls(k) <= nfe)
            for spacing in spacings:
                torch.manual_seed(2)
                try:
                    x = run_diffusers(cls, config, spacing, steps, mix, x_T, schedule)
                    sw = score(mix, x, exact)[0]
                except Exception as e:  # a spacing a scheduler refuses: record and go on
                    print(f"  diffusers {name} {spacing} failed: {type(e).__name__}: {e}")
                    continue
                rows.append(
                    {
                        "library": "diffusers",
                        "sampler": name,
                        "spacing": spacing,
                        "nfe_budget": nfe,
                        "nfe": calls(steps),
                        "sw1": sw,
                    }
                )
        for name in fit_names:
            sampler, options = split(name)
            res = fit_steps_report(
                net, schedule, sampler=sampler, nfe=nfe, x_T=x_cal, options=options
            )
            x = diffkit.sample(net, x_T, schedule, sampler=sampler, spacing=res.times, **options)
            sw = score(mix, x, exact)[0]
            rows.append(
                {
                    "library": "diffkit",
                    "sampler": name,
                    "spacing": "fitted",
                    "nfe_budget": nfe,
                    "nfe": res.nfe,
                    "sw1": sw,
                }
            )
            fits.append(
                {
                    **res.to_json(),
                    "name": name,
                    "nfe_budget": nfe,
                    "sw1": sw,
                    "steps": steps_within(sampler, nfe, schedule, options),
                }
            )
            print(
                f"{label} NFE {nfe} {name}: fitted SW1 {sw:.4f} in {res.seconds:.0f} s", flush=True
            )
    return {"floor": floor, "rows": rows, "fits": fits}


def best(rows, nfe, library, fitted=None):
    cands = [r for r in rows if r["library"] == library and r["nfe_budget"] == nfe]
    if fitted is not None:
        cands = [r for r in cands if (r["spacing"] == "fitted") == fitted]
    return min(cands, key=lambda r: r["sw1"])


def markdown(results, command) -> str:
    lines = [
        f"Command: `{command}` ({results['n']} scored samples, calibration {results['calib']} "
        f"x_T, linear schedule T=1000, exact eps, one torch thread; {results['seconds']:.0f} s; "
        f"load average {results['load'][0]:.1f} before, {results['load'][-1]:.1f} after); "
        "output `benchmarks/results/fit-steps/fit-steps.{json,md,png}`.",
        "",
        "Targets: fitted <= 0.5x diffusers' best scheduler with its best spacing option, and "
        "<= 0.7x diffkit's best fixed spacing (any sampler), at the same NFE.",
        "",
        "| problem | NFE | fitted best | SW1 | diffkit fixed best | SW1 | diffusers best | SW1 "
        "| vs diffusers | vs fixed | floor | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, res in results["problems"].items():
        for nfe in results["nfes"]:
            f = best(res["rows"], nfe, "diffkit", True)
            d = best(res["rows"], nfe, "diffkit", False)
            u = best(res["rows"], nfe, "diffusers")
            a, b = f["sw1"] / u["sw1"], f["sw1"] / d["sw1"]
            ok = "met" if a <= 0.5 and b <= 0.7 else "**missed**"
            lines.append(
                f"| {label} | {nfe} | {f['sampler']} ({f['nfe']}) | {f['sw1']:.4f} | "
                f"{d['sampler']}, {d['spacing']} ({d['nfe']}) | {d['sw1']:.4f} | "
                f"{u['sampler']}, {u['spacing']} ({u['nfe']}) | {u['sw1']:.4f} | {a:.2f}x | "
                f"{b:.2f}x | {res['floor']:.4f} | {ok} |"
            )
    lines += [
        "",
        "Each fitted sampler against its own best fixed spacing, and the fit's cost "
        "(seconds of one thread under the load above; the search's sampling runs):",
        "",
        "| problem | NFE | sampler | steps | fitted SW1 | its best fixed (SW1) | ratio | "
        "fit s | runs | fitted times |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, res in results["problems"].items():
        for fit in res["fits"]:
            own = [
                r
                for r in res["rows"]
                if r["sampler"] == fit["name"]
                and r["spacing"] != "fitted"
                and r["nfe_budget"] == fit["nfe_budget"]
            ]
            o = min(own, key=lambda r: r["sw1"])
            times = ", ".join(f"{t:.0f}" for t in fit["times"])
            lines.append(
                f"| {label} | {fit['nfe_budget']} | {fit['name']} | {fit['steps']} | "
                f"{fit['sw1']:.4f} | {o['sw1']:.4f} ({o['spacing']}) | {fit['sw1'] / o['sw1']:.2f} "
                f"| {fit['seconds']:.0f} | {fit['evaluations']} | {times} |"
            )
    return "\n".join(lines) + "\n"


def figure(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = results["problems"]
    fig, axes = plt.subplots(1, len(probs), figsize=(5.5 * len(probs), 4), squeeze=False)
    kinds = [
        ("fitted (diffkit)", "diffkit", True, "C3"),
        ("best fixed (diffkit)", "diffkit", False, "C0"),
        ("best diffusers", "diffusers", None, "C7"),
    ]
    for ax, (label, res) in zip(axes[0], probs.items(), strict=True):
        nfes = results["nfes"]
        for k, (name, lib, fitted, colour) in enumerate(kinds):
            if not any(r["library"] == lib for r in res["rows"]):
                continue  # a trained model has no diffusers rows
            values = [best(res["rows"], nfe, lib, fitted)["sw1"] for nfe in nfes]
            xs = [i + (k - 1) * 0.27 for i in range(len(nfes))]
            ax.bar(xs, values, width=0.25, color=colour, label=name)
            for x, v in zip(xs, values, strict=True):
                ax.text(x, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(res["floor"], color="k", ls=":", lw=1, label="noise floor")
        ax.set_xticks(range(len(nfes)), [f"{n} NFE" for n in nfes])
        ax.set_yscale("log")
        ax.set_ylabel("sliced W1 (lower is better)")
        ax.set_title(f"{label}: {results['n']} fresh samples", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 samples, two fitted")
    parser.add_argument("--samples", type=int, default=None, help="override the sample count")
    parser.add_argument("--calib", type=int, default=2048, help="calibration x_T for the fit")
    parser.add_argument("--note", default="", help="a sentence on the machine's load, for the md")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fit-steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    n = args.samples or (4000 if args.quick else 20000)
    name = "fit-steps-quick" if args.quick else "fit-steps"
    schedule = schedules.linear()
    t0 = time.time()
    results = {
        **environment(),
        "name": name,
        "n": n,
        "calib": args.calib,
        "nfes": list(NFES),
        "problems": {},
    }
    for label, mix in {
        "2-D ring, 8 modes": toy.ring(),
        "16-D mixture of 8": toy.random_mixture(16, 8),
    }.items():
        results["problems"][label] = problem(
            label, mix, n, schedule, NFES, QUICK_FIT if args.quick else FIT, args.calib
        )
    results["seconds"] = time.time() - t0
    results["load"].append(os.getloadavg()[0])
    figure(results, args.out / f"{name}.png")
    md = markdown(results, command)
    md += f"\n![fitted vs fixed vs diffusers](results/fit-steps/{name}.png)\n"
    print(publish(args.out, name, results, md, args.note))


if __name__ == "__main__":
    main()
